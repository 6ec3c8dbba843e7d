// Ending attempts on SQLite: outcomes, expired attempts, late reports, lost workers (the Store
// contract's Ending attempts section).

import type { AttemptRef } from '@kairos/client';
import { type DecisionRow, decisionFromRow, toJson } from '../rows.ts';
import type { AttemptOutcome, DecisionInput, ExpiredAttempt, LateReport } from '../store.ts';
import type { SqliteConnection } from './connection.ts';
import * as hot from './hot-statements.ts';
import { afterRunsEnded } from './schedules.ts';

/**
 * Late reports of @worker ([[run id, attempt, outcome, error], …]) for its attempts that the node
 * ended (lost, timed out, cancelled), unless the report says what the end says; the first per attempt.
 */
const LATE_REPORTS = `INSERT INTO late_reports (run_id, attempt, outcome, reported_at, error)
  SELECT a.run_id, a.attempt, v.value ->> 2, @now, v.value ->> 3
  FROM json_each(@reports) v JOIN attempts a ON a.run_id = v.value ->> 0 AND a.attempt = v.value ->> 1
  WHERE a.worker_id = @worker AND a.status IN ('lost', 'timed_out', 'cancelled') AND a.status <> v.value ->> 2
  ON CONFLICT DO NOTHING`;

export function recordLateReports(
  c: SqliteConnection,
  workerId: string,
  reports: readonly LateReport[],
  now: number,
): number {
  if (reports.length === 0) return 0;
  return c.run(
    'recordLateReports',
    () =>
      c.sql(LATE_REPORTS).run({
        worker: workerId,
        now,
        reports: JSON.stringify(reports.map((r) => [r.runId, r.attempt, r.outcome, r.error])),
      }).changes,
  );
}

export function expiredAttempts(c: SqliteConnection, now: number, limit: number): ExpiredAttempt[] {
  return c.run('expiredAttempts', () => {
    const rows = c.sql(hot.EXPIRED_ATTEMPTS).all({ now, limit }) as Array<
      DecisionRow & { worker_id: string; reason: 'lost' | 'timed_out' }
    >;
    return rows.map((row) => ({ ...decisionFromRow(row), reason: row.reason, workerId: row.worker_id }));
  });
}

export function runsForDecision(c: SqliteConnection, refs: readonly AttemptRef[]): DecisionInput[] {
  return c.run('runsForDecision', () =>
    (
      c
        .sql(hot.DECISION_INPUTS)
        .all(JSON.stringify(refs.map((ref) => [ref.runId, ref.attempt]))) as DecisionRow[]
    ).map(decisionFromRow),
  );
}

