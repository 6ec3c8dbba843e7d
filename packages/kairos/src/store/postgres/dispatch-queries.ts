// Runtime SQL of the PostgreSQL store for dispatch policies (routing, limits, draining,
// schedule-to-start timeouts), one statement per constant.

/**
 * The queued runs worker $1 may take, locked: its namespace ($6), group ($2) and handlers ($3),
 * available at $4, unassigned, assigned to it, or assigned to a worker that is no longer active;
 * oldest of the highest priority first, up to $5. SKIP LOCKED: concurrent claims on other nodes take
 * other rows.
 */
export const DISPATCH_CANDIDATES = `
  SELECT r.id, r.job_id, j.name AS job_name, r.handler, r.params, r.target_worker_id, j.dispatch,
    coalesce(r.task, j.task) AS task, r.resources, r.available_at, r.priority
  FROM runs r JOIN jobs j ON j.id = r.job_id
  WHERE r.status = 'queued' AND r.group_name = $2 AND r.available_at <= $4::bigint AND r.namespace = $6
    AND r.handler = ANY($3::text[])
    AND (r.target_worker_id IS NULL OR r.target_worker_id = $1 OR NOT EXISTS (
      SELECT 1 FROM workers t WHERE t.id = r.target_worker_id AND t.status = 'active' AND t.lease_expires_at > $4::bigint))
  ORDER BY r.priority DESC, r.available_at, r.id
  LIMIT $5
  FOR UPDATE OF r SKIP LOCKED`;

/**
 * Queued runs of group $2 (namespace $6, handlers $3) that request resources (their own, or their
 * job's) and became available
 * by $4 (now minus the reservation delay), oldest first within a priority, at most $5, read WITHOUT
 * locks: only to reserve for them (DISPATCH_CANDIDATES skips rows another claim holds). Read only
 * when a claim's candidates request resources; it walks at most $5 × 4 queued runs.
 */
export const RESOURCE_WAITERS = `
  SELECT * FROM (
    SELECT r.id, r.job_id, j.name AS job_name, r.handler, r.params, r.target_worker_id, j.dispatch,
      coalesce(r.task, j.task) AS task, r.resources, r.available_at, r.priority
    FROM runs r JOIN jobs j ON j.id = r.job_id
    WHERE r.status = 'queued' AND r.group_name = $2 AND r.available_at <= $4::bigint AND r.namespace = $6
      AND r.handler = ANY($3::text[]) AND $1::text IS NOT NULL
    ORDER BY r.priority DESC, r.available_at, r.id
    LIMIT $5 * 4) w
  WHERE w.resources IS NOT NULL OR w.dispatch->>'resources' IS NOT NULL
  ORDER BY w.priority DESC, w.available_at, w.id
  LIMIT $5`;

/**
 * The limits of group $2 of namespace $1, locked so that concurrent claims count its runs and take
 * its tokens one at a time.
 */
export const LOCK_GROUP_LIMIT = `
  SELECT max_concurrency, rate_limit, rate_per_ms FROM namespace_group_limits
  WHERE namespace = $1 AND group_name = $2 AND (max_concurrency IS NOT NULL OR rate_limit IS NOT NULL) FOR UPDATE`;

/** Token buckets of scopes $1. */
export const READ_BUCKETS = `SELECT scope, tokens, updated_at FROM rate_buckets WHERE scope = ANY($1::text[])`;

/** Save token buckets. $1 [{scope, tokens, updated_at}]. */
export const SAVE_BUCKETS = `
  INSERT INTO rate_buckets (scope, tokens, updated_at)
  SELECT x.scope, x.tokens, x.updated_at FROM jsonb_to_recordset($1::jsonb) AS x(scope text, tokens float8, updated_at bigint)
  ON CONFLICT (scope) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at`;

/**
 * Create the routing rows of jobs $1 (sorted ids) if missing, then lock them in id order: claims of
 * routed or limited jobs serialize per job, so a round-robin turn or a concurrency count is never
 * read by two claims at once.
 */
