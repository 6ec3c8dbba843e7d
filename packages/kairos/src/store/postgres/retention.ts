// Retention on PostgreSQL: the pruner's reads and its bounded deletes (docs/retention.md). Each is
// one statement outside any explicit transaction; the pruner (scheduler/pruner.ts) decides what goes.

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
import type { PostgresConnection } from './connection.ts';

/**
 * Finished runs in end order after a cursor, with their job's retention and whether a later finished
 * run of the job exists: one range of runs_finished, then per run the next finished run of its job,
 * an ordered walk from the run (`ORDER BY id LIMIT 1`: runs_job, or the primary key when the job
 * holds most runs) that stops at the first one, usually the next row. Two shapes were slower: an
 * EXISTS per run was planned as a bitmap scan of every later run of the job (15 s for a batch of
 * 1,000 of 100,000 runs of one job); the newest finished run per job in a CTE was inlined and
 * evaluated once per run anyway, each a walk back over the job's queued backlog (2.9 s per batch
 * with 20,000 queued, 42 s without statistics; 6 ms this way, bench:soak).
 * $1 end time bound, $2/$3 the cursor (finished_at, id), $4 limit.
 */
export const RUNS_TO_PRUNE = `
  WITH batch AS (
    SELECT r.id, r.job_id, r.status, r.created_at, r.finished_at FROM runs r
    WHERE r.finished_at IS NOT NULL AND r.finished_at < $1 AND r.finished_at >= $2 AND (r.finished_at > $2 OR r.id > $3)
    ORDER BY r.finished_at, r.id LIMIT $4)
  SELECT b.id, b.job_id, b.status, b.created_at, b.finished_at, j.retention,
    (SELECT n.id FROM runs n WHERE n.job_id = b.job_id AND n.id > b.id AND n.status IN ${FINISHED_SQL}
      ORDER BY n.id LIMIT 1) IS NOT NULL AS superseded
  FROM batch b JOIN jobs j ON j.id = b.job_id
  ORDER BY b.finished_at, b.id`;

/** The id of a job's ($2 + 1)-th newest finished run, walking runs_job from the newest. $1 job. */
export const KEEP_FROM = `
  SELECT id FROM runs WHERE job_id = $1 AND status IN ${FINISHED_SQL} ORDER BY id DESC LIMIT 1 OFFSET $2`;

/**
 * A job's runs after an id, oldest first, with its retention: an ordered walk of runs_job that stops
 * at the limit (joined to jobs, the planner read the job's whole range and sorted it). $1 job, $2
 * after, $3 limit.
 */
export const JOB_RUNS = `
  SELECT id, job_id, status, created_at, finished_at, (SELECT retention FROM jobs WHERE id = $1) AS retention
  FROM runs WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3`;

/** Jobs with a retention of their own. */
export const JOBS_WITH_RETENTION = `SELECT id, retention FROM jobs WHERE retention <> '{}'::jsonb`;

/**
 * Delete the finished runs among $1 (ids); cascades to attempts, logs, progress, late reports.
 * Batched deletes rather than dropping time partitions: `bench:prune` measured partitions at a
 * third of the pruning CPU (33 against 100 ms per 1,000 runs) but 25 % more server CPU on every
 * hot-path statement, 14 % more per run in all (docs/retention.md).
 */
export const DELETE_FINISHED_RUNS = `
  DELETE FROM runs WHERE id = ANY($1::bigint[]) AND status IN ${FINISHED_SQL} AND ${NOT_OF_UNFINISHED_INSTANCE}
  RETURNING 1`;

/**
 * Ended workflow instances in end order after a cursor, with their number of step rows: one range of
 * workflow_instances_finished, one range of the steps' primary key per instance.
 * $1 end time bound, $2/$3 the cursor (finished_at, id), $4 limit.
 */
export const INSTANCES_TO_PRUNE = `
  SELECT i.id, i.state, i.finished_at, (SELECT count(*) FROM workflow_steps s WHERE s.instance_id = i.id) AS steps
  FROM workflow_instances i
  WHERE i.finished_at IS NOT NULL AND i.finished_at < $1 AND i.finished_at >= $2 AND (i.finished_at > $2 OR i.id > $3)
  ORDER BY i.finished_at, i.id LIMIT $4`;

/**
 * Delete up to $2 map items of the instances among $1 that are still ended: the rows picked by a
 * range of the items' primary key per instance, then deleted by their ctid (a TID scan), as the
 * ledger's prune deletes by key rather than hashing a sub-select against the whole table.
 */
export const PRUNE_MAP_ITEMS = `
  DELETE FROM workflow_map_items WHERE ctid = ANY(ARRAY(
    SELECT m.ctid FROM workflow_map_items m JOIN workflow_instances i ON i.id = m.instance_id
    WHERE i.id = ANY($1::bigint[]) AND i.state IN ${ENDED_INSTANCE_SQL} LIMIT $2)) RETURNING 1`;

/**
 * Delete the instances among $1 that are still ended and hold no map item; cascades to their step
 * rows. One statement: its own transaction.
 */
export const DELETE_ENDED_INSTANCES = `
  DELETE FROM workflow_instances i WHERE i.id = ANY($1::bigint[]) AND i.state IN ${ENDED_INSTANCE_SQL}
    AND i.finished_at IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM workflow_map_items m WHERE m.instance_id = i.id) RETURNING 1`;

