// Broadcast (sharded) runs on PostgreSQL: a fire of a broadcast job becomes one run per live worker,
// and the broadcast ends once, when its last shard ends (docs/schedules.md#dependencies,
// docs/workflows.md). One commented statement per constant, and the helpers that run them inside
// the caller's transaction.

import type pg from 'pg';
import { dispatchFromColumn } from '../../core/dispatch-policy.ts';
import { shardTargets } from '../../core/routing.ts';
import { type SnapshotRow, snapshotFromRow } from '../dispatch-rows.ts';

/**
 * Sharding broadcast, inside the transaction that created runs at `now`: each new queued run of
 * a broadcast job becomes shard 0 of N, N the eligible live workers of its group, and N - 1
 * copies are the other shards, each assigned to its worker. No live worker: one shard, for
 * whichever worker comes first.
 */
export async function shardNewRuns(
  client: pg.PoolClient,
  jobIds: readonly number[],
  now: number,
): Promise<void> {
  const broadcast = (
    await client.query<{
      id: number;
      namespace: string;
      group_name: string;
      handler: string;
      dispatch: string;
    }>(BROADCAST_JOBS, [[...new Set(jobIds)]])
  ).rows;
  for (const job of broadcast) {
    const runs = (await client.query<{ id: number }>(NEW_UNSHARDED_RUNS, [job.id, now])).rows;
    if (runs.length === 0) continue;
    const live = (
      await client.query<SnapshotRow>(LIVE_WORKERS, [job.group_name, now, job.namespace])
    ).rows.map(snapshotFromRow);
    const targets = shardTargets(live, job.handler, dispatchFromColumn(job.dispatch).routing.selector);
    const total = Math.max(1, targets.length);
    await client.query(SHARD_RUNS, [runs.map((r) => r.id), total, targets.length > 0 ? targets : [null]]);
  }
}

/**
 * Lock the first shard of each broadcast that the ended runs $1 are shards of, in id order. Every
 * transaction that ends a shard takes this lock before it judges whether the broadcast is over, so
 * two shards ending at once on two nodes are judged one after the other: the second, reading after
 * the first committed (READ COMMITTED: a new statement), sees every shard ended, and only it does.
 * Without it each sees the other's shard still running and the broadcast never ends.
 */
export const LOCK_BROADCASTS = `
  SELECT id FROM runs WHERE id IN (
    SELECT broadcast_run_id FROM runs WHERE id = ANY($1::bigint[]) AND broadcast_run_id IS NOT NULL
      AND status IN ('succeeded', 'failed', 'timed_out', 'cancelled'))
  ORDER BY id FOR UPDATE`;

/**
 * Of broadcasts $1 (first shard ids, locked), those whose every shard has ended, each as one ended
 * run: the first shard's id, its job and workflow step, the overall status (`succeeded` when every
 * shard succeeded, `failed` when one failed or timed out, else `cancelled`) and the shards' results
 * in shard order (null for a shard that did not succeed), JSON text. `broadcast_run_id` NULL: the broadcast is
 * one run to DEPENDENTS_OF_ENDED.
 */
export const ENDED_BROADCASTS = `
  SELECT b.id, min(r.job_id) AS job_id,
    CASE WHEN bool_and(r.status = 'succeeded') THEN 'succeeded'
      WHEN bool_or(r.status IN ('failed', 'timed_out')) THEN 'failed' ELSE 'cancelled' END AS status,
    jsonb_agg(CASE WHEN r.status = 'succeeded' THEN r.result END ORDER BY r.shard)::text AS result,
    min(r.workflow_instance_id) AS workflow_instance_id, min(r.workflow_step) AS workflow_step,
    NULL::bigint AS broadcast_run_id
  FROM unnest($1::bigint[]) AS b(id) JOIN runs r ON r.broadcast_run_id = b.id
  GROUP BY b.id
  HAVING bool_and(r.status IN ('succeeded', 'failed', 'timed_out', 'cancelled'))`;

/** A broadcast whose last shard ended in this transaction, as one ended run. */
export interface EndedBroadcast {
  id: number;
  job_id: number;
  status: string;
  /** JSON text. */
  result: string;
  workflow_instance_id: number | null;
  workflow_step: string | null;
}

/**
 * Inside the transaction that ended runs `runIds`: locks the broadcasts they are shards of and
 * answers those that are over. A broadcast's last shard is judged once: its child runs and its
 * workflow step's end are keyed by the first shard's id, so a second look makes nothing twice.
 */
export async function endedBroadcasts(
  client: pg.PoolClient,
  runIds: readonly number[],
): Promise<EndedBroadcast[]> {
  if (runIds.length === 0) return [];
  const locked = await client.query<{ id: number }>(LOCK_BROADCASTS, [runIds]);
  if (locked.rows.length === 0) return [];
  const { rows } = await client.query<EndedBroadcast>(ENDED_BROADCASTS, [locked.rows.map((r) => r.id)]);
  return rows;
}

/** Broadcast jobs among $1 (ids). */
const BROADCAST_JOBS = `
  SELECT id, namespace, group_name, handler, dispatch FROM jobs
  WHERE id = ANY($1::bigint[]) AND dispatch->'routing'->>'strategy' = 'broadcast'`;

/** Queued runs of job $1 created at $2 that are not sharded yet. */
const NEW_UNSHARDED_RUNS = `
  SELECT id FROM runs WHERE job_id = $1 AND shard_count = 0 AND status = 'queued' AND attempt = 0 AND created_at = $2
  FOR UPDATE`;

/**
 * Make runs $1 shard 0 of $2, assigned to the first of workers $3 (text[], [null] for none), and
 * insert shards 1..$2-1 as copies assigned to the others. Every shard names the first one
 * (broadcast_run_id), and a workflow step's shards belong to its step: the broadcast ends once,
 * when its last shard ends (store/postgres/broadcasts.ts).
 */
const SHARD_RUNS = `
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

/** Live workers of group $1 of namespace $3 at $2 with their load: running attempts plus queued runs assigned to them. */
export const LIVE_WORKERS = `
  SELECT w.id, w.name, w.handlers, w.labels, w.capacity, w.resources, w.load,
    (SELECT count(*) FROM runs r WHERE r.worker_id = w.id AND r.status = 'running')
    + (SELECT count(*) FROM runs r WHERE r.target_worker_id = w.id AND r.status = 'queued') AS running
  FROM workers w WHERE w.group_name = $1 AND w.namespace = $3 AND w.status = 'active' AND w.lease_expires_at > $2::bigint`;