export const ENSURE_JOB_ROUTING = `
  INSERT INTO job_routing (job_id, state)
  SELECT id, '{"turn":0,"lastUsed":{},"uses":{}}'::jsonb FROM unnest($1::bigint[]) AS id
  ON CONFLICT (job_id) DO NOTHING`;
export const LOCK_JOB_ROUTING = `
  SELECT job_id, state FROM job_routing WHERE job_id = ANY($1::bigint[]) ORDER BY job_id FOR UPDATE`;

/** Live workers of group $1 of namespace $3 at $2 with their load: running attempts plus queued runs assigned to them. */
export const LIVE_WORKERS = `
  SELECT w.id, w.name, w.handlers, w.labels, w.capacity, w.resources, w.load,
    (SELECT count(*) FROM runs r WHERE r.worker_id = w.id AND r.status = 'running')
    + (SELECT count(*) FROM runs r WHERE r.target_worker_id = w.id AND r.status = 'queued') AS running
  FROM workers w WHERE w.group_name = $1 AND w.namespace = $3 AND w.status = 'active' AND w.lease_expires_at > $2::bigint`;

/** Lock worker $1's row: claims of runs that request resources place them on it one at a time. */
export const LOCK_WORKER = `SELECT 1 FROM workers WHERE id = $1 FOR UPDATE`;

/**
 * The requests of the running runs of workers $1 (text[]) that request anything: the run's own (a
 * workflow step's) or its job's. Through runs_worker; read only by claims of runs that request
 * resources.
 */
export const USED_BY_WORKERS = `
  SELECT r.worker_id, coalesce(r.resources, j.dispatch->'resources') AS request
  FROM runs r JOIN jobs j ON j.id = r.job_id
  WHERE r.status = 'running' AND r.worker_id = ANY($1::text[])
    AND (r.resources IS NOT NULL OR j.dispatch->>'resources' IS NOT NULL)`;

/** Per worker and job ($1 ids): running plus assigned runs. */
export const LOAD_OF_JOBS = `
  SELECT worker_id AS w, job_id, count(*)::int AS n FROM runs
  WHERE status = 'running' AND job_id = ANY($1::bigint[]) GROUP BY 1, 2
  UNION ALL
  SELECT target_worker_id, job_id, count(*)::int FROM runs
  WHERE status = 'queued' AND target_worker_id IS NOT NULL AND job_id = ANY($1::bigint[]) GROUP BY 1, 2`;

/** Running runs per job ($1 ids), cluster-wide. */
export const RUNNING_OF_JOBS = `
  SELECT job_id, count(*)::int AS n FROM runs WHERE status = 'running' AND job_id = ANY($1::bigint[]) GROUP BY job_id`;

/** Running runs of group $2 of namespace $1. */
export const RUNNING_OF_GROUP = `
  SELECT count(*)::int AS n FROM runs WHERE status = 'running' AND namespace = $1 AND group_name = $2`;

/** Assign queued runs to workers. $1 [{run_id, worker_id}] (worker_id null: unassigned). */
export const ASSIGN_RUNS = `
  UPDATE runs r SET target_worker_id = x.worker_id
  FROM jsonb_to_recordset($1::jsonb) AS x(run_id bigint, worker_id text) WHERE r.id = x.run_id`;

/** Save routing states. $1 [{job_id, state}]. */
export const SAVE_JOB_ROUTING = `
  INSERT INTO job_routing (job_id, state)
  SELECT x.job_id, x.state FROM jsonb_to_recordset($1::jsonb) AS x(job_id bigint, state jsonb)
  ON CONFLICT (job_id) DO UPDATE SET state = excluded.state`;

/**
 * Claim runs $2 (locked above) for worker $1 at $3, by its poll $4 (null: not numbered); their attempts live on the worker's lease, and
 * have no row until they end (the running run is the attempt).
 */
