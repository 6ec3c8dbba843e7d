// The worker protocol on PostgreSQL (the Store contract's "Worker protocol" and "Workers at scale"
// sections): registration, heartbeats, claims (the one-statement fast path and the planner's
// transaction, store/dispatch-plan.ts), draining, group limits, routing state, schedule-to-start
// timeouts.

import type { AttemptRef } from '@kairos/client';
import type { Bucket } from '../../core/rate-limit.ts';
import type { Resources } from '../../core/resources.ts';
import type { RoutingState, WorkerLoad } from '../../core/routing.ts';
import type { TaskDefinition } from '../../core/task.ts';
import { KairosError } from '../../errors.ts';
import {
  bucketScopes,
  type DispatchCandidate,
  type DispatchPlan,
  lockedJobs,
  needsSnapshot,
  planDispatch,
  requestsResources,
} from '../dispatch-plan.ts';
import {
  addUsed,
  type BucketRow,
  type CandidateRow,
  type ClaimRow,
  candidateFromRow,
  claimedFromRow,
  dispatchWindow,
  type GroupLimitRow,
  groupLimitFromRow,
  groupLimitsFromRow,
  type NamespaceGroupLimitRow,
  type SnapshotRow,
  scheduleToStartError,
  snapshotFromRow,
  type UsedRow,
  usedByWorker,
} from '../dispatch-rows.ts';
import { DEFAULT_NAMESPACE } from '../namespaces.ts';
import { heartbeatAnswer, type WorkerRow, workerFromRow } from '../rows.ts';
import type {
  ClaimedRun,
  GroupLimit,
  GroupLimits,
  HeartbeatAnswer,
  WorkerRecord,
  WorkerRegistration,
} from '../store.ts';
import { LIVE_WORKERS } from './broadcasts.ts';
import type { PostgresConnection } from './connection.ts';
import { afterRunsEnded } from './schedules.ts';

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
 * The requests of the running runs of workers $1 (text[]) that request anything: the run's own (a
 * workflow step's) or its job's. Through runs_worker; read only by claims of runs that request
 * resources.
 */
