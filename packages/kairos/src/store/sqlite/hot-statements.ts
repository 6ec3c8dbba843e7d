// The statements of the worker protocol's hot path on SQLite: every claim and every report runs
// them. Kept here so that hot-statements.test.ts can hold their query plans to the indexes they need
// (a plan that walks a status index instead of the primary key costs 100× on a busy store).

/**
 * A queued run that worker @worker (of @group in @namespace, serving @handlers) may take at @now: ready,
 * and not routed to another worker that is still alive. The namespace is a filter on the rows that
 * runs_claim finds: with one namespace (or a group name used in one namespace only) it passes every
 * row, so the claim reads what it read before namespaces (docs/tenancy.md).
 */
export const READY_FOR_WORKER = `r.status = 'queued' AND r.group_name = @group AND r.available_at <= @now
  AND r.namespace = @namespace
  AND r.handler IN (SELECT value FROM json_each(@handlers))
  AND (r.target_worker_id IS NULL OR r.target_worker_id = @worker OR NOT EXISTS (
    SELECT 1 FROM workers t WHERE t.id = r.target_worker_id AND t.status = 'active' AND t.lease_expires_at > @now))`;

/**
 * isPlainDispatch (core/dispatch-policy.ts) of job `j`, in SQL: no routing, selector, limit or
 * resources; and run `r` requests no resources of its own (a workflow step's).
 */
export const PLAIN_DISPATCH = `(coalesce(j.dispatch ->> '$.routing.strategy', 'any') = 'any'
  AND coalesce(j.dispatch -> '$.routing.selector', '{}') = '{}'
  AND j.dispatch ->> '$.maxConcurrency' IS NULL AND j.dispatch ->> '$.rateLimit' IS NULL
  AND j.dispatch ->> '$.resources' IS NULL AND r.resources IS NULL)`;

/**
 * A run of a job triggered by hand or through the API, with the job's group, handler, retry and time
 * limit: (idempotency key, key expiry, params JSON, priority, created at, available at, trace context
 * JSON or null, job id). A key that holds a run inserts nothing and returns no row.
 */
export const INSERT_MANUAL_RUN = `INSERT INTO runs (job_id, group_name, handler, cause, idempotency_key,
    idempotency_expires_at, params, priority, status, max_attempts, retry, timeout_ms, created_at, available_at,
    trace_context, namespace)
  SELECT id, group_name, handler, 'manual', ?, ?, ?, ?, 'queued', json_extract(retry, '$.maxAttempts'), retry,
    timeout_ms, ?, ?, ?, namespace
  FROM jobs WHERE id = ?
  ON CONFLICT DO NOTHING RETURNING id`;

/** The run an idempotency key holds: (job id, key); through runs_idempotency. */
export const RUN_BY_IDEMPOTENCY_KEY = `SELECT id, params, priority, idempotency_expires_at FROM runs
  WHERE job_id = ? AND idempotency_key = ?`;

/** Takes an expired key from its run, so that a new run may have it: (run id). */
export const RELEASE_IDEMPOTENCY_KEY = 'UPDATE runs SET idempotency_key = NULL WHERE id = ?';

/**
 * The first `max` runs ready for the worker, each with whether its job dispatches plainly. INDEXED BY:
 * otherwise the planner may take runs_ahead and sort every ready run of the group for each claim.
 */
export const PICK_PLAIN = `SELECT r.id, ${PLAIN_DISPATCH} AS plain FROM runs r INDEXED BY runs_claim JOIN jobs j ON j.id = r.job_id
  WHERE ${READY_FOR_WORKER}
  ORDER BY r.priority DESC, r.available_at, r.id LIMIT @max`;

/**
 * Claims the queued runs @ids for @worker at @now, by its poll @seq (null: not numbered; see
 * RUNNING_OF_WORKER); each attempt lives on the worker's lease. A run
 * claimed before its instant (fire ahead) starts at it: its attempt's start and deadline count from
 * `available_at`. No attempt row is written: the running run is its current attempt (worker, start),
 * and the attempt's row is inserted once, when it ends (END_ATTEMPTS).
 */
