import type Database from 'better-sqlite3';
import { HELD_WHILE_PAUSED_AT } from '../../core/overlap.ts';
import type { StepRunToQueue } from '../workflows.ts';
import { shardNewRuns } from './broadcasts.ts';

export type Sql = (text: string) => Database.Statement<unknown[], unknown>;

/**
 * Inserts step runs (a step's, or a map step's items'), and shards those of broadcast jobs: each
 * becomes the first shard of its broadcast (store/sqlite/broadcasts.ts). Answers the inserted ones
 * by idempotency key, with their groups; a run whose key is held already is not inserted.
 */
export function insertStepRuns(
  sql: Sql,
  instanceId: number,
  namespace: string,
  runs: readonly StepRunToQueue[],
  now: number,
  /** When the runs become available (a scheduled start's jitter); default now. */
  availableAt = now,
): Map<string, { id: number; group: string }> {
  const insert = sql(
    `INSERT INTO runs (job_id, group_name, handler, cause, idempotency_key, params, priority, status, max_attempts,
       retry, timeout_ms, created_at, available_at, namespace, workflow_instance_id, workflow_step, resources, task)
     VALUES (?, ?, ?, 'workflow', ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT DO NOTHING RETURNING id, group_name`,
  );
  const inserted = new Map<string, { id: number; group: string }>();
  for (const run of runs) {
    const row = insert.get(
      run.jobId,
      run.group,
      run.handler,
      run.idempotencyKey,
      JSON.stringify(run.params),
      run.priority,
      run.maxAttempts,
      run.retry,
      run.timeoutMs,
      now,
      run.held ? HELD_WHILE_PAUSED_AT : availableAt,
      namespace,
      instanceId,
      run.step,
      run.resources,
      run.task,
    ) as { id: number; group_name: string } | undefined;
    // No row: the key holds the step's (item's) run already, never a second one.
    if (row) inserted.set(run.idempotencyKey, { id: row.id, group: row.group_name });
  }
  // A `job` step of a broadcast job runs as a broadcast: its run becomes the first shard.
  if (inserted.size > 0)
    shardNewRuns(
      sql,
      runs.map((r) => r.jobId),
      now,
    );
  return inserted;
}
