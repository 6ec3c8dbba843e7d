// Runtime SQL of the PostgreSQL store, one statement per constant. Batches arrive as one jsonb
// parameter read with jsonb_to_recordset, so that a batch of any size is one round trip.

import { DUE_JOB_COLUMNS, RUN_COLUMNS, RUN_SUMMARY_COLUMNS } from '../rows.ts';
import { DEPENDENTS_OF_ENDED } from './schedules.ts';

const JOB_COLUMNS = `name, description, group_name, handler, params, trigger, delay_ms, retry, timeout_ms, priority, paused, schedule`;

/**
 * Insert a job. $1..$12 job values, $13 next_fire_at, $14 now, $15 dispatch, $16 schedule_to_start_ms,
 * $17 task, $18 whether its policy buffers runs, $19 retention, $20 owner, $21 revision, $22 secret params, $23 namespace.
 */
export const CREATE_JOB = `
  INSERT INTO jobs (${JOB_COLUMNS}, next_fire_at, created_at, updated_at, dispatch, schedule_to_start_ms, task, buffers, retention, owner, revision, secret_params, namespace)
  VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8::jsonb, $9, $10, $11, $12::jsonb, $13, $14, $14, $15::jsonb, $16, $17::jsonb, $18, $19::jsonb, $20, $21, $22::jsonb, $23)
  RETURNING *`;

/**
 * Replace a job's definition, bumping its version. $1..$12 job values, $13 next_fire_at, $14 now, $15 id,
 * $16 dispatch, $17 schedule_to_start_ms, $18 task; the edit's expectation: $19 version or null, $20
 * whether the next fire is checked, $21 the next fire it read; $22 retention, $23 owner, $24 revision, $25 secret params.
 */
export const UPDATE_JOB = `
  UPDATE jobs SET name = $1, description = $2, group_name = $3, handler = $4, params = $5::jsonb, trigger = $6::jsonb,
    delay_ms = $7, retry = $8::jsonb, timeout_ms = $9, priority = $10, paused = $11, schedule = $12::jsonb,
    next_fire_at = $13, updated_at = $14, dispatch = $16::jsonb, schedule_to_start_ms = $17, task = $18::jsonb,
    retention = $22::jsonb, owner = $23, revision = $24, secret_params = $25::jsonb, version = version + 1
  WHERE id = $15 AND ($19::integer IS NULL OR version = $19) AND (NOT $20::boolean OR next_fire_at IS NOT DISTINCT FROM $21::bigint)
  RETURNING *`;

/** Resume a paused job (Schedules): as UPDATE_JOB, only while it is still paused. */
export const RESUME_JOB = `${UPDATE_JOB.replace('WHERE id = $15', 'WHERE id = $15 AND paused')}`;

/**
 * Make job $1's queued runs held while it was paused (workflow step runs, at $3) available at $2,
 * in the resume's transaction. Answers their groups.
 */
export const RELEASE_HELD_RUNS = `
  UPDATE runs SET available_at = $2 WHERE job_id = $1 AND status = 'queued' AND available_at = $3
  RETURNING group_name`;

/** Jobs by name, one page. $1 group or null, $2 name to start after or null, $3 limit, $4 namespace or null. */
export const LIST_JOBS = `
  SELECT * FROM jobs WHERE ($1::text IS NULL OR group_name = $1) AND ($2::text IS NULL OR name > $2)
    AND ($4::text IS NULL OR namespace = $4) AND workflow_id IS NULL
  ORDER BY name LIMIT $3`;

/** Due jobs of owned partitions, most overdue first, on the jobs_due index. $1 now, $2 partition count, $3 owned, $4 limit. */
export const DUE_JOBS = `
  SELECT ${DUE_JOB_COLUMNS} FROM jobs
  WHERE next_fire_at IS NOT NULL AND NOT paused AND next_fire_at <= $1 AND (id % $2) = ANY($3::int[])
  ORDER BY next_fire_at LIMIT $4`;

/** The earliest next fire time of owned partitions. $1 partition count, $2 owned. */
export const NEXT_FIRE_AT = `
  SELECT next_fire_at FROM jobs
  WHERE next_fire_at IS NOT NULL AND NOT paused AND (id % $1) = ANY($2::int[])
  ORDER BY next_fire_at LIMIT 1`;

