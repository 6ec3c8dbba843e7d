// Firing on SQLite: due jobs, the fire transaction, and runs fired ahead of their instant
// (the Store contract's Firing section and the fire-ahead operations of Workers at scale).

import type { SkipReason } from '@kairos/client';
import { BUFFERED_AT } from '../../core/overlap.ts';
import { DUE_JOB_COLUMNS, type DueJobRow, dueJobsFromRows, traceColumn } from '../rows.ts';
import {
  type ClaimedRun,
  type DueJob,
  type FireEntry,
  type FireResult,
  type Lease,
  LeaseLostError,
  type Partitions,
  type PollDispatch,
} from '../store.ts';
import { shardNewRuns } from './broadcasts.ts';
import type { SqliteConnection } from './connection.ts';
import { claimIds, dispatchRuns } from './dispatch.ts';
import * as hot from './hot-statements.ts';
import { applyOverlap, countRuns, hasPolicies, recordSkipped } from './schedules.ts';
import { fireWorkflow } from './workflow-fires.ts';

export function dueJobs(c: SqliteConnection, partitions: Partitions, now: number, limit: number): DueJob[] {
  return c.run('dueJobs', () => {
    const rows = c
      .sql(
        `SELECT ${DUE_JOB_COLUMNS} FROM jobs
         WHERE next_fire_at IS NOT NULL AND paused = 0 AND next_fire_at <= ?
           AND (id % ?) IN (SELECT value FROM json_each(?))
         ORDER BY next_fire_at LIMIT ?`,
      )
      .all(now, partitions.count, JSON.stringify(partitions.owned), limit) as DueJobRow[];
    return dueJobsFromRows(rows);
  });
}

export function nextFireAt(c: SqliteConnection, partitions: Partitions): number | null {
  return c.run('nextFireAt', () => {
    // Walks the jobs_due index from its start and stops at the first owned job.
    const row = c
      .sql(
        `SELECT next_fire_at FROM jobs
         WHERE next_fire_at IS NOT NULL AND paused = 0 AND (id % ?) IN (SELECT value FROM json_each(?))
         ORDER BY next_fire_at LIMIT 1`,
      )
      .get(partitions.count, JSON.stringify(partitions.owned)) as { next_fire_at: number } | undefined;
    return row?.next_fire_at ?? null;
  });
}

export function fire(
  c: SqliteConnection,
  entries: readonly FireEntry[],
  leases: readonly Lease[] | null,
  now: number,
): FireResult {
  const result = c.run('fire', () =>
    c.db
      .transaction(() => {
        if (leases) checkLeases(c, leases, now);
        const advance = c.sql(
          'UPDATE jobs SET next_fire_at = ? WHERE id = ? AND next_fire_at = ? AND paused = 0 RETURNING group_name',
        );
        const out: FireResult = { runs: 0, conflicts: 0, groups: [] };
        // The runs of plain entries wait here and are inserted in one statement (see
        // hot.INSERT_FIRES), before an entry with policies and at the end: ids in entry order.
        const pending: Array<
          [jobId: number, fireTime: number, availableAt: number, traceContext: string | null]
        > = [];
        const flush = () => {
          if (pending.length === 0) return;
          out.runs += c.sql(hot.INSERT_FIRES).run({ now, fires: JSON.stringify(pending) }).changes;
          pending.length = 0;
        };
        /** The ledger rows of plain entries, written in one statement at the end. */
        const ledger: Array<
          [jobId: number, reason: string, first: number, last: number, count: number | null]
        > = [];
        for (const entry of entries) {
          const advanced = advance.get(entry.next, entry.jobId, entry.expected) as
            | { group_name: string }
            | undefined;
          if (!advanced) {
            out.conflicts++;
            continue;
          }
          if (entry.workflow) {
            // A workflow's job: its fires start instances (store/sqlite/workflow-fires.ts).
            flush();
            const fired = fireWorkflow((text) => c.sql(text), entry, now);
            out.runs += fired.runs;
            for (const g of fired.groups) if (!out.groups.includes(g)) out.groups.push(g);
            if (fired.skipped.length > 0) out.skipped = [...(out.skipped ?? []), ...fired.skipped];
            continue;
          }
          if (hasPolicies(entry)) {
            flush();
            fireWithPolicies(c, entry, advanced.group_name, now, out);
            continue;
          }
          for (const range of entry.skipped ?? [])
            ledger.push([entry.jobId, range.reason, range.first, range.last, range.count]);
          entry.fires.forEach((fireTime, i) => {
            pending.push([
              entry.jobId,
              fireTime,
              entry.availableAt?.[i] ?? fireTime,
              traceColumn(entry.traceContexts?.[i]),
            ]);
          });
          if (entry.fires.length > 0 && !out.groups.includes(advanced.group_name))
            out.groups.push(advanced.group_name);
        }
        flush();
        if (ledger.length > 0) {
          const written = c.sql(hot.INSERT_SKIPPED).all({ now, rows: JSON.stringify(ledger) }) as Array<{
            job_id: number;
            reason: SkipReason;
            count: number | null;
          }>;
          out.skipped = [
            ...(out.skipped ?? []),
            ...written.map((row) => ({ jobId: row.job_id, reason: row.reason, count: row.count })),
          ];
        }
        shardNewRuns(
          (text) => c.sql(text),
          entries.map((e) => e.jobId),
          now,
        );
        return out;
      })
      .immediate(),
  );
  for (const group of result.groups) c.emit({ type: 'runs', group });
  return result;
}