/**
 * Delete up to $2 ledger rows last written before $1, on skipped_fires_recorded, then by primary key.
 * As `id IN (SELECT …)` the planner hashed the batch and scanned the whole table for it.
 */
export const PRUNE_SKIPPED_FIRES = `
  DELETE FROM skipped_fires WHERE id = ANY(ARRAY(
    SELECT id FROM skipped_fires WHERE recorded_at < $1 ORDER BY recorded_at LIMIT $2)) RETURNING 1`;

/** Delete up to $2 audit entries written before $1, on audit_log_at, then by primary key. */
export const PRUNE_AUDIT_LOG = `
  DELETE FROM audit_log WHERE id = ANY(ARRAY(SELECT id FROM audit_log WHERE at < $1 ORDER BY at LIMIT $2)) RETURNING 1`;

export async function runsToPrune(
  c: PostgresConnection,
  after: PruneCursor | null,
  until: number,
  limit: number,
): Promise<PruneCandidate[]> {
  const rows = await c.query<PruneRow>('runsToPrune', RUNS_TO_PRUNE, [
    until,
    after?.finishedAt ?? Number.MIN_SAFE_INTEGER,
    after?.id ?? 0,
    limit,
  ]);
  return rows.map((row) => pruneCandidateFromRow(row));
}

export async function jobRunsToPrune(
  c: PostgresConnection,
  jobId: number,
  keepLast: number,
  after: number,
  limit: number,
): Promise<JobPruneScan> {
  const [keep] = await c.query<{ id: number }>('jobRunsToPrune', KEEP_FROM, [jobId, keepLast - 1]);
  const keepFrom = keep?.id ?? null;
  const rows = await c.query<PruneRow>('jobRunsToPrune', JOB_RUNS, [jobId, after, limit]);
  return {
    runs: rows.map((row) => pruneCandidateFromRow(row, keepFrom !== null && row.id < keepFrom)),
    keepFrom,
  };
}

export async function jobsWithRetention(
  c: PostgresConnection,
): Promise<Array<{ jobId: number; retention: JobRetention }>> {
  const rows = await c.query<{ id: number; retention: string }>('jobsWithRetention', JOBS_WITH_RETENTION, []);
  return rows.map((row) => ({ jobId: row.id, retention: retentionFromColumn(row.retention) }));
}

export async function deleteFinishedRuns(c: PostgresConnection, ids: readonly number[]): Promise<number> {
  if (ids.length === 0) return 0;
  return (await c.query('deleteFinishedRuns', DELETE_FINISHED_RUNS, [ids])).length;
}

export async function workflowInstancesToPrune(
  c: PostgresConnection,
  after: PruneCursor | null,
  until: number,
  limit: number,
): Promise<InstancePruneCandidate[]> {
  const rows = await c.query<InstancePruneRow>('workflowInstancesToPrune', INSTANCES_TO_PRUNE, [
    until,
    after?.finishedAt ?? Number.MIN_SAFE_INTEGER,
    after?.id ?? 0,
    limit,
  ]);
  return rows.map(instancePruneCandidateFromRow);
}

export async function pruneWorkflowMapItems(
  c: PostgresConnection,
  instanceIds: readonly number[],
  limit: number,
): Promise<number> {
  if (instanceIds.length === 0) return 0;
  return (await c.query('pruneWorkflowMapItems', PRUNE_MAP_ITEMS, [instanceIds, limit])).length;
}

export async function deleteEndedWorkflowInstances(
  c: PostgresConnection,
  instanceIds: readonly number[],
): Promise<number> {
  if (instanceIds.length === 0) return 0;
  return (await c.query('deleteEndedWorkflowInstances', DELETE_ENDED_INSTANCES, [instanceIds])).length;
}

export async function pruneSkippedFires(
  c: PostgresConnection,
  before: number,
  limit: number,
): Promise<number> {
  return (await c.query('pruneSkippedFires', PRUNE_SKIPPED_FIRES, [before, limit])).length;
}

export async function pruneAuditLog(c: PostgresConnection, before: number, limit: number): Promise<number> {
  return (await c.query('pruneAuditLog', PRUNE_AUDIT_LOG, [before, limit])).length;
}

/** PostgreSQL reuses and returns space through (auto)vacuum: nothing to do here. */
export async function reclaimSpace(
  _c: PostgresConnection,
  _maxPages: number,
  _minFreeShare: number,
): Promise<number> {
  return 0;
}

/** The settings that decide whether deleted rows' space is reused: autovacuum and its statistics. */
export const VACUUM_SETTINGS = `
  SELECT current_setting('autovacuum') AS autovacuum, current_setting('track_counts') AS track_counts,
         current_setting('autovacuum_naptime') AS naptime`;

export async function spaceUpkeep(c: PostgresConnection): Promise<SpaceUpkeep> {
  const [row] = await c.query<{ autovacuum: string; track_counts: string; naptime: string }>(
    'spaceUpkeep',
    VACUUM_SETTINGS,
    [],
  );
  if (row?.autovacuum === 'on' && row.track_counts === 'on')
    return { ok: true, detail: `autovacuum on (naptime ${row.naptime})` };
  return {
    ok: false,
    detail: `autovacuum is ${row?.autovacuum === 'on' ? 'on but track_counts is off' : 'off'}: the space of deleted rows is never reused, and the database grows however much is pruned`,
  };
}