/**
 * Lock the fire's partition leases until COMMIT, checking that they are still ours.
 * FOR SHARE makes a concurrent take-over (an UPDATE of the lease) wait for this transaction, so
 * no fire can commit under a lease that another node already holds. $1 [{name, owner, epoch}], $2 now.
 */
export const LOCK_LEASES = `
  SELECT l.name FROM leases l
  JOIN jsonb_to_recordset($1::jsonb) AS x(name text, owner text, epoch bigint) ON l.name = x.name
  WHERE l.owner = x.owner AND l.epoch = x.epoch AND l.expires_at > $2
  FOR SHARE OF l`;

/**
 * Compare-and-set each job's next fire time, then insert one run per fire of the jobs that won,
 * UNIQUE(job_id, fire_time) dropping any fire already made. $1 [{job_id, expected, next}],
 * $2 [{job_id, fire_time, available_at?, trace_context?}] (available_at: the fire time plus jitter;
 * trace_context: the JSON of the fire span's trace context), $3 now.
 */
export const FIRE = `
  WITH input AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(job_id bigint, expected bigint, next bigint)),
  advanced AS (
    UPDATE jobs j SET next_fire_at = i.next FROM input i
    WHERE j.id = i.job_id AND j.next_fire_at = i.expected AND NOT j.paused
    RETURNING j.id, j.group_name, j.handler, j.params, j.priority, j.retry, j.timeout_ms, j.namespace),
  inserted AS (
    INSERT INTO runs (job_id, group_name, handler, cause, fire_time, params, priority, status, max_attempts, retry,
      timeout_ms, created_at, available_at, trace_context, namespace)
    SELECT a.id, a.group_name, a.handler, 'schedule', f.fire_time, a.params, a.priority, 'queued',
      (a.retry->>'maxAttempts')::int, a.retry, a.timeout_ms, $3, coalesce(f.available_at, f.fire_time),
      f.trace_context, a.namespace
    FROM jsonb_to_recordset($2::jsonb) AS f(job_id bigint, fire_time bigint, available_at bigint, trace_context text)
    JOIN advanced a ON a.id = f.job_id
    ORDER BY f.job_id, f.fire_time
    ON CONFLICT DO NOTHING
    RETURNING group_name)
  SELECT (SELECT count(*) FROM advanced)::int AS advanced, (SELECT count(*) FROM inserted)::int AS runs,
    coalesce((SELECT array_agg(DISTINCT group_name) FROM inserted), '{}') AS groups`;

/**
 * Manual runs, in input order, in one statement: the job's row, the runs, and the notification of
 * the job's group, sent at commit. No row: no such job. A key that holds a run inserts nothing (the
 * caller judged the keys first, in its transaction: PostgresStore.enqueueKeyedRuns). A broadcast
 * job's runs are sharded in the same transaction, so with $6 false (one statement, its own
 * transaction) a broadcast job gets nothing and answers `broadcast`, and the caller runs it again
 * with $6 true in a transaction. $1 job id, $2 [{i, params, priority, key, expires, available_at, trace_context}],
 * $3 now, $4 channel, $5 origin, $6 whether broadcast jobs are served, $7 NOTIFY (false: no other
 * node listens), $8 the node's schema (null: none of its own), which listeners of other schemas skip.
 */
export const ENQUEUE = `
  WITH job AS (
    SELECT id, group_name, coalesce(dispatch->'routing'->>'strategy' = 'broadcast', false) AS broadcast
    FROM jobs WHERE id = $1),
  input AS (SELECT * FROM jsonb_to_recordset($2::jsonb)
    AS x(i int, params jsonb, priority int, key text, expires bigint, available_at bigint, trace_context text)),
  inserted AS (
    INSERT INTO runs (job_id, group_name, handler, cause, idempotency_key, idempotency_expires_at, params, priority,
      status, max_attempts, retry, timeout_ms, created_at, available_at, trace_context, namespace)
    SELECT j.id, j.group_name, j.handler, 'manual', x.key, x.expires, x.params, x.priority, 'queued',
      (j.retry->>'maxAttempts')::int, j.retry, j.timeout_ms, $3, x.available_at, x.trace_context, j.namespace
    FROM input x, jobs j
    WHERE j.id = $1 AND ($6 OR NOT (SELECT broadcast FROM job))
    ORDER BY x.i
    ON CONFLICT DO NOTHING
    RETURNING id, idempotency_key),
  notified AS (
    SELECT pg_notify($4, json_build_object('origin', $5::text, 'schema', $8::text,
      'events', json_build_array(json_build_object('type', 'runs', 'group', group_name)))::text)
    FROM job WHERE ($6 OR NOT broadcast) AND $7::boolean)
  SELECT group_name, broadcast, (SELECT count(*) FROM notified)::int AS notified,
    (SELECT coalesce(json_agg(json_build_array(id, idempotency_key)), '[]') FROM inserted) AS inserted
  FROM job`;

