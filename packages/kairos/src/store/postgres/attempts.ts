// Ending attempts on PostgreSQL (the Store contract's "Ending attempts" section): late reports,
// expired attempts, the runs a decision needs, the fenced end of attempts with what it sets off,
// lost workers.

import type { AttemptRef } from '@kairos/client';
import { type DecisionRow, decisionFromRow } from '../rows.ts';
import type { AttemptOutcome, DecisionInput, ExpiredAttempt, LateReport } from '../store.ts';
import type { PostgresConnection } from './connection.ts';
import { broadcastDependents, DEPENDENTS_OF_ENDED, promoteBuffered } from './schedules.ts';
import { advanceWorkflows } from './workflows.ts';

/**
 * Late reports of worker $1 ($2 [{run_id, attempt, outcome, error}]) at $3, for its attempts that the
 * node ended (lost, timed out, cancelled), unless the report says what the end says; the first per attempt.
 */
export const LATE_REPORTS = `
  INSERT INTO late_reports (run_id, attempt, outcome, reported_at, error)
  SELECT a.run_id, a.attempt, x.outcome, $3::bigint, x.error
  FROM jsonb_to_recordset($2::jsonb) AS x(run_id bigint, attempt int, outcome text, error jsonb)
  JOIN attempts a ON a.run_id = x.run_id AND a.attempt = x.attempt
  WHERE a.worker_id = $1 AND a.status IN ('lost', 'timed_out', 'cancelled') AND a.status <> x.outcome
  ON CONFLICT DO NOTHING
  RETURNING 1`;

/**
 * Running attempts at $1 whose worker's lease ended (lost: it stopped heartbeating, was declared lost
 * or stopped; workers keep their rows) or whose deadline passed (timed out, which wins), the first $2
 * by run id. Workers are few and read whole; the running runs of each whose lease ended come through
 * runs_worker, the timed-out ones through a range of runs_deadline: no other run is read. The first
 * $2 of each worker suffice, and that LIMIT keeps the lateral read per worker: as a join, the planner
 * hashes every running run (it cannot tell how many workers' leases ended).
 */
export const EXPIRED_ATTEMPTS = `
  SELECT * FROM (
    SELECT r.*, 'lost' AS reason FROM workers w CROSS JOIN LATERAL (
      SELECT id, attempt, job_id, group_name, cause, retry, worker_id FROM runs
      WHERE worker_id = w.id AND status = 'running' AND (deadline_at IS NULL OR deadline_at > $1)
      ORDER BY id LIMIT $2) r
    WHERE w.lease_expires_at <= $1
    UNION ALL
    SELECT id, attempt, job_id, group_name, cause, retry, worker_id, 'timed_out'
    FROM runs WHERE status = 'running' AND deadline_at <= $1) expired
  ORDER BY id LIMIT $2`;

/** Runs still running with the given attempts, found by id as FINISH_ATTEMPTS finds them. $1 [{run_id, attempt}], $2 bigint[] the run ids. */
export const RUNS_FOR_DECISION = `
  SELECT r.id, r.attempt, r.job_id, r.group_name, r.cause, r.retry, r.worker_id
  FROM runs r JOIN jsonb_to_recordset($1::jsonb) AS x(run_id bigint, attempt int) ON r.id = x.run_id AND r.attempt = x.attempt
  WHERE r.id = ANY($2::bigint[]) AND (r.status = 'running') IS TRUE`;

/**
 * End attempts as decided, each only if its run is still running with that attempt (fencing) and,
 * for a lost end the reaper decided at lease_ended_by, only if its worker's lease still ended by then
 * (a heartbeat that reached the database after the sweep read the lease keeps the attempt), and for
 * a worker's report (worker_id), only if that worker holds the attempt;
 * insert the ended attempts' rows (written once, at the end: worker and start come from the run row,
 * which the end leaves; a stale or second end updates no run, so inserts nothing; an INSERT at the
 * claim and an UPDATE here cost the 40,000-run drain ~53 against ~46 ms of server CPU per 1,000
 * runs), but for an attempt that succeeded: its run's row, which it ended, says all its row would
 * (ATTEMPTS_OF_RUN); schedule the next fire of fixed-delay jobs whose scheduled run ended; and
 * create the runs of the ended runs' dependents. One row per ended run, `buffering` when its end
 * may have to promote a buffered run (afterRunsEnded), with the groups that got dependent runs.
 * $3 true leaves such runs alone, and the final ends of workflow step runs and of broadcast shards
 * (the caller ends them in a transaction that also promotes, advances the instance,
 * store/workflows.ts, or judges whether the broadcast is over, broadcasts.ts): the others end
 * here in one statement, its own transaction. A step run is known by a column of the row the
 * statement updates anyway, so the check costs other runs nothing.
 * The runs are found by their ids ($4, the run_ids of $1), through runs_pkey alone: joined only to
 * the input, the planner (which cannot tell how many rows the input holds) read every running run
 * through runs_worker, dead index entries included (970 heap pages for a batch of 200 after a
 * 20,000-run drain); given the ids it still ANDed them with all of runs_worker (20,400 entries).
 * `(status = 'running') IS TRUE` (status is never null) is the same test in a form that matches
 * no partial index's predicate.
 * $1 [{run_id, attempt, run_status, available_at, result, error, attempt_status, lease_ended_by,
 *   worker_id}], $2 now, $3 leave the runs that need a transaction, $4 bigint[] the run ids.
 */
