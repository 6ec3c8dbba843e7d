// Retention on SQLite: the pruner's reads and its bounded deletes (docs/retention.md). Each is one
// short statement or transaction; the pruner (scheduler/pruner.ts) decides what goes.

import {
  type InstancePruneCandidate,
  type JobRetention,
  type PruneCandidate,
  retentionFromColumn,
} from '../../core/retention.ts';
import {
  ENDED_INSTANCE_SQL,
  FINISHED_SQL,
  type InstancePruneRow,
  instancePruneCandidateFromRow,
  NOT_OF_UNFINISHED_INSTANCE,
  type PruneRow,
  pruneCandidateFromRow,
} from '../retention-rows.ts';
import type { JobPruneScan, PruneCursor, SpaceUpkeep } from '../store.ts';
import type { SqliteConnection } from './connection.ts';

/**
 * Finished runs in end order after a cursor, with their job's retention and whether a later finished
 * run of the job exists: one range of runs_finished, one probe of runs_job per run.
 * @until end time bound, @at/@id the cursor, @limit.
 */
export const RUNS_TO_PRUNE = `
  SELECT r.id, r.job_id, r.status, r.created_at, r.finished_at, j.retention,
    EXISTS (SELECT 1 FROM runs n WHERE n.job_id = r.job_id AND n.id > r.id AND n.status IN ${FINISHED_SQL}) AS superseded
  FROM runs r INDEXED BY runs_finished JOIN jobs j ON j.id = r.job_id
  WHERE r.finished_at IS NOT NULL AND r.finished_at < @until AND r.finished_at >= @at AND (r.finished_at > @at OR r.id > @id)
  ORDER BY r.finished_at, r.id LIMIT @limit`;

/** The id of a job's (offset + 1)-th newest finished run, walking runs_job from the newest. ?job, ?offset. */
export const KEEP_FROM = `
  SELECT id FROM runs INDEXED BY runs_job WHERE job_id = ? AND status IN ${FINISHED_SQL}
  ORDER BY id DESC LIMIT 1 OFFSET ?`;

/** A job's runs after an id, oldest first, with its retention: an ordered walk of runs_job. @job, @after, @limit. */
export const JOB_RUNS = `
  SELECT id, job_id, status, created_at, finished_at, (SELECT retention FROM jobs WHERE id = @job) AS retention
  FROM runs INDEXED BY runs_job WHERE job_id = @job AND id > @after ORDER BY id LIMIT @limit`;

/** Jobs with a retention of their own. */
export const JOBS_WITH_RETENTION = `SELECT id, retention FROM jobs WHERE retention <> '{}'`;

/**
 * Delete the finished runs among ?1 (a JSON array of ids), but the step runs of a running or paused
 * workflow instance; cascades to attempts, logs, progress, late reports.
 */
export const DELETE_FINISHED_RUNS = `
  DELETE FROM runs WHERE id IN (SELECT value FROM json_each(?)) AND status IN ${FINISHED_SQL}
    AND ${NOT_OF_UNFINISHED_INSTANCE}`;

/**
 * Ended workflow instances in end order after a cursor, with their number of step rows: one range of
 * workflow_instances_finished, one range of the steps' primary key per instance.
 * @until end time bound, @at/@id the cursor, @limit.
 */
export const INSTANCES_TO_PRUNE = `
  SELECT i.id, i.state, i.finished_at, (SELECT count(*) FROM workflow_steps s WHERE s.instance_id = i.id) AS steps
  FROM workflow_instances i INDEXED BY workflow_instances_finished
  WHERE i.finished_at IS NOT NULL AND i.finished_at < @until AND i.finished_at >= @at AND (i.finished_at > @at OR i.id > @id)
  ORDER BY i.finished_at, i.id LIMIT @limit`;

/** Delete up to ?2 map items of the instances among ?1 (a JSON array of ids) that are still ended. */
export const PRUNE_MAP_ITEMS = `
  DELETE FROM workflow_map_items WHERE rowid IN (
    SELECT m.rowid FROM workflow_map_items m JOIN workflow_instances i ON i.id = m.instance_id
    WHERE i.id IN (SELECT value FROM json_each(?)) AND i.state IN ${ENDED_INSTANCE_SQL} LIMIT ?)`;

/**
 * Delete the instances among ?1 (a JSON array of ids) that are still ended and hold no map item;
 * cascades to their step rows.
 */
export const DELETE_ENDED_INSTANCES = `
  DELETE FROM workflow_instances WHERE id IN (SELECT value FROM json_each(?)) AND state IN ${ENDED_INSTANCE_SQL}
    AND finished_at IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM workflow_map_items m WHERE m.instance_id = workflow_instances.id)`;

/** Delete up to ?2 ledger rows last written before ?1, on skipped_fires_recorded. */
export const PRUNE_SKIPPED_FIRES = `
  DELETE FROM skipped_fires WHERE id IN (
    SELECT id FROM skipped_fires INDEXED BY skipped_fires_recorded WHERE recorded_at < ? ORDER BY recorded_at LIMIT ?)`;