export const CLAIM_IDS = `UPDATE runs SET status = 'running', attempt = attempt + 1, worker_id = @worker,
    claim_seq = @seq, started_at = max(@now, available_at),
    deadline_at = max(@now, available_at) + timeout_ms, finished_at = NULL, target_worker_id = NULL
  WHERE id IN (SELECT value FROM json_each(@ids)) AND status = 'queued'
  RETURNING id, job_id, attempt, handler, params, fire_time, timeout_ms, max_attempts, shard, shard_count,
    available_at, started_at, trace_context, task AS run_task`;

/** What deciding the ends of reported attempts needs: ([[run id, attempt], …]); the refs drive, by id. */
export const DECISION_INPUTS = `SELECT r.id, r.attempt, r.job_id, r.group_name, r.cause, r.retry, r.worker_id
  FROM json_each(?) v CROSS JOIN runs r ON r.id = v.value ->> 0
  WHERE r.attempt = v.value ->> 1 AND r.status = 'running'`;

/**
 * Ends runs still running with those attempts: (@now, @ends = [[run id, attempt, status, result
 * JSON, error JSON, reporting worker id or null], …]), answering each with the worker and start of
 * its attempt (an end leaves them); a worker's report ends only an attempt that worker holds.
 * `+runs.status` keeps the planner off the status indexes, which it would walk for every ref.
 */
export const END_RUNS = `UPDATE runs SET status = v.value ->> 2, finished_at = @now, result = v.value ->> 3,
    error = v.value ->> 4, deadline_at = NULL
  FROM json_each(@ends) v
  WHERE runs.id = v.value ->> 0 AND runs.attempt = v.value ->> 1 AND +runs.status = 'running'
    AND (v.value ->> 5 IS NULL OR runs.worker_id = v.value ->> 5)
  RETURNING runs.id, runs.attempt, runs.job_id, runs.cause, runs.worker_id, runs.started_at, runs.workflow_instance_id`;

/** A row END_RUNS answers. */
export interface EndedRunRow {
  id: number;
  attempt: number;
  job_id: number;
  cause: string;
  worker_id: string;
  started_at: number;
  /** Set for a workflow's step run: its end advances the instance. */
  workflow_instance_id: number | null;
}

/**
 * The rows of ended attempts, written once, at their end, in the transaction that ended their runs
 * (only those the run's fence let through): (now, [[run id, attempt, worker id, status, started at,
 * error JSON], …]), worker and start as the run row held them while it ran. It replaced an INSERT
 * at the claim and an UPDATE here: on SQLite the claim got ~1.4 ms per 1,000 runs cheaper and the
 * report ~1.7 ms dearer (bench:store, 18.5 → 18.7 ms in all, within its noise); the gain is
 * PostgreSQL's (see FINISH_ATTEMPTS there).
 */
export const END_ATTEMPTS = `INSERT INTO attempts (run_id, attempt, worker_id, status, started_at, finished_at, error)
  SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, ?, value ->> 5 FROM json_each(?)`;

/** One entry of END_ATTEMPTS: run id, attempt, worker id, status, started at, error JSON. */
export type EndedAttempt = [number, number, string, string, number, string | null];

/**
 * A worker's running attempts, which its heartbeat answers about, with the number of the poll that
 * claimed each: (worker id); through runs_worker.
 */
export const RUNNING_OF_WORKER = `SELECT id, attempt, claim_seq FROM runs INDEXED BY runs_worker
  WHERE worker_id = ? AND status = 'running'`;

/**
 * Attempts the reaper ends at @now: their worker's lease ended (lost: no heartbeat, declared lost or
 * stopped; workers keep their rows) or their deadline passed (timed out, which wins), the first @limit
 * by run id. Workers are few and read whole; the running runs of those whose lease ended come through
 * runs_worker, the timed-out ones through a range of runs_deadline, so that a sweep reads only the
 * expired runs (INDEXED BY: without statistics the planner walks the whole table to get them in id
 * order).
 */
export const EXPIRED_ATTEMPTS = `SELECT id, attempt, job_id, group_name, cause, retry, worker_id,
    CASE WHEN deadline_at <= @now THEN 'timed_out' ELSE 'lost' END AS reason
  FROM runs WHERE id IN (
    SELECT r.id FROM workers w CROSS JOIN runs r INDEXED BY runs_worker
      ON r.worker_id = w.id AND r.status = 'running'
    WHERE w.lease_expires_at <= @now
    UNION ALL SELECT id FROM runs INDEXED BY runs_deadline WHERE status = 'running' AND deadline_at <= @now)
  ORDER BY id LIMIT @limit`;

