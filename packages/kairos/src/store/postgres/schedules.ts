// Schedules on PostgreSQL: the fire steps for jobs with policies (overlap, jitter, run cap, ledger),
// one commented statement per constant, and the helpers that run them inside the fire transaction.

import type pg from 'pg';
import type { SkippedRange } from '../../core/fire-plan.ts';
import type { FireEntry, SkippedRecord, SkipWritten } from '../store.ts';

/** Whether an entry needs the per-job policy steps; entries without them stay in the one-statement batch. */
export function needsPolicySteps(entry: FireEntry): boolean {
  return entry.overlap !== undefined || entry.countRuns === true || entry.availableAt !== undefined;
}

/** Compare-and-set one job's next fire time. $1 job id, $2 expected, $3 next. */
export const ADVANCE_JOB = `
  UPDATE jobs SET next_fire_at = $3 WHERE id = $1 AND next_fire_at = $2 AND NOT paused RETURNING group_name`;

/** The job's active runs, locked so that a concurrent cancel or claim waits for this fire. $1 job id. */
export const ACTIVE_RUNS = `
  SELECT id, status, attempt FROM runs WHERE job_id = $1 AND status IN ('queued', 'running') FOR UPDATE`;

/** Cancel runs for the cancel-previous overlap policy, with their running attempts. $1 run ids, $2 now, $3 error. */
export const CANCEL_ACTIVE_RUNS = `
  WITH attempt_ended AS (
    UPDATE attempts a SET status = 'cancelled', finished_at = $2::bigint, error = $3::jsonb
    FROM runs r WHERE r.id = ANY($1::bigint[]) AND a.run_id = r.id AND a.attempt = r.attempt AND a.status = 'running')
  UPDATE runs SET status = 'cancelled', finished_at = $2::bigint, error = $3::jsonb, lease_expires_at = NULL,
    deadline_at = NULL
  WHERE id = ANY($1::bigint[]) AND status IN ('queued', 'running')`;

/** Insert scheduled runs with their own available time (jitter). $1 job id, $2 [{fire_time, available_at}], $3 now. */
export const INSERT_SCHEDULED_RUNS = `
  INSERT INTO runs (job_id, group_name, handler, cause, fire_time, params, priority, status, max_attempts, retry,
    timeout_ms, created_at, available_at)
  SELECT j.id, j.group_name, j.handler, 'schedule', f.fire_time, j.params, j.priority, 'queued',
    (j.retry->>'maxAttempts')::int, j.retry, j.timeout_ms, $3, f.available_at
  FROM jsonb_to_recordset($2::jsonb) AS f(fire_time bigint, available_at bigint), jobs j
  WHERE j.id = $1
  ORDER BY f.fire_time
  ON CONFLICT DO NOTHING`;

/** Count runs the schedule created. $1 job id, $2 runs. */
export const COUNT_RUNS = `UPDATE jobs SET runs_fired = runs_fired + $2 WHERE id = $1`;

/**
 * Ledger rows of a fire batch, written only for jobs whose compare-and-set won in this transaction
 * (their next fire is now the planned one); a range already recorded is kept once.
 * $1 [{job_id, next, reason, first_fire, last_fire, count}], $2 now.
 */
export const RECORD_SKIPPED = `
  INSERT INTO skipped_fires (job_id, reason, first_fire, last_fire, count, recorded_at)
  SELECT x.job_id, x.reason, x.first_fire, x.last_fire, x.count, $2
  FROM jsonb_to_recordset($1::jsonb)
    AS x(job_id bigint, next bigint, reason text, first_fire bigint, last_fire bigint, count bigint)
  JOIN jobs j ON j.id = x.job_id AND j.next_fire_at IS NOT DISTINCT FROM x.next
  ON CONFLICT DO NOTHING
  RETURNING job_id, reason, count`;