export const FINISH_ATTEMPTS = `
  WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb)
      AS x(run_id bigint, attempt int, run_status text, available_at bigint, result jsonb, error jsonb, attempt_status text,
        lease_ended_by bigint, worker_id text)),
  ended AS (
    UPDATE runs r SET
      status = i.run_status,
      available_at = coalesce(i.available_at, r.available_at),
      finished_at = CASE WHEN i.run_status = 'queued' THEN NULL ELSE $2::bigint END,
      result = CASE WHEN i.run_status = 'queued' THEN r.result ELSE i.result END,
      error = i.error, deadline_at = NULL
    FROM input i, jobs p
    WHERE r.id = ANY($4::bigint[]) AND r.id = i.run_id AND r.attempt = i.attempt
      AND (r.status = 'running') IS TRUE
      AND p.id = r.job_id
      AND (i.worker_id IS NULL OR r.worker_id = i.worker_id)
      AND (i.lease_ended_by IS NULL OR NOT EXISTS (
        SELECT 1 FROM workers w WHERE w.id = r.worker_id AND w.lease_expires_at > i.lease_ended_by))
      AND (NOT $3::boolean OR i.run_status = 'queued'
        OR NOT (p.buffers OR r.promotes OR r.workflow_instance_id IS NOT NULL OR r.broadcast_run_id IS NOT NULL))
    RETURNING r.id, r.attempt, r.job_id, r.cause, r.status, r.result, r.worker_id, r.started_at, r.workflow_instance_id,
      r.broadcast_run_id, i.attempt_status, i.error, i.run_status <> 'queued' AND (p.buffers OR r.promotes) AS buffering),
  attempts_ended AS (
    INSERT INTO attempts (run_id, attempt, worker_id, status, started_at, finished_at, error)
    SELECT id, attempt, worker_id, attempt_status, started_at, $2::bigint, error FROM ended
    WHERE NOT (attempt_status = 'succeeded' AND status = 'succeeded')),
  rescheduled AS (
    UPDATE jobs j SET next_fire_at = $2::bigint + j.delay_ms
    FROM (SELECT DISTINCT job_id FROM ended WHERE cause = 'schedule' AND status <> 'queued') e
    WHERE j.id = e.job_id AND j.delay_ms IS NOT NULL AND j.next_fire_at IS NULL AND NOT j.paused),
  ${DEPENDENTS_OF_ENDED.trim()}
  SELECT id, attempt, job_id, status, buffering, workflow_instance_id, broadcast_run_id,
    (SELECT array_agg(group_name) FROM dependents) AS groups
  FROM ended`;

/** Workers gone for good: stopped or lost, lease ended before $1, no running attempt; at most $2. */
export const PRUNE_WORKERS = `
  DELETE FROM workers WHERE id IN (
    SELECT w.id FROM workers w WHERE w.status IN ('stopped', 'lost') AND w.lease_expires_at < $1
      AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.worker_id = w.id AND r.status = 'running')
    LIMIT $2)
  RETURNING id`;

/** A run that FINISH_ATTEMPTS ended (or queued again), with what its end set off. */
interface FinishedRow {
  id: number;
  attempt: number;
  job_id: number;
  status: string;
  buffering: boolean;
  /** Set for a workflow's step run: its end advances the instance. */
  workflow_instance_id: number | null;
  /** Set for a shard of a broadcast: the first shard's id. */
  broadcast_run_id: number | null;
  /** The groups that got runs (on one row of the batch); null for none. */
  groups: string[] | null;
}

export async function recordLateReports(
  c: PostgresConnection,
  workerId: string,
  reports: readonly LateReport[],
  now: number,
): Promise<number> {
  if (reports.length === 0) return 0;
  const rows = await c.query('recordLateReports', LATE_REPORTS, [
    workerId,
    JSON.stringify(
      reports.map((r) => ({ run_id: r.runId, attempt: r.attempt, outcome: r.outcome, error: r.error })),
    ),
    now,
  ]);
  return rows.length;
}