export const USED_BY_WORKERS = `
  SELECT r.worker_id, coalesce(r.resources, j.dispatch->'resources') AS request
  FROM runs r JOIN jobs j ON j.id = r.job_id
  WHERE r.status = 'running' AND r.worker_id = ANY($1::text[])
    AND (r.resources IS NOT NULL OR j.dispatch->>'resources' IS NOT NULL)`;

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
 * long-poll path runs on every wake-up. The window ($4, dispatchWindow: wider than $3) is read
 * without locks, and each of its jobs' policies once; then the claimable runs of those jobs are read
 * again from the top of the index and only the runs taken are locked (SKIP LOCKED passes those that
 * a concurrent claim holds): a row lock is a write, and a poll of 200 locked 800. The window is
 * wider than the claim because a concurrent claim may hold its first runs: a window of $3 runs of
 * one job, all held, left runs of other jobs ready and the claim empty. Past the window, the second
 * read takes only runs that request nothing of their own (one that does goes through the planner,
 * which places it by its request). With $5, a claim that takes nothing also answers
 * NEXT_AVAILABLE_AT (`next_at`), which a long poll asks next before it waits: one round trip where
 * there were two on every poll that finds nothing ready (runs_ahead, one index probe). The claimed
 * runs' job names and tasks come from their jobs read once each (seen_jobs), not once per run.
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
      AND r.resources IS NULL
    ORDER BY r.priority DESC, r.available_at, r.id
    LIMIT $3
    FOR UPDATE SKIP LOCKED),
  claimed AS (
    UPDATE runs r SET status = 'running', attempt = r.attempt + 1, worker_id = $1, started_at = $2::bigint,
      deadline_at = $2::bigint + r.timeout_ms, finished_at = NULL, claim_seq = $6::bigint,
      target_worker_id = NULL
    FROM chosen WHERE r.id = chosen.id
    RETURNING r.id, r.attempt, r.job_id, r.handler, r.params, r.fire_time, r.timeout_ms, r.max_attempts, r.shard,
      r.shard_count, r.priority, r.available_at, r.trace_context, r.task),
  seen_jobs AS MATERIALIZED (SELECT id, name, task FROM jobs WHERE id IN (SELECT job_id FROM seen))
  SELECT (SELECT status FROM w) AS worker_status, (SELECT ok FROM simple) AS simple,
    (SELECT count(*) FROM seen)::int AS picked,
    coalesce((
      SELECT json_agg(json_build_object('id', c.id, 'attempt', c.attempt, 'handler', c.handler,
        'params', c.params::text, 'fire_time', c.fire_time, 'timeout_ms', c.timeout_ms,
        'max_attempts', c.max_attempts, 'shard', c.shard, 'shard_count', c.shard_count,
        'job_name', j.name, 'task', coalesce(c.task, j.task)::text, 'trace_context', c.trace_context) ORDER BY c.priority DESC, c.available_at, c.id)
      FROM claimed c JOIN seen_jobs j ON j.id = c.job_id), '[]') AS claimed,
    CASE WHEN $5::boolean AND NOT EXISTS (SELECT 1 FROM claimed) THEN (
      SELECT min(available_at) FROM runs
      WHERE status = 'queued' AND group_name = (SELECT group_name FROM w) AND available_at > $2::bigint)
    END AS next_at`;

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

/** Lock worker $1's row: claims of runs that request resources place them on it one at a time. */
export const LOCK_WORKER = `SELECT 1 FROM workers WHERE id = $1 FOR UPDATE`;

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
 * Queued runs that waited past their job's schedule-to-start timeout since they became available,
 * locked. $1 now, $2 limit. The jobs that have a timeout (jobs_schedule_to_start, few), then per job
 * the range of runs_active that became available before it, oldest first: only expired runs (and
 * the job's running ones) are read. As a join, the planner walked the primary key through every run of the
 * store on each reaper sweep (165 ms for 200,000 queued runs of a job without a timeout).
 */
export const DUE_QUEUED = `
  SELECT x.id, j.schedule_to_start_ms AS ms FROM jobs j
  CROSS JOIN LATERAL (
    SELECT r.id FROM runs r
    WHERE r.job_id = j.id AND r.status IN ('queued', 'running')
      AND r.available_at <= $1::bigint - j.schedule_to_start_ms AND r.status = 'queued'
    ORDER BY r.available_at LIMIT $2
    FOR UPDATE OF r SKIP LOCKED) x
  WHERE j.schedule_to_start_ms IS NOT NULL
  ORDER BY x.id LIMIT $2`;

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

export async function registerWorker(
  c: PostgresConnection,
  worker: WorkerRegistration,
  leaseMs: number,
  now: number,
): Promise<void> {
  await c.query('registerWorker', REGISTER_WORKER, [
    worker.id,
    worker.name,
    worker.group,
    JSON.stringify(worker.handlers),
    worker.capacity,
    JSON.stringify(worker.labels),
    worker.version,
    worker.host,
    now,
    now + leaseMs,
    worker.registeredBy ?? '',
    worker.namespace ?? DEFAULT_NAMESPACE,
    worker.resources ? JSON.stringify(worker.resources) : null,
  ]);
}

export async function heartbeat(
  c: PostgresConnection,
  workerId: string,
  running: readonly AttemptRef[],
  leaseMs: number,
  now: number,
  polled: number | null = null,
  load: WorkerLoad | null = null,
): Promise<HeartbeatAnswer | null> {
  const [row] = await c.query<{ alive: number; running: string }>('heartbeat', HEARTBEAT, [
    workerId,
    now,
    leaseMs,
    load === null ? null : JSON.stringify(load),
  ]);
  if (!row || row.alive === 0) return null;
  const current = JSON.parse(row.running) as Array<[number, number, number | null]>;
  return heartbeatAnswer(current, running, polled);
}

export async function claimRuns(
  c: PostgresConnection,
  workerId: string,
  max: number,
  now: number,
): Promise<ClaimedRun[]> {
  const rows = await c.query<{
    id: number;
    attempt: number;
    job_name: string;
    handler: string;
    params: string;
    fire_time: number | null;
    timeout_ms: number;
    max_attempts: number;
    trace_context: string | null;
  }>('claimRuns', CLAIM_RUNS, [workerId, now, max, null]);
  if (rows.length === 0) {
    const alive = await c.query('claimRuns', `SELECT 1 FROM workers WHERE id = $1 AND status = 'active'`, [
      workerId,
    ]);
    if (alive.length === 0)
      throw new KairosError('WORKER_NOT_FOUND', `worker ${workerId} is not registered or was declared lost`);
  }
  return rows.map((row) => ({
    runId: row.id,
    attempt: row.attempt,
    jobName: row.job_name,
    handler: row.handler,
    params: JSON.parse(row.params),
    fireTime: row.fire_time,
    timeoutMs: row.timeout_ms,
    maxAttempts: row.max_attempts,
    ...(row.trace_context ? { traceContext: JSON.parse(row.trace_context) } : {}),
  }));
}

export async function unregisterWorker(c: PostgresConnection, workerId: string, now: number): Promise<void> {
  await c.query(
    'unregisterWorker',
    `UPDATE workers SET status = 'stopped', lease_expires_at = $2 WHERE id = $1`,
    [workerId, now],
  );
}

export async function listWorkers(c: PostgresConnection, namespace?: string): Promise<WorkerRecord[]> {
  return (await c.query<WorkerRow>('listWorkers', LIST_WORKERS, [namespace ?? null])).map(workerFromRow);
}

export async function resourcesInUse(
  c: PostgresConnection,
  workerIds: readonly string[],
): Promise<Map<string, Resources>> {
  if (workerIds.length === 0) return new Map();
  return usedByWorker(await c.query<UsedRow>('resourcesInUse', USED_BY_WORKERS, [[...workerIds]]));
}

export async function dispatchRuns(
  c: PostgresConnection,
  workerId: string,
  max: number,
  now: number,
  random: number,
  claimSeq: number | null,
  reserveAfterMs: number,
): Promise<ClaimedRun[]> {
  return (await dispatch(c, workerId, max, now, random, false, claimSeq, reserveAfterMs)).runs;
}

/** dispatchRuns (and dispatchForPoll); with `next`, a fast-path claim that takes nothing also answers nextAvailableAt. */
export async function dispatch(
  c: PostgresConnection,
  workerId: string,
  max: number,
  now: number,
  random: number,
  next: boolean,
  claimSeq: number | null,
  reserveAfterMs: number,
): Promise<{ runs: ClaimedRun[]; nextAvailableAt?: number | null }> {
  const [fast] = await c.query<{
    worker_status: string | null;
    simple: boolean | null;
    picked: number;
    claimed: string;
    next_at: number | null;
  }>('dispatchRuns', DISPATCH_FAST, [workerId, now, max, dispatchWindow(max), next, claimSeq]);
  const status = fast?.worker_status ?? null;
  if (status !== 'active' && status !== 'draining') {
    throw new KairosError('WORKER_NOT_FOUND', `worker ${workerId} is not registered or was declared lost`);
  }
  const nextAvailableAt = next ? fast!.next_at : undefined;
  if (status === 'draining' || fast!.picked === 0) return { runs: [], nextAvailableAt };
  if (fast!.simple) {
    const runs = (
      JSON.parse(fast!.claimed) as Array<ClaimRow & { job_name: string; task: string | null }>
    ).map((row) =>
      claimedFromRow(row, {
        jobName: row.job_name,
        task: row.task === null ? null : (JSON.parse(row.task) as TaskDefinition),
      }),
    );
    return { runs, nextAvailableAt: runs.length > 0 ? null : nextAvailableAt };
  }
  // Routing, selectors or limits in play: the planner, in a transaction with the rows it needs locked.
  const out = await c.transaction('dispatchRuns', async (client) => {
    const [worker] = (
      await client.query<{ namespace: string; group_name: string; handlers: string; status: string }>(
        'SELECT namespace, group_name, handlers, status FROM workers WHERE id = $1',
        [workerId],
      )
    ).rows;
    if (!worker || (worker.status !== 'active' && worker.status !== 'draining')) return null;
    const group = worker.group_name;
    if (worker.status === 'draining') return { claimed: [], wake: false, group };
    const candidates = (
      await client.query<CandidateRow>(DISPATCH_CANDIDATES, [
        workerId,
        group,
        JSON.parse(worker.handlers) as string[],
        now,
        dispatchWindow(max),
        worker.namespace,
      ])
    ).rows.map(candidateFromRow);
    if (candidates.length === 0) return { claimed: [], wake: false, group };
    const [limit] = (await client.query<GroupLimitRow>(LOCK_GROUP_LIMIT, [worker.namespace, group])).rows;
    const groupLimits = { namespace: worker.namespace, name: group, ...groupLimitsFromRow(limit) };
    let plan: DispatchPlan;
    if (!needsSnapshot(candidates, groupLimits)) {
      plan = {
        claim: candidates.slice(0, max).map((c) => c.runId),
        assign: [],
        states: new Map(),
        buckets: new Map(),
      };
    } else {
      const jobs = lockedJobs(candidates);
      // Locks first, then counts: a concurrent claim of the same job commits before we count.
      await client.query(ENSURE_JOB_ROUTING, [jobs]);
      const states = new Map<number, RoutingState>();
      for (const row of (await client.query<{ job_id: number; state: string }>(LOCK_JOB_ROUTING, [jobs]))
        .rows)
        states.set(row.job_id, JSON.parse(row.state));
      const live = (await client.query<SnapshotRow>(LIVE_WORKERS, [group, now, worker.namespace])).rows.map(
        snapshotFromRow,
      );
      let waiting: DispatchCandidate[] = [];
      if (requestsResources(candidates)) {
        // The claiming worker's row, locked: two claims for it (a poll on each of two nodes) place
        // runs one after the other, each counting what the other took. Other workers' requests are
        // read unlocked: they only steer reservations and routing, never a placement on them.
        await client.query(LOCK_WORKER, [workerId]);
        addUsed(live, (await client.query<UsedRow>(USED_BY_WORKERS, [live.map((w) => w.id)])).rows);
        // Runs that waited long enough to be reserved for, locked or not: a big run another
        // node's claim holds at this instant must still hold back the small runs behind it.
        waiting = (
          await client.query<CandidateRow>(RESOURCE_WAITERS, [
            workerId,
            group,
            JSON.parse(worker.handlers) as string[],
            now - reserveAfterMs,
            dispatchWindow(max),
            worker.namespace,
          ])
        ).rows.map(candidateFromRow);
      }
      const loadOfJob = new Map<string, number>();
      for (const row of (await client.query<{ w: string; job_id: number; n: number }>(LOAD_OF_JOBS, [jobs]))
        .rows) {
        const key = `${row.w}:${row.job_id}`;
        loadOfJob.set(key, (loadOfJob.get(key) ?? 0) + row.n);
      }
      const runningOfJob = new Map<number, number>();
      for (const row of (await client.query<{ job_id: number; n: number }>(RUNNING_OF_JOBS, [jobs])).rows)
        runningOfJob.set(row.job_id, row.n);
      // Buckets need no lock of their own: the job's routing row and the group's limit row are locked.
      const buckets = new Map<string, Bucket>();
      for (const row of (await client.query<BucketRow>(READ_BUCKETS, [bucketScopes(candidates, groupLimits)]))
        .rows)
        buckets.set(row.scope, { tokens: row.tokens, updatedAt: row.updated_at });
      const groupRunning =
        groupLimits.maxConcurrency === null
          ? 0
          : (await client.query<{ n: number }>(RUNNING_OF_GROUP, [worker.namespace, group])).rows[0]!.n;
      plan = planDispatch({
        workerId,
        max,
        candidates,
        live,
        loadOfJob,
        runningOfJob,
        groupRunning,
        group: groupLimits,
        buckets,
        now,
        states,
        random,
        reserveAfterMs: reserveAfterMs,
        waiting,
      });
    }
    if (plan.assign.length > 0)
      await client.query(ASSIGN_RUNS, [
        JSON.stringify(plan.assign.map((a) => ({ run_id: a.runId, worker_id: a.workerId }))),
      ]);
    if (plan.states.size > 0)
      await client.query(SAVE_JOB_ROUTING, [
        JSON.stringify([...plan.states].map(([job_id, state]) => ({ job_id, state }))),
      ]);
    if (plan.buckets.size > 0)
      await client.query(SAVE_BUCKETS, [
        JSON.stringify(
          [...plan.buckets].map(([scope, b]) => ({ scope, tokens: b.tokens, updated_at: b.updatedAt })),
        ),
      ]);
    let claimed: ClaimedRun[] = [];
    if (plan.claim.length > 0) {
      const rows = (await client.query<ClaimRow>(CLAIM_PLANNED, [workerId, plan.claim, now, claimSeq])).rows;
      const byId = new Map(rows.map((row) => [row.id, row]));
      const byRun = new Map(candidates.map((c) => [c.runId, c]));
      claimed = plan.claim.map((id) => claimedFromRow(byId.get(id)!, byRun.get(id)!));
    }
    return {
      claimed,
      wake: plan.assign.some((a) => a.workerId !== null && a.workerId !== workerId),
      group,
    };
  });
  if (out === null)
    throw new KairosError('WORKER_NOT_FOUND', `worker ${workerId} is not registered or was declared lost`);
  // Runs were assigned to other workers: wake their polls, on every node.
  if (out.wake) await c.notify([{ type: 'runs', group: out.group }]);
  return { runs: out.claimed };
}

export async function drainWorker(
  c: PostgresConnection,
  workerId: string,
  _now: number,
): Promise<WorkerRecord | null> {
  // Runs assigned to it are routed again by the next claim of another worker.
  return setWorkerStatus(c, 'drainWorker', DRAIN_WORKER, workerId, 'drain');
}

export async function resumeWorker(
  c: PostgresConnection,
  workerId: string,
  _now: number,
): Promise<WorkerRecord | null> {
  // Its long polls, and those of its group, claim again.
  return setWorkerStatus(c, 'resumeWorker', RESUME_WORKER, workerId, 'resume');
}

/** Drains or resumes a worker that is active or draining; its group's waiters hear of it. */
async function setWorkerStatus(
  c: PostgresConnection,
  operation: string,
  statement: string,
  workerId: string,
  verb: string,
): Promise<WorkerRecord | null> {
  const [row] = await c.query<{ status: string; group_name: string }>(operation, statement, [workerId]);
  if (!row) return null;
  if (row.status !== 'active' && row.status !== 'draining') {
    throw new KairosError('WORKER_NOT_ACTIVE', `worker ${workerId} is ${row.status}: nothing to ${verb}`);
  }
  await c.notify([{ type: 'runs', group: row.group_name }]);
  return (await listWorkers(c)).find((w) => w.id === workerId) ?? null;
}

export async function expireQueuedRuns(c: PostgresConnection, now: number, limit: number): Promise<number[]> {
  const expired = await c.transaction('expireQueuedRuns', async (client) => {
    const due = (await client.query<{ id: number; ms: number }>(DUE_QUEUED, [now, limit])).rows;
    if (due.length === 0) return { ids: [], groups: [] };
    const input = due.map((row) => ({ id: row.id, error: scheduleToStartError(row.ms) }));
    const ended = await client.query<{ id: number }>(FAIL_QUEUED, [now, JSON.stringify(input)]);
    const ids = ended.rows.map((row) => row.id);
    // What any run end sets off: the jobs after them, their workflow instances, buffered runs.
    return { ids, groups: await afterRunsEnded(client, ids, now) };
  });
  if (expired.groups.length > 0) {
    await c.notify([...new Set(expired.groups)].map((group) => ({ type: 'runs', group })));
  }
  return expired.ids;
}

export async function setGroupLimit(
  c: PostgresConnection,
  group: string,
  limits: GroupLimits,
  now: number,
  namespace: string = DEFAULT_NAMESPACE,
): Promise<void> {
  await c.query('setGroupLimit', SET_GROUP_LIMIT, [
    group,
    limits.maxConcurrency,
    limits.rateLimit?.limit ?? null,
    limits.rateLimit?.perMs ?? null,
    now,
    namespace,
  ]);
  await c.notify([{ type: 'runs', group }]);
}

export async function listGroupLimits(c: PostgresConnection, namespace?: string): Promise<GroupLimit[]> {
  const rows = await c.query<NamespaceGroupLimitRow>('listGroupLimits', LIST_GROUP_LIMITS, [
    namespace ?? null,
  ]);
  return rows.map(groupLimitFromRow);
}

export async function routingState(c: PostgresConnection, jobId: number): Promise<RoutingState | null> {
  const [row] = await c.query<{ state: string }>(
    'routingState',
    'SELECT state FROM job_routing WHERE job_id = $1',
    [jobId],
  );
  return row ? (JSON.parse(row.state) as RoutingState) : null;
}