/**
 * One manual trigger of the job named $1 in one statement and one commit: the job read by name, its
 * defaults applied ($2 params, $3 priority: null takes the job's), the run inserted or, when its
 * idempotency key $4 was used before, that run returned; other nodes told (NOTIFY, delivered at
 * commit); the audit entry ($8..$12, none when $8 is null) written in the same commit. Four round
 * trips before (read the job, insert, read the run back, audit in a commit of its own), on the path
 * of every API trigger. A broadcast job inserts nothing here (its runs are sharded in a transaction):
 * the row says `job_broadcast` and the run columns are null. No row: no such job.
 * $5 now, $6 channel, $7 origin, $13 NOTIFY (false: no other node listens, see PostgresStore.peers),
 * $14 the node's schema (null: none of its own), which listeners of other schemas skip, $15 when the
 * run may start, $16 when its key expires. A key's run is answered with `key_same` (the same params
 * and priority) and `key_expired`; the audit entry is written only for a run inserted or answered as
 * the same request (the caller refuses the others, or takes the expired key and runs this again).
 * $17 the JSON of the run's trace context (null: not traced).
 */
export const TRIGGER_RUN = `
  WITH job AS (
    SELECT id, name, group_name, handler, params, priority, retry, timeout_ms, namespace, dispatch,
      coalesce(dispatch->'routing'->>'strategy' = 'broadcast', false) AS broadcast
    FROM jobs WHERE name = $1),
  inserted AS (
    INSERT INTO runs (job_id, group_name, handler, cause, idempotency_key, idempotency_expires_at, params, priority,
      status, max_attempts, retry, timeout_ms, created_at, available_at, trace_context, namespace)
    SELECT j.id, j.group_name, j.handler, 'manual', $4::text, $16::bigint, coalesce($2::jsonb, j.params),
      coalesce($3::int, j.priority), 'queued', (j.retry->>'maxAttempts')::int, j.retry, j.timeout_ms, $5::bigint,
      $15::bigint, $17::text, j.namespace
    FROM job j WHERE NOT j.broadcast
    ON CONFLICT DO NOTHING
    RETURNING *),
  existing AS (
    SELECT r.*, r.params = coalesce($2::jsonb, j.params) AND r.priority = coalesce($3::int, j.priority) AS same,
      r.idempotency_expires_at IS NOT NULL AND r.idempotency_expires_at <= $5::bigint AS expired
    FROM runs r, job j
    WHERE $4::text IS NOT NULL AND NOT j.broadcast AND r.job_id = j.id AND r.idempotency_key = $4::text),
  notified AS (
    SELECT pg_notify($6, json_build_object('origin', $7::text, 'schema', $14::text,
      'events', json_build_array(json_build_object('type', 'runs', 'group', group_name)))::text)
    FROM job WHERE NOT broadcast AND $13::boolean AND EXISTS (SELECT 1 FROM inserted)),
  audited AS (
    INSERT INTO audit_log (at, actor, action, target, details, namespace)
    SELECT $8::bigint, $9::text, $10::text, $11::text, $12::jsonb, namespace FROM job WHERE NOT broadcast AND $8::bigint IS NOT NULL
      AND (EXISTS (SELECT 1 FROM inserted) OR EXISTS (SELECT 1 FROM existing WHERE same AND NOT expired)))
  SELECT j.id AS job_id_of_name, j.broadcast AS job_broadcast, (SELECT count(*) FROM notified)::int AS notified,
    (SELECT count(*) FROM inserted)::int AS inserted, r.same AS key_same, r.expired AS key_expired,
    ${RUN_COLUMNS}
  FROM job j LEFT JOIN (SELECT *, true AS same, false AS expired FROM inserted UNION ALL SELECT * FROM existing) r
    ON true`;