/** Delete up to ?2 audit entries written before ?1, on audit_log_at. */
export const PRUNE_AUDIT_LOG = `
  DELETE FROM audit_log WHERE id IN (
    SELECT id FROM audit_log INDEXED BY audit_log_at WHERE at < ? ORDER BY at LIMIT ?)`;

export function runsToPrune(
  c: SqliteConnection,
  after: PruneCursor | null,
  until: number,
  limit: number,
): PruneCandidate[] {
  return c.run('runsToPrune', () =>
    (
      c.sql(RUNS_TO_PRUNE).all({
        until,
        at: after?.finishedAt ?? Number.MIN_SAFE_INTEGER,
        id: after?.id ?? 0,
        limit,
      }) as PruneRow[]
    ).map((row) => pruneCandidateFromRow(row)),
  );
}

export function jobRunsToPrune(
  c: SqliteConnection,
  jobId: number,
  keepLast: number,
  after: number,
  limit: number,
): JobPruneScan {
  return c.run('jobRunsToPrune', () => {
    const keep = c.sql(KEEP_FROM).get(jobId, keepLast - 1) as { id: number } | undefined;
    const keepFrom = keep?.id ?? null;
    const rows = c.sql(JOB_RUNS).all({ job: jobId, after, limit }) as PruneRow[];
    return {
      runs: rows.map((row) => pruneCandidateFromRow(row, keepFrom !== null && row.id < keepFrom)),
      keepFrom,
    };
  });
}

export function jobsWithRetention(c: SqliteConnection): Array<{ jobId: number; retention: JobRetention }> {
  return c.run('jobsWithRetention', () =>
    (c.sql(JOBS_WITH_RETENTION).all() as Array<{ id: number; retention: string }>).map((row) => ({
      jobId: row.id,
      retention: retentionFromColumn(row.retention),
    })),
  );
}

export function deleteFinishedRuns(c: SqliteConnection, ids: readonly number[]): number {
  if (ids.length === 0) return 0;
  return c.run('deleteFinishedRuns', () => c.sql(DELETE_FINISHED_RUNS).run(JSON.stringify(ids)).changes);
}

export function workflowInstancesToPrune(
  c: SqliteConnection,
  after: PruneCursor | null,
  until: number,
  limit: number,
): InstancePruneCandidate[] {
  return c.run('workflowInstancesToPrune', () =>
    (
      c.sql(INSTANCES_TO_PRUNE).all({
        until,
        at: after?.finishedAt ?? Number.MIN_SAFE_INTEGER,
        id: after?.id ?? 0,
        limit,
      }) as InstancePruneRow[]
    ).map(instancePruneCandidateFromRow),
  );
}

export function pruneWorkflowMapItems(
  c: SqliteConnection,
  instanceIds: readonly number[],
  limit: number,
): number {
  if (instanceIds.length === 0) return 0;
  return c.run(
    'pruneWorkflowMapItems',
    () => c.sql(PRUNE_MAP_ITEMS).run(JSON.stringify(instanceIds), limit).changes,
  );
}

export function deleteEndedWorkflowInstances(c: SqliteConnection, instanceIds: readonly number[]): number {
  if (instanceIds.length === 0) return 0;
  return c.run(
    'deleteEndedWorkflowInstances',
    () => c.sql(DELETE_ENDED_INSTANCES).run(JSON.stringify(instanceIds)).changes,
  );
}

export function pruneSkippedFires(c: SqliteConnection, before: number, limit: number): number {
  return c.run('pruneSkippedFires', () => c.sql(PRUNE_SKIPPED_FIRES).run(before, limit).changes);
}

export function pruneAuditLog(c: SqliteConnection, before: number, limit: number): number {
  return c.run('pruneAuditLog', () => c.sql(PRUNE_AUDIT_LOG).run(before, limit).changes);
}

export function reclaimSpace(c: SqliteConnection, maxPages: number, minFreeShare: number): number {
  return c.run('reclaimSpace', () => {
    if ((c.db.pragma('auto_vacuum', { simple: true }) as number) !== 2) return 0;
    const free = c.db.pragma('freelist_count', { simple: true }) as number;
    const pages = c.db.pragma('page_count', { simple: true }) as number;
    if (free === 0 || free < pages * minFreeShare) return 0;
    c.db.pragma(`incremental_vacuum(${Math.max(1, Math.floor(maxPages))})`);
    return free - (c.db.pragma('freelist_count', { simple: true }) as number);
  });
}

export function spaceUpkeep(c: SqliteConnection): SpaceUpkeep {
  return c.run('spaceUpkeep', () =>
    (c.db.pragma('auto_vacuum', { simple: true }) as number) === 2
      ? { ok: true, detail: 'auto_vacuum incremental: the pruner gives free pages back to the file system' }
      : {
          ok: false,
          detail:
            'auto_vacuum is not incremental (a database created before 0.2.0): freed pages are reused, but the file never shrinks',
        },
  );
}