export const CLAIM_PLANNED = `
  WITH claimed AS (
    UPDATE runs r SET status = 'running', attempt = r.attempt + 1, worker_id = $1, started_at = $3::bigint,
      deadline_at = $3::bigint + r.timeout_ms, finished_at = NULL, claim_seq = $4::bigint,
      target_worker_id = NULL
    WHERE r.id = ANY($2::bigint[]) AND r.status = 'queued'
    RETURNING r.id, r.attempt, r.handler, r.params, r.fire_time, r.timeout_ms, r.max_attempts, r.shard, r.shard_count,
      r.trace_context)
  SELECT * FROM claimed`;

/**
 * Queued runs that waited past their job's schedule-to-start timeout since they became available,
 * found through the jobs_schedule_to_start index, locked. $1 now, $2 limit.
 */
export const DUE_QUEUED = `
  SELECT r.id, j.schedule_to_start_ms AS ms FROM jobs j
  JOIN runs r ON r.job_id = j.id AND r.status = 'queued'
  WHERE j.schedule_to_start_ms IS NOT NULL AND r.available_at + j.schedule_to_start_ms <= $1::bigint
  ORDER BY r.id LIMIT $2
  FOR UPDATE OF r SKIP LOCKED`;

/** Fail the given queued runs; a fixed-delay job's scheduled run sets the job's next fire. $1 now, $2 [{id, error}]. */
export const FAIL_QUEUED = `
  WITH ended AS (
    UPDATE runs r SET status = 'failed', finished_at = $1::bigint, target_worker_id = NULL, error = x.error
    FROM jsonb_to_recordset($2::jsonb) AS x(id bigint, error jsonb) WHERE r.id = x.id AND r.status = 'queued'
    RETURNING r.id, r.job_id, r.cause),
  rescheduled AS (
    UPDATE jobs j SET next_fire_at = $1::bigint + j.delay_ms
    FROM (SELECT DISTINCT job_id FROM ended WHERE cause = 'schedule') e
    WHERE j.id = e.job_id AND j.delay_ms IS NOT NULL AND j.next_fire_at IS NULL AND NOT j.paused)
  SELECT id FROM ended ORDER BY id`;

/** Mark worker $1 draining if active or draining; answers its status before and group. */
export const DRAIN_WORKER = `
  WITH before AS (SELECT status, group_name FROM workers WHERE id = $1 FOR UPDATE),
  drained AS (UPDATE workers SET status = 'draining' WHERE id = $1 AND status IN ('active', 'draining'))
  SELECT status, group_name FROM before`;

/** Mark worker $1 active again if draining or active; answers its status before and group. */
export const RESUME_WORKER = `
  WITH before AS (SELECT status, group_name FROM workers WHERE id = $1 FOR UPDATE),
  resumed AS (UPDATE workers SET status = 'active' WHERE id = $1 AND status IN ('active', 'draining'))
  SELECT status, group_name FROM before`;

/**
 * Replace the limits of group $1 of namespace $6. $2 max concurrency, $3 rate limit, $4 rate period
 * ms (each null for none), $5 now. `default`'s are also written into group_limits, which nodes of
 * the previous release read (by group name alone) during a rolling upgrade.
 */
export const SET_GROUP_LIMIT = `
  WITH old AS (
    INSERT INTO group_limits (group_name, max_concurrency, rate_limit, rate_per_ms, updated_at)
    SELECT $1, $2, $3, $4, $5 WHERE $6 = 'default'
    ON CONFLICT (group_name) DO UPDATE SET max_concurrency = excluded.max_concurrency,
      rate_limit = excluded.rate_limit, rate_per_ms = excluded.rate_per_ms, updated_at = excluded.updated_at)
  INSERT INTO namespace_group_limits (namespace, group_name, max_concurrency, rate_limit, rate_per_ms, updated_at)
  VALUES ($6, $1, $2, $3, $4, $5)
  ON CONFLICT (namespace, group_name) DO UPDATE SET max_concurrency = excluded.max_concurrency,
    rate_limit = excluded.rate_limit, rate_per_ms = excluded.rate_per_ms, updated_at = excluded.updated_at`;