/** The runs of an entry whose job won its compare-and-set, through its overlap, ledger and maxRuns steps. */
function fireWithPolicies(
  c: SqliteConnection,
  entry: FireEntry,
  group: string,
  now: number,
  out: FireResult,
): void {
  const insert = c.sql(
    `INSERT INTO runs (job_id, group_name, handler, cause, fire_time, params, priority, status, max_attempts,
         retry, timeout_ms, created_at, available_at, trace_context, namespace)
       SELECT id, group_name, handler, 'schedule', ?, params, priority, 'queued', json_extract(retry, '$.maxAttempts'),
         retry, timeout_ms, ?, ?, ?, namespace
       FROM jobs WHERE id = ?
       ON CONFLICT DO NOTHING`,
  );
  const sql = (text: string) => c.sql(text);
  const { keep, skipped, groups } = applyOverlap(sql, entry, now);
  for (const g of groups) if (!out.groups.includes(g)) out.groups.push(g);
  let runs = 0;
  for (const { i, buffered } of keep) {
    const fireTime = entry.fires[i]!;
    const availableAt = buffered ? BUFFERED_AT : (entry.availableAt?.[i] ?? fireTime);
    runs += insert.run(
      fireTime,
      now,
      availableAt,
      traceColumn(entry.traceContexts?.[i]),
      entry.jobId,
    ).changes;
  }
  out.runs += runs;
  if (entry.countRuns) countRuns(sql, entry.jobId, runs);
  const ranges = skipped ? [...(entry.skipped ?? []), skipped] : (entry.skipped ?? []);
  out.skipped = [...(out.skipped ?? []), ...recordSkipped(sql, entry.jobId, ranges, now)];
  if (runs > 0 && !out.groups.includes(group)) out.groups.push(group);
}

function checkLeases(c: SqliteConnection, leases: readonly Lease[], now: number): void {
  const held = c.sql('SELECT 1 FROM leases WHERE name = ? AND owner = ? AND epoch = ? AND expires_at > ?');
  for (const lease of leases) {
    if (!held.get(lease.name, lease.owner, lease.epoch, now)) {
      throw new LeaseLostError(
        `lease ${lease.name} epoch ${lease.epoch} is no longer held by ${lease.owner}`,
      );
    }
  }
}