/** Takes an expired idempotency key from its run, so that a new run may have it. $1 run id, $2 key, $3 now. */
export const RELEASE_IDEMPOTENCY_KEY = `
  UPDATE runs SET idempotency_key = NULL
  WHERE id = $1 AND idempotency_key = $2 AND idempotency_expires_at <= $3`;

/**
 * The runs that idempotency keys of a job hold, locked, with what a repeated request is compared
 * with. $1 job id, $2 keys.
 */
export const RUNS_BY_IDEMPOTENCY_KEYS = `
  SELECT id, idempotency_key, params, priority, idempotency_expires_at FROM runs
  WHERE job_id = $1 AND idempotency_key = ANY($2::text[]) FOR UPDATE`;

/**
 * Runs newest first. $1 job id, $2 status, $3 worker id, $4 before id, $6 created since, $7 created
 * until, $8 namespace (each null for any), $5 limit. Unnamed statements are planned with their values, so a null
 * filter folds away and a time range can use runs_created.
 */
export const LIST_RUNS = `
  SELECT ${RUN_COLUMNS}
  FROM runs r JOIN jobs j ON j.id = r.job_id
  WHERE ($1::bigint IS NULL OR r.job_id = $1) AND ($2::text IS NULL OR r.status = $2)
    AND ($3::text IS NULL OR r.worker_id = $3) AND ($4::bigint IS NULL OR r.id < $4)
    AND ($6::bigint IS NULL OR r.created_at >= $6) AND ($7::bigint IS NULL OR r.created_at < $7)
    AND ($8::text IS NULL OR r.namespace = $8)
  ORDER BY r.id DESC LIMIT $5`;

/** LIST_RUNS without params and results (a list's summaries); the same parameters. */
export const LIST_RUN_SUMMARIES = LIST_RUNS.replace(RUN_COLUMNS, RUN_SUMMARY_COLUMNS);

/**
 * The attempts of run $1 in order: the ended ones' rows, then the running one from the run row (an
 * attempt's row is written once, when it ends).
 */
export const ATTEMPTS_OF_RUN = `
  SELECT a.run_id, a.attempt, a.worker_id, a.status, a.started_at, a.finished_at, a.error,
    l.outcome AS late_outcome, l.reported_at AS late_reported_at, l.error AS late_error
  FROM attempts a LEFT JOIN late_reports l ON l.run_id = a.run_id AND l.attempt = a.attempt WHERE a.run_id = $1
  UNION ALL
  SELECT id, attempt, worker_id, 'running', started_at, NULL::bigint, NULL::jsonb, NULL, NULL::bigint, NULL::jsonb
  FROM runs WHERE id = $1 AND status = 'running'
  ORDER BY attempt`;

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
 * End a queued or running run (locked by the caller) as cancelled; a running one's attempt gets its
 * row, with the worker and start that the run row held (read before the end, in the statement's
 * snapshot); a fixed-delay job's scheduled run sets the job's next fire. $1 run id, $2 attempt, $3 now,
 * $4 error.
 */
export const CANCEL_RUN = `
  WITH running AS (
    SELECT worker_id, started_at FROM runs WHERE id = $1 AND attempt = $2 AND status = 'running'),
  attempt_ended AS (
    INSERT INTO attempts (run_id, attempt, worker_id, status, started_at, finished_at, error)
    SELECT $1, $2, worker_id, 'cancelled', started_at, $3::bigint, $4::jsonb FROM running),
  ended AS (
    UPDATE runs SET status = 'cancelled', finished_at = $3::bigint, error = $4::jsonb, deadline_at = NULL
    WHERE id = $1 RETURNING job_id, cause)
  UPDATE jobs j SET next_fire_at = $3::bigint + j.delay_ms FROM ended e
  WHERE j.id = e.job_id AND e.cause = 'schedule' AND j.delay_ms IS NOT NULL AND j.next_fire_at IS NULL AND NOT j.paused`;

/**
 * Insert or refresh a worker. $1 id … $8 host, $9 now, $10 lease end, $11 the registering actor,
 * $12 namespace, $13 advertised resources (JSON, null: none).
 */