export async function expiredAttempts(
  c: PostgresConnection,
  now: number,
  limit: number,
): Promise<ExpiredAttempt[]> {
  const rows = await c.query<DecisionRow & { worker_id: string; reason: 'lost' | 'timed_out' }>(
    'expiredAttempts',
    EXPIRED_ATTEMPTS,
    [now, limit],
  );
  return rows.map((row) => ({ ...decisionFromRow(row), reason: row.reason, workerId: row.worker_id }));
}

export async function runsForDecision(
  c: PostgresConnection,
  refs: readonly AttemptRef[],
): Promise<DecisionInput[]> {
  const rows = await c.query<DecisionRow>('runsForDecision', RUNS_FOR_DECISION, [
    JSON.stringify(refs.map((r) => ({ run_id: r.runId, attempt: r.attempt }))),
    refs.map((r) => r.runId),
  ]);
  return rows.map(decisionFromRow);
}

export async function finishAttempts(
  c: PostgresConnection,
  outcomes: readonly AttemptOutcome[],
  now: number,
): Promise<boolean[]> {
  const input = outcomes.map((o) => ({
    run_id: o.runId,
    attempt: o.attempt,
    run_status: o.run.status,
    available_at: o.run.status === 'queued' ? o.run.availableAt : null,
    result: o.result,
    error: o.error,
    attempt_status: o.attemptStatus,
    lease_ended_by: o.leaseEndedBy ?? null,
    worker_id: o.workerId ?? null,
  }));
  // Schedules: what the ended runs set off (dependents, buffered runs) commits with them. Most
  // runs end in one statement; the runs of jobs that buffer runs (and any left over: a stale
  // attempt, a run whose job began to buffer meanwhile) end in a transaction that also promotes.
  let rows = await c.query<FinishedRow>('finishAttempts', FINISH_ATTEMPTS, [
    JSON.stringify(input),
    now,
    true,
    input.map((r) => r.run_id),
  ]);
  const done = new Set(rows.map((r) => r.id));
  const rest = input.filter((r) => !done.has(r.run_id));
  if (rest.length > 0) {
    rows = [
      ...rows,
      ...(await c.transaction('finishAttempts', async (client) => {
        const ended = (
          await client.query<FinishedRow>(FINISH_ATTEMPTS, [
            JSON.stringify(rest),
            now,
            false,
            rest.map((r) => r.run_id),
          ])
        ).rows;
        // A broadcast's last shard sets off its dependents (its first shard locked first: runs,
        // then instances, then jobs).
        const shards = ended.filter((r) => r.broadcast_run_id !== null && r.status !== 'queued');
        const broadcast = await broadcastDependents(
          client,
          shards.map((r) => r.id),
          now,
        );
        // Instances before jobs (promoteBuffered locks jobs FOR UPDATE; queuing a step's run takes
        // its job's KEY SHARE lock): every transaction that takes both takes them in this order.
        const advanced = await advanceWorkflows(
          client,
          ended.filter((r) => r.workflow_instance_id !== null && r.status !== 'queued').map((r) => r.id),
          now,
        );
        const promoted = await promoteBuffered(
          client,
          ended.filter((r) => r.buffering).map((r) => r.job_id),
          now,
        );
        if (ended[0]) ended[0].groups = [...(ended[0].groups ?? []), ...broadcast, ...promoted, ...advanced];
        return ended;
      })),
    ];
  }
  const applied = new Set(rows.map((r) => `${r.id}:${r.attempt}`));
  const result = outcomes.map((o) => applied.has(`${o.runId}:${o.attempt}`));
  const requeued = new Set([
    ...outcomes.filter((o, i) => result[i] && o.run.status === 'queued').map((o) => o.group),
    ...rows.flatMap((r) => r.groups ?? []),
  ]);
  await c.notify([...requeued].map((group) => ({ type: 'runs', group })));
  return result;
}

export async function markLostWorkers(c: PostgresConnection, now: number): Promise<string[]> {
  const rows = await c.query<{ id: string }>(
    'markLostWorkers',
    `UPDATE workers SET status = 'lost' WHERE status IN ('active', 'draining') AND lease_expires_at <= $1 RETURNING id`,
    [now],
  );
  return rows.map((r) => r.id);
}

export async function pruneWorkers(c: PostgresConnection, before: number, limit: number): Promise<number> {
  const rows = await c.query('pruneWorkers', PRUNE_WORKERS, [before, limit]);
  return rows.length;
}
