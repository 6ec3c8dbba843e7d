// Broadcast (sharded) runs on SQLite: a fire of a broadcast job becomes one run per live worker,
// and the broadcast ends once, when its last shard ends (docs/schedules.md#dependencies,
// docs/workflows.md). SQLite has one writer: the transaction that ends the last shard is the only
// one that sees every shard ended.

import type Database from 'better-sqlite3';
import { dispatchFromColumn } from '../../core/dispatch-policy.ts';
import { shardTargets } from '../../core/routing.ts';
import { type SnapshotRow, snapshotFromRow } from '../dispatch-rows.ts';
import * as hot from './hot-statements.ts';

type Sql = (text: string) => Database.Statement<unknown[], unknown>;

/**
 * Sharding broadcast, inside the transaction that created runs at `now`: each new queued run of
 * a broadcast job becomes shard 0 of N, N the eligible live workers of its group, and N - 1
 * copies are the other shards, each assigned to its worker. No live worker: one shard, for
 * whichever worker comes first. Every shard names the first (broadcast_run_id), and a workflow
 * step's shards belong to its step.
 */
export function shardNewRuns(sql: Sql, jobIds: readonly number[], now: number): void {
  // One look at the batch's jobs finds the broadcast ones (most fires have none).
  const broadcast = sql(hot.BROADCAST_JOBS).all(JSON.stringify([...new Set(jobIds)])) as Array<{
    id: number;
    namespace: string;
    group_name: string;
    handler: string;
    dispatch: string;
  }>;
  for (const job of broadcast) {
    const { routing } = dispatchFromColumn(job.dispatch);
    if (routing.strategy !== 'broadcast') continue;
    const runs = sql(
      `SELECT id FROM runs WHERE job_id = ? AND shard_count = 0 AND status = 'queued' AND attempt = 0 AND created_at = ?`,
    ).all(job.id, now) as Array<{ id: number }>;
    if (runs.length === 0) continue;
    const live = (
      sql(
        `SELECT w.id, w.name, w.handlers, w.labels, w.capacity, 0 AS running
         FROM workers w WHERE w.group_name = ? AND w.namespace = ? AND w.status = 'active' AND w.lease_expires_at > ?`,
      ).all(job.group_name, job.namespace, now) as SnapshotRow[]
    ).map(snapshotFromRow);
    const targets = shardTargets(live, job.handler, routing.selector);
    const total = Math.max(1, targets.length);
    const first = sql(
      'UPDATE runs SET shard = 0, shard_count = ?, target_worker_id = ?, broadcast_run_id = id WHERE id = ?',
    );
    const copy = sql(
      `INSERT INTO runs (job_id, group_name, handler, cause, fire_time, params, priority, status, max_attempts, retry,
         timeout_ms, created_at, available_at, shard, shard_count, target_worker_id, trace_context, namespace,
         broadcast_run_id, workflow_instance_id, workflow_step)
       SELECT job_id, group_name, handler, cause, fire_time, params, priority, status, max_attempts, retry,
         timeout_ms, created_at, available_at, ?, ?, ?, trace_context, namespace, id, workflow_instance_id, workflow_step
       FROM runs WHERE id = ?`,
    );
    for (const run of runs) {
      first.run(total, targets[0] ?? null, run.id);
      for (let shard = 1; shard < total; shard++) copy.run(shard, total, targets[shard]!, run.id);
    }
  }
}

/**
 * The broadcasts that ended runs @runs are shards of and whose every shard has ended, each as one
 * ended run: the first shard's id, its job, trace and workflow step, the overall status
 * (`succeeded` when every shard succeeded, `failed` when one failed or timed out, else `cancelled`)
 * and the shards' results in shard order (null for a shard that did not succeed), JSON text.
 */
export const ENDED_BROADCASTS = `
  SELECT b.id, min(r.job_id) AS job_id,
    CASE WHEN sum(r.status <> 'succeeded') = 0 THEN 'succeeded'
      WHEN sum(r.status IN ('failed', 'timed_out')) > 0 THEN 'failed' ELSE 'cancelled' END AS status,
    (SELECT json_group_array(CASE WHEN x.status = 'succeeded' THEN json(coalesce(x.result, 'null')) END)
     FROM (SELECT status, result FROM runs WHERE broadcast_run_id = b.id ORDER BY shard) x) AS result,
    (SELECT trace_context FROM runs WHERE id = b.id) AS trace_context,
    min(r.workflow_instance_id) AS workflow_instance_id, min(r.workflow_step) AS workflow_step
  FROM (SELECT DISTINCT broadcast_run_id AS id FROM runs
        WHERE id IN (SELECT value FROM json_each(@runs)) AND broadcast_run_id IS NOT NULL
          AND status IN ('succeeded', 'failed', 'timed_out', 'cancelled')) b
  JOIN runs r ON r.broadcast_run_id = b.id
  GROUP BY b.id
  HAVING sum(r.status IN ('queued', 'running')) = 0`;

/** A broadcast whose last shard ended in this transaction, as one ended run. */
export interface EndedBroadcast {
  id: number;
  job_id: number;
  status: string;
  result: string;
  workflow_instance_id: number | null;
  workflow_step: string | null;
}

/** Of the broadcasts that ended runs `runIds` are shards of, those that are over. */
export function endedBroadcasts(sql: Sql, runIds: readonly number[]): EndedBroadcast[] {
  if (runIds.length === 0) return [];
  return sql(ENDED_BROADCASTS).all({ runs: JSON.stringify(runIds) }) as EndedBroadcast[];
}
