import type Database from 'better-sqlite3';
import type { SkippedRange } from '../../core/fire-plan.ts';
import type { FireEntry, SkippedRecord, SkipWritten } from '../store.ts';

type Sql = (text: string) => Database.Statement<unknown[], unknown>;

const CANCELLED_BY_OVERLAP = JSON.stringify({
  name: 'Cancelled',
  message: 'cancelled by the overlap policy (cancel-previous) of a newer fire',
});

/** Whether an entry needs the schedule-policy steps of the fire transaction. */
export function hasPolicies(entry: FireEntry): boolean {
  return entry.overlap !== undefined || entry.countRuns === true || (entry.skipped?.length ?? 0) > 0;
}

/**
 * Applies the overlap policy inside the fire transaction (the job's row is already written by the
 * compare-and-set, so no other fire of the job interleaves). Answers the indexes of the fires to
 * insert and the fires dropped as `overlap`.
 */
export function applyOverlap(
  sql: Sql,
  entry: FireEntry,
  now: number,
): { keep: number[]; skipped: SkippedRange | null } {
  const all = entry.fires.map((_, i) => i);
  if (!entry.overlap || all.length === 0) return { keep: all, skipped: null };
  const active = sql(
    `SELECT id, status, attempt FROM runs WHERE job_id = ? AND status IN ('queued', 'running')`,
  ).all(entry.jobId) as Array<{ id: number; status: string; attempt: number }>;
  let keep: number[];
  if (entry.overlap === 'skip') {
    keep = active.length === 0 ? [0] : [];
  } else {
    for (const run of active) {
      if (run.status === 'running') {
        sql(
          `UPDATE attempts SET status = 'cancelled', finished_at = ?, error = ? WHERE run_id = ? AND attempt = ?`,
        ).run(now, CANCELLED_BY_OVERLAP, run.id, run.attempt);
      }
      sql(
        `UPDATE runs SET status = 'cancelled', finished_at = ?, error = ?, lease_expires_at = NULL, deadline_at = NULL
         WHERE id = ?`,
      ).run(now, CANCELLED_BY_OVERLAP, run.id);
    }
    keep = [all.length - 1];
  }
  const dropped = all.filter((i) => !keep.includes(i)).map((i) => entry.fires[i]!);
  return {
    keep,
    skipped:
      dropped.length === 0
        ? null
        : {
            reason: 'overlap',
            first: dropped[0]!,
            last: dropped[dropped.length - 1]!,
            count: dropped.length,
          },
  };
}

/** Writes ledger rows; a range already recorded (same job, reason, first fire) is kept once. */
export function recordSkipped(
  sql: Sql,
  jobId: number,
  ranges: readonly SkippedRange[],
  now: number,
): SkipWritten[] {
  const insert = sql(
    `INSERT INTO skipped_fires (job_id, reason, first_fire, last_fire, count, recorded_at)
     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  );
  const written: SkipWritten[] = [];
  for (const range of ranges) {
    if (insert.run(jobId, range.reason, range.first, range.last, range.count, now).changes > 0) {
      written.push({ jobId, reason: range.reason, count: range.count });
    }
  }
  return written;
}

export function countRuns(sql: Sql, jobId: number, runs: number): void {
  if (runs > 0) sql('UPDATE jobs SET runs_fired = runs_fired + ? WHERE id = ?').run(runs, jobId);
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