export const REGISTER_WORKER = `
  INSERT INTO workers (id, name, group_name, handlers, capacity, labels, version, host, status, registered_at,
    last_heartbeat_at, lease_expires_at, registered_by, namespace, resources)
  VALUES ($1, $2, $3, $4::jsonb, $5, $6::jsonb, $7, $8, 'active', $9, $9, $10, $11, $12, $13::jsonb)
  ON CONFLICT (id) DO UPDATE SET name = excluded.name, group_name = excluded.group_name, handlers = excluded.handlers,
    capacity = excluded.capacity, labels = excluded.labels, version = excluded.version, host = excluded.host,
    resources = excluded.resources,
    status = 'active', last_heartbeat_at = excluded.last_heartbeat_at, lease_expires_at = excluded.lease_expires_at`;

/**
 * Extend a live worker's lease, which is the lease of each of its running attempts (no run row is
 * written: a heartbeat once renewed every running run of the worker, a row version each per second);
 * answer which attempts are running, with the number of the poll that claimed each, read through
 * runs_worker. A lease never moves back: a heartbeat that a node sent before its link to the
 * database hung and that lands after a later one (through another node) leaves the later lease.
 * $1 worker, $2 now, $3 lease ms, $4 the host's load it reports (JSON; null keeps the last).
 */
export const HEARTBEAT = `
  WITH w AS (
    UPDATE workers SET last_heartbeat_at = greatest(last_heartbeat_at, $2::bigint),
      lease_expires_at = greatest(lease_expires_at, $2::bigint + $3::bigint), load = coalesce($4::jsonb, load)
    WHERE id = $1 AND status IN ('active', 'draining') RETURNING id)
  SELECT (SELECT count(*) FROM w)::int AS alive, coalesce((
    SELECT json_agg(json_build_array(id, attempt, claim_seq)) FROM runs
    WHERE worker_id = $1 AND status = 'running' AND EXISTS (SELECT 1 FROM w)), '[]') AS running`;

/**
 * Claim up to $3 queued runs for worker $1 at $2 (by its poll $4, null: not numbered): highest priority, then oldest, on the runs_claim
 * index; each attempt lives on the worker's lease. SKIP LOCKED lets concurrent claims on other nodes
 * take other rows instead of waiting. No attempt row is written: the running run is its current
 * attempt, whose row FINISH_ATTEMPTS inserts when it ends.
 */
export const CLAIM_RUNS = `
  WITH w AS (SELECT namespace, group_name, handlers FROM workers WHERE id = $1 AND status = 'active'),
  picked AS (
    SELECT r.id FROM runs r
    WHERE r.status = 'queued' AND r.group_name = (SELECT group_name FROM w) AND r.available_at <= $2::bigint
      AND r.namespace = (SELECT namespace FROM w) AND r.handler IN (SELECT jsonb_array_elements_text(handlers) FROM w)
    ORDER BY r.priority DESC, r.available_at, r.id
    LIMIT $3 FOR UPDATE SKIP LOCKED),
  claimed AS (
    UPDATE runs r SET status = 'running', attempt = r.attempt + 1, worker_id = $1, started_at = $2::bigint,
      deadline_at = $2::bigint + r.timeout_ms, finished_at = NULL, claim_seq = $4::bigint
    FROM picked WHERE r.id = picked.id
    RETURNING r.id, r.attempt, r.job_id, r.handler, r.params, r.fire_time, r.timeout_ms, r.max_attempts, r.priority,
      r.available_at, r.trace_context)
  SELECT c.id, c.attempt, j.name AS job_name, c.handler, c.params, c.fire_time, c.timeout_ms, c.max_attempts,
    c.trace_context
  FROM claimed c JOIN jobs j ON j.id = c.job_id
  ORDER BY c.priority DESC, c.available_at, c.id`;

/** Workers with their running attempts. */
export const LIST_WORKERS = `
  SELECT w.*, (SELECT count(*) FROM runs r WHERE r.worker_id = w.id AND r.status = 'running')::int AS running
  FROM workers w WHERE ($1::text IS NULL OR w.namespace = $1) ORDER BY w.group_name, w.name`;

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

/** Workers gone for good: stopped or lost, lease ended before $1, no running attempt; at most $2. */
export const PRUNE_WORKERS = `
  DELETE FROM workers WHERE id IN (
    SELECT w.id FROM workers w WHERE w.status IN ('stopped', 'lost') AND w.lease_expires_at < $1
      AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.worker_id = w.id AND r.status = 'running')
    LIMIT $2)
  RETURNING id`;