export function dispatchAhead(
  c: SqliteConnection,
  workerId: string,
  max: number,
  until: number,
  now: number,
  claimSeq: number | null = null,
): ClaimedRun[] {
  return c.run('dispatchAhead', () => {
    // Read first, outside a write transaction: most polls find nothing ahead.
    const worker = c
      .sql(`SELECT namespace, group_name, handlers FROM workers WHERE id = ? AND status = 'active'`)
      .get(workerId) as { namespace: string; group_name: string; handlers: string } | undefined;
    if (!worker) return [];
    const limited = c
      .sql(
        `SELECT 1 FROM namespace_group_limits WHERE namespace = ? AND group_name = ?
           AND (max_concurrency IS NOT NULL OR rate_limit IS NOT NULL)`,
      )
      .get(worker.namespace, worker.group_name);
    if (limited) return [];
    // Queued runs of plain jobs that become available in (now, until], soonest first, through
    // runs_ahead; runs of jobs with dispatch policies are passed over (they wait for their instant).
    const ids = (
      c
        .sql(
          `SELECT r.id FROM runs r JOIN jobs j ON j.id = r.job_id
           WHERE r.status = 'queued' AND r.group_name = @group AND r.available_at > @now
             AND r.available_at <= @until AND r.target_worker_id IS NULL AND r.namespace = @namespace
             AND r.handler IN (SELECT value FROM json_each(@handlers)) AND ${hot.PLAIN_DISPATCH}
           ORDER BY r.available_at, r.id LIMIT @max`,
        )
        .all({
          namespace: worker.namespace,
          group: worker.group_name,
          now,
          until,
          handlers: worker.handlers,
          max,
        }) as Array<{
        id: number;
      }>
    ).map((row) => row.id);
    if (ids.length === 0) return [];
    return c.db
      .transaction((): ClaimedRun[] => {
        // The worker still active: what was read may have changed since (the claim checks the runs).
        const active = c.sql(`SELECT 1 FROM workers WHERE id = ? AND status = 'active'`).get(workerId);
        return active ? claimIds(c, workerId, ids, now, claimSeq) : [];
      })
      .immediate();
  });
}

export function withdrawFiresAhead(c: SqliteConnection, jobId: number, after: number): number {
  return c.run('withdrawFiresAhead', () =>
    c.db
      .transaction(() => {
        // Queued and never claimed at this moment (the one writer: no claim can interleave), and
        // later than every run of the job that stays (held, started, retried, ended), so that the
        // next fire never moves back to or before an instant that has a run.
        const gone = c
          .sql(
            `DELETE FROM runs WHERE job_id = @job AND cause = 'schedule' AND status = 'queued' AND attempt = 0
               AND fire_time > coalesce((SELECT max(fire_time) FROM runs WHERE job_id = @job AND fire_time > @after
                 AND NOT (cause = 'schedule' AND status = 'queued' AND attempt = 0)), @after)
             RETURNING fire_time`,
          )
          .all({ job: jobId, after }) as Array<{ fire_time: number }>;
        if (gone.length === 0) return 0;
        const earliest = Math.min(...gone.map((run) => run.fire_time));
        c.sql(
          `UPDATE jobs SET next_fire_at = min(coalesce(next_fire_at, ?), ?) WHERE id = ? AND paused = 1`,
        ).run(earliest, earliest, jobId);
        return gone.length;
      })
      .immediate(),
  );
}

export function dispatchForPoll(
  c: SqliteConnection,
  workerId: string,
  max: number,
  now: number,
  random: number,
  claimSeq: number | null,
  reserveAfterMs: number,
): PollDispatch {
  // In process, two statements cost no more than one.
  const runs = dispatchRuns(c, workerId, max, now, random, claimSeq, reserveAfterMs);
  return { runs, nextAvailableAt: runs.length > 0 ? null : nextAvailableAt(c, workerId, now) };
}

export function hasQueuedRuns(c: SqliteConnection, group: string, until: number): boolean {
  return c.run('hasQueuedRuns', () =>
    Boolean(
      c
        .sql(
          `SELECT EXISTS (SELECT 1 FROM runs INDEXED BY runs_ahead
             WHERE status = 'queued' AND group_name = ? AND available_at <= ?) AS found`,
        )
        .pluck()
        .get(group, until),
    ),
  );
}

export function nextAvailableAt(c: SqliteConnection, workerId: string, now: number): number | null {
  return c.run('nextAvailableAt', () => {
    const row = c
      .sql(
        `SELECT min(available_at) AS at FROM runs
         WHERE status = 'queued' AND group_name = (SELECT group_name FROM workers WHERE id = ?) AND available_at > ?`,
      )
      .get(workerId, now) as { at: number | null };
    return row.at;
  });
}