/** The ledger of a job, newest first. $1 job id, $2 before id or null, $3 limit. */
export const LIST_SKIPPED = `
  SELECT s.*, j.name AS job_name FROM skipped_fires s JOIN jobs j ON j.id = s.job_id
  WHERE s.job_id = $1 AND ($2::bigint IS NULL OR s.id < $2) ORDER BY s.id DESC LIMIT $3`;

const CANCELLED_BY_OVERLAP = JSON.stringify({
  name: 'Cancelled',
  message: 'cancelled by the overlap policy (cancel-previous) of a newer fire',
});

/** Ledger input rows for {@link RECORD_SKIPPED}. */
export function skippedInput(entry: FireEntry, ranges: readonly SkippedRange[]): object[] {
  return ranges.map((r) => ({
    job_id: entry.jobId,
    next: entry.next,
    reason: r.reason,
    first_fire: r.first,
    last_fire: r.last,
    count: r.count,
  }));
}

/**
 * Fires one entry with policy steps, inside the caller's transaction. The compare-and-set takes the
 * job's row lock, so no other fire of this job interleaves with the overlap decision.
 */
export async function fireWithPolicies(
  client: pg.PoolClient,
  entry: FireEntry,
  now: number,
): Promise<{ advanced: boolean; runs: number; group: string | null; skipped: SkipWritten[] }> {
  const advanced = await client.query<{ group_name: string }>(ADVANCE_JOB, [
    entry.jobId,
    entry.expected,
    entry.next,
  ]);
  if (advanced.rows.length === 0) return { advanced: false, runs: 0, group: null, skipped: [] };
  let keep = entry.fires.map((_, i) => i);
  if (entry.overlap && keep.length > 0) {
    const active = await client.query<{ id: number; status: string }>(ACTIVE_RUNS, [entry.jobId]);
    if (entry.overlap === 'skip') {
      keep = active.rows.length === 0 ? [0] : [];
    } else {
      if (active.rows.length > 0) {
        await client.query(CANCEL_ACTIVE_RUNS, [active.rows.map((r) => r.id), now, CANCELLED_BY_OVERLAP]);
      }
      keep = [keep.length - 1];
    }
  }
  const ranges = [...(entry.skipped ?? [])];
  const dropped = entry.fires.filter((_, i) => !keep.includes(i));
  if (dropped.length > 0) {
    ranges.push({
      reason: 'overlap',
      first: dropped[0]!,
      last: dropped[dropped.length - 1]!,
      count: dropped.length,
    });
  }
  let runs = 0;
  if (keep.length > 0) {
    const fires = keep.map((i) => ({
      fire_time: entry.fires[i]!,
      available_at: entry.availableAt?.[i] ?? entry.fires[i]!,
    }));
    runs =
      (await client.query(INSERT_SCHEDULED_RUNS, [entry.jobId, JSON.stringify(fires), now])).rowCount ?? 0;
  }
  if (entry.countRuns && runs > 0) await client.query(COUNT_RUNS, [entry.jobId, runs]);
  const skipped =
    ranges.length === 0
      ? []
      : (
          await client.query<{ job_id: number; reason: string; count: number | null }>(RECORD_SKIPPED, [
            JSON.stringify(skippedInput(entry, ranges)),
            now,
          ])
        ).rows.map(writtenFromRow);
  return { advanced: true, runs, group: runs > 0 ? advanced.rows[0]!.group_name : null, skipped };
}

export function writtenFromRow(row: { job_id: number; reason: string; count: number | null }): SkipWritten {
  return { jobId: row.job_id, reason: row.reason as SkipWritten['reason'], count: row.count };
}

export interface SkippedRow {
  id: number;
  job_id: number;
  job_name: string;
  reason: string;
  first_fire: number;
  last_fire: number;
  count: number | null;
  recorded_at: number;
}

export function skippedFromRow(row: SkippedRow): SkippedRecord {
  return {
    id: row.id,
    jobId: row.job_id,
    jobName: row.job_name,
    reason: row.reason as SkippedRecord['reason'],
    first: row.first_fire,
    last: row.last_fire,
    count: row.count,
    recordedAt: row.recorded_at,
  };
}