/** Group limits of namespace $1 (null: of all), by namespace and group. */
export const LIST_GROUP_LIMITS = `
  SELECT namespace, group_name, max_concurrency, rate_limit, rate_per_ms, updated_at FROM namespace_group_limits
  WHERE $1::text IS NULL OR namespace = $1 ORDER BY namespace, group_name`;

/** Broadcast jobs among $1 (ids). */
export const BROADCAST_JOBS = `
  SELECT id, namespace, group_name, handler, dispatch FROM jobs
  WHERE id = ANY($1::bigint[]) AND dispatch->'routing'->>'strategy' = 'broadcast'`;

/** Queued runs of job $1 created at $2 that are not sharded yet. */
export const NEW_UNSHARDED_RUNS = `
  SELECT id FROM runs WHERE job_id = $1 AND shard_count = 0 AND status = 'queued' AND attempt = 0 AND created_at = $2
  FOR UPDATE`;

/**
 * Make runs $1 shard 0 of $2, assigned to the first of workers $3 (text[], [null] for none), and
 * insert shards 1..$2-1 as copies assigned to the others. Every shard names the first one
 * (broadcast_run_id), and a workflow step's shards belong to its step: the broadcast ends once,
 * when its last shard ends (store/postgres/broadcasts.ts).
 */
export const SHARD_RUNS = `
  WITH first AS (
    UPDATE runs SET shard = 0, shard_count = $2, target_worker_id = ($3::text[])[1], broadcast_run_id = id
    WHERE id = ANY($1::bigint[]) RETURNING *)
  INSERT INTO runs (job_id, group_name, handler, cause, fire_time, params, priority, status, max_attempts, retry,
    timeout_ms, created_at, available_at, shard, shard_count, target_worker_id, trace_context, namespace,
    broadcast_run_id, workflow_instance_id, workflow_step)
  SELECT f.job_id, f.group_name, f.handler, f.cause, f.fire_time, f.params, f.priority, f.status, f.max_attempts,
    f.retry, f.timeout_ms, f.created_at, f.available_at, s.shard, $2, ($3::text[])[s.shard + 1], f.trace_context, f.namespace,
    f.id, f.workflow_instance_id, f.workflow_step
  FROM first f CROSS JOIN generate_series(1, $2 - 1) AS s(shard)
  ORDER BY f.id, s.shard`;

/**
 * Run `r` is one that worker $1 (CTE `w`) may take at $2: queued in its group for one of its
 * handlers, available, and not assigned, assigned to it, or assigned to a worker that is no longer
 * active. In both reads of DISPATCH_FAST.
 */
const FAST_CLAIMABLE = `r.status = 'queued' AND r.group_name = (SELECT group_name FROM w)
  AND r.namespace = (SELECT namespace FROM w)
  AND r.handler IN (SELECT jsonb_array_elements_text(handlers) FROM w) AND r.available_at <= $2::bigint
  AND (r.target_worker_id IS NULL OR r.target_worker_id = $1 OR NOT EXISTS (
    SELECT 1 FROM workers t WHERE t.id = r.target_worker_id AND t.status = 'active' AND t.lease_expires_at > $2::bigint))`;