export function finishAttempts(
  c: SqliteConnection,
  outcomes: readonly AttemptOutcome[],
  now: number,
): boolean[] {
  const requeued = new Set<string>();
  const applied = c.run('finishAttempts', () =>
    c.db
      .transaction(() => {
        const retry = c.sql(
          `UPDATE runs SET status = 'queued', available_at = ?, error = ?, deadline_at = NULL
             WHERE id = ? AND attempt = ? AND status = 'running' AND (? IS NULL OR worker_id = ?)
             RETURNING worker_id, started_at`,
        );
        // A lost end the reaper decided is written only if the worker's lease still ended by then:
        // a heartbeat that came after the sweep read the lease keeps the attempt running.
        const leaseLive = c.sql(
          `SELECT 1 FROM runs r JOIN workers w ON w.id = r.worker_id
             WHERE r.id = ? AND r.attempt = ? AND w.lease_expires_at > ?`,
        );
        const fenced = new Set(
          outcomes.filter(
            (o) => o.leaseEndedBy !== undefined && leaseLive.get(o.runId, o.attempt, o.leaseEndedBy),
          ),
        );
        // Ends (not retries) in one statement for the whole report: a batch of 200 is one update.
        const ends = outcomes.filter((o) => o.run.status !== 'queued' && !fenced.has(o));
        const endedRows =
          ends.length === 0
            ? []
            : (c.sql(hot.END_RUNS).all({
                now,
                ends: JSON.stringify(
                  ends.map((o) => [
                    o.runId,
                    o.attempt,
                    o.run.status,
                    toJson(o.result),
                    toJson(o.error),
                    o.workerId ?? null,
                  ]),
                ),
              }) as hot.EndedRunRow[]);
        // By run and attempt: a stale report may name a run that another attempt of it ended here.
        const endedByRef = new Map(endedRows.map((row) => [`${row.id}:${row.attempt}`, row]));
        const ended: Array<{ runId: number; jobId: number; workflowInstanceId: number | null }> = [];
        const attemptEnds: hot.EndedAttempt[] = [];
        const applied = outcomes.map((o) => {
          if (fenced.has(o)) return false;
          const error = toJson(o.error);
          let ran: { worker_id: string; started_at: number } | undefined;
          if (o.run.status === 'queued') {
            const by = o.workerId ?? null;
            ran = retry.get(o.run.availableAt, error, o.runId, o.attempt, by, by) as typeof ran;
            if (!ran) return false;
            requeued.add(o.group);
          } else {
            const row = endedByRef.get(`${o.runId}:${o.attempt}`);
            if (!row) return false;
            if (row.cause === 'schedule') scheduleAfterDelay(c, row.job_id, now);
            ended.push({ runId: o.runId, jobId: row.job_id, workflowInstanceId: row.workflow_instance_id });
            ran = row;
          }
          // An attempt that succeeded ended its run, whose row keeps what the attempt's would hold
          // (worker, start, end): no row of its own (see ATTEMPTS_OF_RUN).
          if (!(o.attemptStatus === 'succeeded' && o.run.status === 'succeeded'))
            attemptEnds.push([o.runId, o.attempt, ran.worker_id, o.attemptStatus, ran.started_at, error]);
          return true;
        });
        if (attemptEnds.length > 0) {
          c.sql(hot.END_ATTEMPTS).run(now, JSON.stringify(attemptEnds));
        }
        for (const group of afterRunsEnded((text) => c.sql(text), ended, now)) requeued.add(group);
        return applied;
      })
      .immediate(),
  );
  for (const group of requeued) c.emit({ type: 'runs', group });
  return applied;
}

export function markLostWorkers(c: SqliteConnection, now: number): string[] {
  return c.run('markLostWorkers', () =>
    (
      c
        .sql(
          `UPDATE workers SET status = 'lost' WHERE status IN ('active', 'draining') AND lease_expires_at <= ? RETURNING id`,
        )
        .all(now) as Array<{ id: string }>
    ).map((row) => row.id),
  );
}

export function pruneWorkers(c: SqliteConnection, before: number, limit: number): number {
  // Those still holding a running attempt stay (its run is found through runs_worker).
  return c.run(
    'pruneWorkers',
    () =>
      c
        .sql(
          `DELETE FROM workers WHERE id IN (
             SELECT w.id FROM workers w WHERE w.status IN ('stopped', 'lost') AND w.lease_expires_at < ?
               AND NOT EXISTS (SELECT 1 FROM runs r INDEXED BY runs_worker WHERE r.worker_id = w.id AND r.status = 'running')
             LIMIT ?)`,
        )
        .run(before, limit).changes,
  );
}

// Run ends that other sections make too (a cancel, an expiry) ----------------

/**
 * Ends run @id inside the caller's transaction (a cancel, an expiry): its fixed-delay job's next
 * fire, its dependents and its workflow instance follow, and their groups hear of it.
 */
export function endRun(
  c: SqliteConnection,
  id: number,
  status: string,
  now: number,
  result: string | null,
  error: string | null,
): void {
  const row = c
    .sql(
      `UPDATE runs SET status = ?, finished_at = ?, result = ?, error = ?, deadline_at = NULL
       WHERE id = ? RETURNING job_id, cause, workflow_instance_id`,
    )
    .get(status, now, result, error, id) as {
    job_id: number;
    cause: string;
    workflow_instance_id: number | null;
  };
  if (row.cause === 'schedule') scheduleAfterDelay(c, row.job_id, now);
  const ended = [{ runId: id, jobId: row.job_id, workflowInstanceId: row.workflow_instance_id }];
  for (const group of afterRunsEnded((text) => c.sql(text), ended, now)) c.emit({ type: 'runs', group });
}

/** A fixed-delay job waits for its scheduled run to end, then fires `delay` later. */
export function scheduleAfterDelay(c: SqliteConnection, jobId: number, now: number): void {
  const changed = c
    .sql(
      `UPDATE jobs SET next_fire_at = ? + delay_ms WHERE id = ? AND delay_ms IS NOT NULL AND next_fire_at IS NULL AND paused = 0`,
    )
    .run(now, jobId).changes;
  if (changed) c.emit({ type: 'jobs' });
}