/** Runs still running with the given attempts. $1 [{run_id, attempt}]. */
export const RUNS_FOR_DECISION = `
  SELECT r.id, r.attempt, r.job_id, r.group_name, r.cause, r.retry, r.worker_id
  FROM runs r JOIN jsonb_to_recordset($1::jsonb) AS x(run_id bigint, attempt int) ON r.id = x.run_id AND r.attempt = x.attempt
  WHERE r.status = 'running'`;

/**
 * End attempts as decided, each only if its run is still running with that attempt (fencing) and,
 * for a lost end the reaper decided at lease_ended_by, only if its worker's lease still ended by then
 * (a heartbeat that reached the database after the sweep read the lease keeps the attempt), and for
 * a worker's report (worker_id), only if that worker holds the attempt;
 * insert the ended attempts' rows (written once, at the end: worker and start come from the run row,
 * which the end leaves; a stale or second end updates no run, so inserts nothing; an INSERT at the
 * claim and an UPDATE here cost the 40,000-run drain ~53 against ~46 ms of server CPU per 1,000
 * runs); schedule the next fire of fixed-delay jobs whose scheduled run ended; and
 * create the runs of the ended runs' dependents. One row per ended run, `buffering` when its end
 * may have to promote a buffered run (afterRunsEnded), with the groups that got dependent runs.
 * $3 true leaves such runs alone, and the final ends of workflow step runs and of broadcast shards
 * (the caller ends them in a transaction that also promotes, advances the instance,
 * store/workflows.ts, or judges whether the broadcast is over, broadcasts.ts): the others end
 * here in one statement, its own transaction. A step run is known by a column of the row the
 * statement updates anyway, so the check costs other runs nothing.
 * $1 [{run_id, attempt, run_status, available_at, result, error, attempt_status, lease_ended_by,
 *   worker_id}], $2 now.
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
    WHERE r.id = i.run_id AND r.attempt = i.attempt AND r.status = 'running' AND p.id = r.job_id
      AND (i.worker_id IS NULL OR r.worker_id = i.worker_id)
      AND (i.lease_ended_by IS NULL OR NOT EXISTS (
        SELECT 1 FROM workers w WHERE w.id = r.worker_id AND w.lease_expires_at > i.lease_ended_by))
      AND (NOT $3::boolean OR i.run_status = 'queued'
        OR NOT (p.buffers OR r.promotes OR r.workflow_instance_id IS NOT NULL OR r.broadcast_run_id IS NOT NULL))
    RETURNING r.id, r.attempt, r.job_id, r.cause, r.status, r.result, r.worker_id, r.started_at, r.workflow_instance_id,
      r.broadcast_run_id, i.attempt_status, i.error, i.run_status <> 'queued' AND (p.buffers OR r.promotes) AS buffering),
  attempts_ended AS (
    INSERT INTO attempts (run_id, attempt, worker_id, status, started_at, finished_at, error)
    SELECT id, attempt, worker_id, attempt_status, started_at, $2::bigint, error FROM ended),
  rescheduled AS (
    UPDATE jobs j SET next_fire_at = $2::bigint + j.delay_ms
    FROM (SELECT DISTINCT job_id FROM ended WHERE cause = 'schedule' AND status <> 'queued') e
    WHERE j.id = e.job_id AND j.delay_ms IS NOT NULL AND j.next_fire_at IS NULL AND NOT j.paused),
  ${DEPENDENTS_OF_ENDED.trim()}
  SELECT id, attempt, job_id, status, buffering, workflow_instance_id, broadcast_run_id,
    (SELECT array_agg(group_name) FROM dependents) AS groups
  FROM ended`;

/**
 * Take each free, expired or already-owned lease; a new holder gets the next epoch. A lease that a
 * fire still holds FOR SHARE (its node paused mid-transaction, say) is skipped, not waited for:
 * waiting would stop this node's own firing behind a node that may never come back; the lease is
 * taken at a later renewal, once PostgreSQL ends that transaction. $1 names, $2 owner, $3 expiry, $4 now.
 */
