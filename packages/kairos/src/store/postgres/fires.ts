// Firing on PostgreSQL (the Store contract's "Firing" section, with fire ahead): due jobs, the
// fire transaction under the partition leases, and the claims of runs fired ahead of their instant.

import type pg from 'pg';
import { type AheadRow, aheadClaimedFromRow } from '../dispatch-ahead.ts';
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
  type SkipWritten,
} from '../store.ts';
import { shardNewRuns } from './broadcasts.ts';
import { LOCK_LEASES, leaseKey } from './cluster.ts';
import type { PostgresConnection } from './connection.ts';
import { dispatch } from './dispatch.ts';
import { fireWithPolicies, needsPolicySteps, skippedInput, writeSkipped } from './schedules.ts';
import { fireWorkflow } from './workflow-fires.ts';

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
 * hasQueuedRuns: whether the first queued run of group $1 is available by $2. Asked in the order of
 * runs_ahead (group, available_at), so that the plan takes that index and reads one entry (a plain
 * EXISTS could walk runs_queued_by_job through every queued run of the group when none is due).
 */
export const HAS_QUEUED_RUNS = `
  SELECT coalesce((
    SELECT available_at FROM runs WHERE status = 'queued' AND group_name = $1 ORDER BY available_at LIMIT 1
  ) <= $2::bigint, false) AS found`;

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

export async function dueJobs(
  c: PostgresConnection,
  partitions: Partitions,
  now: number,
  limit: number,
): Promise<DueJob[]> {
  const rows = await c.query<DueJobRow>('dueJobs', DUE_JOBS, [
    now,
    partitions.count,
    partitions.owned,
    limit,
  ]);
  return dueJobsFromRows(rows);
}

export async function nextFireAt(c: PostgresConnection, partitions: Partitions): Promise<number | null> {
  const [row] = await c.query<{ next_fire_at: number }>('nextFireAt', NEXT_FIRE_AT, [
    partitions.count,
    partitions.owned,
  ]);
  return row?.next_fire_at ?? null;
}

export async function fire(
  c: PostgresConnection,
  entries: readonly FireEntry[],
  leases: readonly Lease[] | null,
  now: number,
): Promise<FireResult> {
  const result = await c.transaction('fire', async (client) => {
    if (leases && leases.length > 0) {
      const held = await client.query(LOCK_LEASES, [JSON.stringify(leases.map(leaseKey)), now]);
      if ((held.rowCount ?? 0) < leases.length) {
        throw new LeaseLostError(`partition leases of ${leases[0]!.owner} are no longer held (fenced out)`);
      }
    }
    const out = await firePolicyEntries(client, entries.filter(needsPolicySteps), now);
    const batch = entries.filter((e) => !needsPolicySteps(e));
    const { rows } = await client.query<{ advanced: number; runs: number; groups: string[] }>(FIRE, [
      JSON.stringify(batch.map((e) => ({ job_id: e.jobId, expected: e.expected, next: e.next }))),
      JSON.stringify(
        batch.flatMap((e) =>
          e.fires.map((fireTime, i) => ({
            job_id: e.jobId,
            fire_time: fireTime,
            available_at: e.availableAt?.[i] ?? fireTime,
            trace_context: traceColumn(e.traceContexts?.[i]),
          })),
        ),
      ),
      now,
    ]);
    const row = rows[0]!;
    const ledger = batch.flatMap((e) => skippedInput(e, e.skipped ?? []));
    if (ledger.length > 0) {
      out.skipped.push(...(await writeSkipped(client, ledger, now)));
    }
    await shardNewRuns(
      client,
      entries.map((e) => e.jobId),
      now,
    );
    const fired: FireResult = {
      runs: row.runs + out.runs,
      conflicts: batch.length - row.advanced + out.conflicts,
      groups: [...new Set([...row.groups, ...out.groups])],
    };
    if (out.skipped.length > 0) fired.skipped = out.skipped;
    return fired;
  });
  await c.notify(result.groups.map((group) => ({ type: 'runs', group })));
  return result;
}

export async function dispatchForPoll(
  c: PostgresConnection,
  workerId: string,
  max: number,
  now: number,
  random: number,
  claimSeq: number | null,
  reserveAfterMs: number,
): Promise<PollDispatch> {
  const out = await dispatch(c, workerId, max, now, random, true, claimSeq, reserveAfterMs);
  if (out.runs.length > 0 || out.nextAvailableAt !== undefined) {
    return { runs: out.runs, nextAvailableAt: out.nextAvailableAt ?? null };
  }
  // The planner's path (routing, selectors, limits) took nothing: ask apart.
  return { runs: [], nextAvailableAt: await nextAvailableAt(c, workerId, now) };
}

export async function dispatchAhead(
  c: PostgresConnection,
  workerId: string,
  max: number,
  until: number,
  now: number,
  claimSeq: number | null = null,
): Promise<ClaimedRun[]> {
  const rows = await c.query<AheadRow>('dispatchAhead', DISPATCH_AHEAD, [
    workerId,
    now,
    until,
    max,
    claimSeq,
  ]);
  return rows.map(aheadClaimedFromRow);
}

export async function withdrawFiresAhead(
  c: PostgresConnection,
  jobId: number,
  after: number,
): Promise<number> {
  // The runs first, then the job: the lock order of every path that ends or deletes runs.
  const [row] = await c.query<{ n: number }>('withdrawFiresAhead', WITHDRAW_FIRES_AHEAD, [jobId, after]);
  return row?.n ?? 0;
}

export async function nextAvailableAt(
  c: PostgresConnection,
  workerId: string,
  now: number,
): Promise<number | null> {
  const [row] = await c.query<{ at: number | null }>('nextAvailableAt', NEXT_AVAILABLE_AT, [workerId, now]);
  return row?.at ?? null;
}

export async function hasQueuedRuns(c: PostgresConnection, group: string, until: number): Promise<boolean> {
  const [row] = await c.query<{ found: boolean }>('hasQueuedRuns', HAS_QUEUED_RUNS, [group, until]);
  return row?.found ?? false;
}

/** Fires the entries that need policy steps, one job at a time, inside the caller's transaction. */
async function firePolicyEntries(
  client: pg.PoolClient,
  entries: readonly FireEntry[],
  now: number,
): Promise<{ runs: number; conflicts: number; groups: string[]; skipped: SkipWritten[] }> {
  const out = { runs: 0, conflicts: 0, groups: [] as string[], skipped: [] as SkipWritten[] };
  for (const entry of entries) {
    // A workflow's job: its fires start instances (store/postgres/workflow-fires.ts).
    const fired = entry.workflow
      ? await fireWorkflow(client, entry, now)
      : await fireWithPolicies(client, entry, now);
    if (!fired.advanced) out.conflicts++;
    out.runs += fired.runs;
    for (const group of fired.groups) if (!out.groups.includes(group)) out.groups.push(group);
    out.skipped.push(...fired.skipped);
  }
  return out;
}
