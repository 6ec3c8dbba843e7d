// Runtime SQL of the PostgreSQL store for fire ahead (Store.dispatchAhead).

/**
 * Claim for worker $1 (active), at $2, up to $4 queued runs of its group and handlers that become
 * available in ($2, $3], soonest first: each attempt (alive while its worker's lease is; no row until
 * it ends) starts at the run's available_at, and its deadline counts from there. Passed over: runs
 * assigned to a worker, runs of jobs with routing, a selector, limits or resources (and runs with a request of their own), and every run of a group
 * with limits in the run's namespace (they wait for their instant and DISPATCH_FAST). Uses runs_ahead; SKIP LOCKED as the
 * other claims. $5 the worker's poll number (null: not numbered).
 */
export const DISPATCH_AHEAD = `
  WITH w AS (SELECT namespace, group_name, handlers FROM workers WHERE id = $1 AND status = 'active'),
  chosen AS (
    SELECT r.id FROM runs r JOIN jobs j ON j.id = r.job_id
    WHERE r.status = 'queued' AND r.group_name = (SELECT group_name FROM w) AND r.namespace = (SELECT namespace FROM w)
      AND r.available_at > $2::bigint AND r.available_at <= $3::bigint AND r.target_worker_id IS NULL
      AND r.handler IN (SELECT jsonb_array_elements_text(handlers) FROM w)
      AND coalesce(j.dispatch->'routing'->>'strategy', 'any') = 'any'
      AND coalesce(j.dispatch->'routing'->'selector', '{}'::jsonb) = '{}'::jsonb
      AND j.dispatch->>'maxConcurrency' IS NULL AND j.dispatch->>'rateLimit' IS NULL
      AND j.dispatch->>'resources' IS NULL AND r.resources IS NULL
      AND NOT EXISTS (
        SELECT 1 FROM namespace_group_limits g WHERE g.namespace = r.namespace AND g.group_name = r.group_name
          AND (g.max_concurrency IS NOT NULL OR g.rate_limit IS NOT NULL))
    ORDER BY r.available_at, r.id
    LIMIT $4
    FOR UPDATE OF r SKIP LOCKED),
  claimed AS (
    UPDATE runs r SET status = 'running', attempt = r.attempt + 1, worker_id = $1, started_at = r.available_at,
      deadline_at = r.available_at + r.timeout_ms, finished_at = NULL, claim_seq = $5::bigint
    FROM chosen WHERE r.id = chosen.id
    RETURNING r.id, r.attempt, r.job_id, r.handler, r.params, r.fire_time, r.timeout_ms, r.max_attempts, r.shard,
      r.shard_count, r.available_at, r.trace_context, r.task)
  SELECT c.id, c.attempt, c.handler, c.params, c.fire_time, c.timeout_ms, c.max_attempts, c.shard, c.shard_count,
    c.available_at, j.name AS job_name, coalesce(c.task, j.task) AS task, c.trace_context
  FROM claimed c JOIN jobs j ON j.id = c.job_id
  ORDER BY c.available_at, c.id`;

/** The earliest available_at after $2 of a queued run of worker $1's group (null: none). Uses runs_ahead. */
export const NEXT_AVAILABLE_AT = `
  SELECT min(available_at) AS at FROM runs
  WHERE status = 'queued' AND group_name = (SELECT group_name FROM workers WHERE id = $1) AND available_at > $2::bigint`;

/**
 * withdrawFiresAhead: deletes the paused job's scheduled runs fired after $2 that are queued and
 * never claimed, later than every run of the job after $2 that stays (held by a worker, started,
 * retried, ended), and moves its next fire back to the earliest of them. $1 job id, $2 after.
 * The job's runs after $2 are locked first (FOR UPDATE: a claim in flight is waited for and its
 * run read as claimed; a later claim skips them, SKIP LOCKED), so only runs still unclaimed at
 * this moment are deleted; the DELETE checks the status again on the row it removes.
 */
export const WITHDRAW_FIRES_AHEAD = `
  WITH ahead AS (
    SELECT id, fire_time, cause = 'schedule' AND status = 'queued' AND attempt = 0 AS free FROM runs
    WHERE job_id = $1 AND fire_time > $2::bigint
    ORDER BY id FOR UPDATE),
  gone AS (
    DELETE FROM runs r USING ahead a
    WHERE r.id = a.id AND a.free AND r.status = 'queued' AND r.attempt = 0
      AND a.fire_time > coalesce((SELECT max(fire_time) FROM ahead WHERE NOT free), $2::bigint)
    RETURNING r.fire_time),
  moved AS (
    UPDATE jobs SET next_fire_at = LEAST(coalesce(next_fire_at, (SELECT min(fire_time) FROM gone)),
      (SELECT min(fire_time) FROM gone))
    WHERE id = $1 AND paused AND EXISTS (SELECT 1 FROM gone))
  SELECT count(*)::int AS n FROM gone`;
