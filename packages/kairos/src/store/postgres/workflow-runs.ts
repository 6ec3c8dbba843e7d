import type pg from 'pg';
import { HELD_WHILE_PAUSED_AT } from '../../core/overlap.ts';
import type { StepRunToQueue } from '../workflows.ts';
import { shardNewRuns } from './broadcasts.ts';

/**
 * Inserts step runs in one statement (ON CONFLICT: a run's key holds its step's, or item's, run
 * already, never a second one), and shards those of broadcast jobs: each becomes the first shard
 * of its broadcast (store/postgres/broadcasts.ts). Answers the inserted runs by idempotency key,
 * with their groups.
 */
export async function insertStepRuns(
  client: pg.PoolClient,
  instanceId: number,
  namespace: string,
  runs: readonly StepRunToQueue[],
  now: number,
  /** When the runs become available (a scheduled start's jitter); default now. */
  availableAt = now,
): Promise<Map<string, { id: number; group: string }>> {
  const inserted = new Map<string, { id: number; group: string }>();
  if (runs.length === 0) return inserted;
  const { rows } = await client.query<{ id: number; group_name: string; idempotency_key: string }>(
    `INSERT INTO runs (job_id, group_name, handler, cause, idempotency_key, params, priority, status, max_attempts,
       retry, timeout_ms, created_at, available_at, namespace, workflow_instance_id, workflow_step, resources, task)
     SELECT x.job_id, x.group_name, x.handler, 'workflow', x.idempotency_key, x.params, x.priority, 'queued',
       x.max_attempts, x.retry, x.timeout_ms, $2::bigint, CASE WHEN x.held THEN $5::bigint ELSE $6::bigint END, $3, $4, x.step, x.resources,
       x.task
     FROM jsonb_to_recordset($1::jsonb) AS x(job_id bigint, group_name text, handler text, idempotency_key text,
       params jsonb, priority int, max_attempts int, retry jsonb, timeout_ms bigint, step text, held boolean, resources jsonb,
       task jsonb)
     ON CONFLICT DO NOTHING RETURNING id, group_name, idempotency_key`,
    [
      JSON.stringify(
        runs.map((r) => ({
          job_id: r.jobId,
          group_name: r.group,
          handler: r.handler,
          idempotency_key: r.idempotencyKey,
          params: r.params,
          priority: r.priority,
          max_attempts: r.maxAttempts,
          retry: JSON.parse(r.retry),
          timeout_ms: r.timeoutMs,
          step: r.step,
          held: r.held,
          resources: r.resources === null ? null : JSON.parse(r.resources),
          task: r.task === null ? null : JSON.parse(r.task),
        })),
      ),
      now,
      namespace,
      instanceId,
      HELD_WHILE_PAUSED_AT,
      availableAt,
    ],
  );
  for (const row of rows) inserted.set(row.idempotency_key, { id: row.id, group: row.group_name });
  // A `job` step of a broadcast job runs as a broadcast: its run becomes the first shard.
  if (inserted.size > 0)
    await shardNewRuns(
      client,
      runs.map((r) => r.jobId),
      now,
    );
  return inserted;
}