/**
 * The fast path of a claim, one statement: when the group has no limits in the worker's namespace and every run in the
 * window belongs to a plain job (no routing, selector, limit or resources) and requests no resources of its own, claim up to $3 of them like
 * CLAIM_RUNS does; otherwise claim nothing and say so (`simple` false), and the caller takes the
 * transaction with the planner. One round trip instead of six for the common case, which the
 * long-poll path runs on every wake-up. The window is read without locks, and each of its jobs'
 * policies once; then the claimable runs of those jobs are read again from the top of the index and
 * only the runs taken are locked (SKIP LOCKED passes those that a concurrent claim holds): a row
 * lock is a write, and a poll of 200 locked 800. With $5, a claim that takes nothing also answers
 * NEXT_AVAILABLE_AT (`next_at`), which a long poll asks next before it waits: one round trip where
 * there were two on every poll that finds nothing ready (runs_ahead, one index probe).
 * $1 worker, $2 now, $3 max, $4 window, $5 answer next_at, $6 the worker's poll number (null: not numbered).
 */
export const DISPATCH_FAST = `
  WITH w AS (SELECT namespace, group_name, handlers, status FROM workers WHERE id = $1),
  g AS (
    SELECT 1 FROM namespace_group_limits
    WHERE namespace = (SELECT namespace FROM w) AND group_name = (SELECT group_name FROM w)
      AND (max_concurrency IS NOT NULL OR rate_limit IS NOT NULL)),
  seen AS (
    SELECT r.id, r.job_id, r.resources IS NOT NULL AS requests FROM runs r
    WHERE (SELECT status FROM w) = 'active' AND ${FAST_CLAIMABLE}
    ORDER BY r.priority DESC, r.available_at, r.id
    LIMIT $4),
  simple AS (
    SELECT NOT EXISTS (SELECT 1 FROM g) AND NOT EXISTS (SELECT 1 FROM seen WHERE requests) AND NOT EXISTS (
      SELECT 1 FROM jobs j WHERE j.id IN (SELECT job_id FROM seen)
        AND NOT (coalesce(j.dispatch->'routing'->>'strategy', 'any') = 'any'
          AND coalesce(j.dispatch->'routing'->'selector', '{}'::jsonb) = '{}'::jsonb
          AND j.dispatch->>'maxConcurrency' IS NULL AND j.dispatch->>'rateLimit' IS NULL
          AND j.dispatch->>'resources' IS NULL)) AS ok),
  chosen AS (
    SELECT r.id FROM runs r
    WHERE (SELECT ok FROM simple) AND ${FAST_CLAIMABLE} AND r.job_id IN (SELECT job_id FROM seen)
    ORDER BY r.priority DESC, r.available_at, r.id
    LIMIT $3
    FOR UPDATE SKIP LOCKED),
  claimed AS (
    UPDATE runs r SET status = 'running', attempt = r.attempt + 1, worker_id = $1, started_at = $2::bigint,
      deadline_at = $2::bigint + r.timeout_ms, finished_at = NULL, claim_seq = $6::bigint,
      target_worker_id = NULL
    FROM chosen WHERE r.id = chosen.id
    RETURNING r.id, r.attempt, r.job_id, r.handler, r.params, r.fire_time, r.timeout_ms, r.max_attempts, r.shard,
      r.shard_count, r.priority, r.available_at, r.trace_context, r.task)
  SELECT (SELECT status FROM w) AS worker_status, (SELECT ok FROM simple) AS simple,
    (SELECT count(*) FROM seen)::int AS picked,
    coalesce((
      SELECT json_agg(json_build_object('id', c.id, 'attempt', c.attempt, 'handler', c.handler,
        'params', c.params::text, 'fire_time', c.fire_time, 'timeout_ms', c.timeout_ms,
        'max_attempts', c.max_attempts, 'shard', c.shard, 'shard_count', c.shard_count,
        'job_name', j.name, 'task', coalesce(c.task, j.task)::text, 'trace_context', c.trace_context) ORDER BY c.priority DESC, c.available_at, c.id)
      FROM claimed c JOIN jobs j ON j.id = c.job_id), '[]') AS claimed,
    CASE WHEN $5::boolean AND NOT EXISTS (SELECT 1 FROM claimed) THEN (
      SELECT min(available_at) FROM runs
      WHERE status = 'queued' AND group_name = (SELECT group_name FROM w) AND available_at > $2::bigint)
    END AS next_at`;