// The fire path. A storm's runs are inserted with one statement per batch of entries: one
// INSERT … SELECT per run cost 16 µs against 2.5 µs per run in one statement (100,000 runs into the
// runs table and its indexes: 1.66 s against 0.25 s). The compare-and-set of each job's next fire
// stays one UPDATE per job: as fast as UPDATE … FROM json_each here, and it keeps the entries' order.

/**
 * One run per fire, in input order (CROSS JOIN keeps json_each the outer loop, so ids follow it):
 * (@now, @fires = [[job id, fire time, available at, trace context JSON or null], …]).
 * UNIQUE(job, fire time, shard) drops a fire already made. (`WHERE true`: an upsert's SELECT needs a
 * WHERE to parse.)
 */
export const INSERT_FIRES = `INSERT INTO runs (job_id, group_name, handler, cause, fire_time, params, priority, status,
    max_attempts, retry, timeout_ms, created_at, available_at, trace_context, namespace)
  SELECT j.id, j.group_name, j.handler, 'schedule', v.value ->> 1, j.params, j.priority, 'queued',
    json_extract(j.retry, '$.maxAttempts'), j.retry, j.timeout_ms, @now, v.value ->> 2, v.value ->> 3, j.namespace
  FROM json_each(@fires) v CROSS JOIN jobs j ON j.id = v.value ->> 0
  WHERE true
  ON CONFLICT DO NOTHING`;

/**
 * Ledger rows of a fire batch's plain entries, in one statement (@now, @rows = [[job id, reason,
 * first fire, last fire, count or null], …]); answers the rows written. Only ranges that extend no
 * earlier row come here (see `hasPolicies`): under overload every job's visit sheds a range, and
 * one statement per range made shedding slower than firing.
 */
export const INSERT_SKIPPED = `INSERT INTO skipped_fires (job_id, reason, first_fire, last_fire, count, recorded_at)
  SELECT v.value ->> 0, v.value ->> 1, v.value ->> 2, v.value ->> 3, v.value ->> 4, @now
  FROM json_each(@rows) v
  WHERE true
  ON CONFLICT DO NOTHING
  RETURNING job_id, reason, count`;

/** Of the jobs ([id, …]), those whose routing is broadcast: their new runs are sharded. */
export const BROADCAST_JOBS = `SELECT id, namespace, group_name, handler, dispatch FROM jobs
  WHERE id IN (SELECT value FROM json_each(?)) AND dispatch ->> '$.routing.strategy' = 'broadcast'`;

/**
 * The requests of the running runs of workers (JSON array of ids) that request anything: the run's
 * own (a workflow step's) or its job's. Through runs_worker; read only by claims of runs that
 * request resources.
 */
export const USED_BY_WORKERS = `SELECT r.worker_id, coalesce(r.resources, j.dispatch -> '$.resources') AS request
  FROM runs r JOIN jobs j ON j.id = r.job_id
  WHERE r.status = 'running' AND r.worker_id IN (SELECT value FROM json_each(?))
    AND (r.resources IS NOT NULL OR j.dispatch ->> '$.resources' IS NOT NULL)`;

/**
 * Queued runs that waited past their job's schedule-to-start timeout since they became available
 * (@now, @limit): the jobs that have one (jobs_schedule_to_start, few), then per job the range of
 * runs_active that became available before its timeout: only expired runs (and the job's running
 * ones) are read. Left to itself the planner walked every run (without statistics) or every queued
 * run (with them), on every reaper sweep: an overloaded node with millions of queued runs spent 30 %
 * of its CPU here, seconds at a time with its event loop held.
 */
export const EXPIRED_QUEUED = `SELECT r.id, j.schedule_to_start_ms AS ms FROM jobs j INDEXED BY jobs_schedule_to_start
  CROSS JOIN runs r INDEXED BY runs_active
  WHERE j.schedule_to_start_ms IS NOT NULL AND r.job_id = j.id AND r.status IN ('queued', 'running')
    AND r.available_at <= @now - j.schedule_to_start_ms AND r.status = 'queued'
  ORDER BY r.id LIMIT @limit`;