export const ACQUIRE_LEASES = `
  WITH takeable AS (
    SELECT name FROM leases
    WHERE name = ANY($1::text[]) AND (owner = $2::text OR expires_at <= $4::bigint)
    ORDER BY name FOR UPDATE SKIP LOCKED),
  taken AS (
    UPDATE leases l SET
      epoch = CASE WHEN l.owner = $2::text AND l.expires_at > $4::bigint THEN l.epoch ELSE l.epoch + 1 END,
      owner = $2::text, expires_at = $3::bigint
    FROM takeable t WHERE l.name = t.name
    RETURNING l.name, l.owner, l.epoch, l.expires_at),
  created AS (
    INSERT INTO leases (name, owner, epoch, expires_at)
    SELECT n, $2::text, 1, $3::bigint FROM unnest($1::text[]) AS n
    WHERE NOT EXISTS (SELECT 1 FROM leases WHERE name = n)
    ON CONFLICT (name) DO NOTHING
    RETURNING name, owner, epoch, expires_at)
  SELECT * FROM taken UNION ALL SELECT * FROM created`;

/** Extend leases still held. $1 new expiry, $2 [{name, owner, epoch}], $3 now. */
export const RENEW_LEASES = `
  UPDATE leases l SET expires_at = $1
  FROM jsonb_to_recordset($2::jsonb) AS x(name text, owner text, epoch bigint)
  WHERE l.name = x.name AND l.owner = x.owner AND l.epoch = x.epoch AND l.expires_at > $3
  RETURNING l.name, l.owner, l.epoch, l.expires_at`;

/** Expire leases at once (not delete: the next holder's epoch still grows). $1 [{name, owner, epoch}]. */
export const RELEASE_LEASES = `
  UPDATE leases l SET expires_at = 0
  FROM jsonb_to_recordset($1::jsonb) AS x(name text, owner text, epoch bigint)
  WHERE l.name = x.name AND l.owner = x.owner AND l.epoch = x.epoch`;

/**
 * A node's heartbeat: upsert its row, delete the rows of others expired before $10, count the live
 * nodes (this one included) and the other live instances with the same id. $1 instance, $2 address,
 * $3 version, $4 started, $5 now, $6 expiry, $7 partitions, $8 skew, $9 id, $10 forget before.
 */
export const HEARTBEAT_NODE = `
  WITH pruned AS (DELETE FROM nodes WHERE expires_at < $10::bigint AND id <> $1),
  upserted AS (
    INSERT INTO nodes (id, name, address, version, started_at, heartbeat_at, expires_at, partitions, clock_skew_ms)
    VALUES ($1, $9, $2, $3, $4, $5, $6, $7::jsonb, $8)
    ON CONFLICT (id) DO UPDATE SET name = excluded.name, address = excluded.address, version = excluded.version,
      heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at, partitions = excluded.partitions,
      clock_skew_ms = excluded.clock_skew_ms
    RETURNING id)
  SELECT (SELECT count(*) FROM nodes WHERE expires_at > $5::bigint AND id <> $1)::int + 1 AS alive,
    (SELECT count(*) FROM nodes WHERE expires_at > $5::bigint AND id <> $1 AND name = $9)::int AS namesakes`;

/** Lock a job's queued and running runs (before deleting the job: runs first, as ending a run does). $1 job name. */
export const LOCK_ACTIVE_RUNS_OF_JOB = `
  SELECT r.id FROM runs r JOIN jobs j ON j.id = r.job_id
  WHERE j.name = $1 AND r.status IN ('queued', 'running') ORDER BY r.id FOR UPDATE OF r`;

/**
 * End job $1's queued and running workflow step runs (locked by the caller) as cancelled at $2 with
 * error $3, a running one's attempt with its row; answers their ids. The job is being deleted.
 */
export const CANCEL_STEP_RUNS_OF_JOB = `
  WITH active AS (
    SELECT id, status, attempt, worker_id, started_at FROM runs
    WHERE job_id = $1 AND workflow_instance_id IS NOT NULL AND status IN ('queued', 'running')),
  attempt_ended AS (
    INSERT INTO attempts (run_id, attempt, worker_id, status, started_at, finished_at, error)
    SELECT id, attempt, worker_id, 'cancelled', started_at, $2::bigint, $3::jsonb FROM active WHERE status = 'running')
  UPDATE runs r SET status = 'cancelled', finished_at = $2::bigint, error = $3::jsonb, deadline_at = NULL
  FROM active a WHERE r.id = a.id RETURNING r.id`;
