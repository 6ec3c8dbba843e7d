import type { JsonObject, RunError, TraceContext } from '@kairos/client';
import { dispatchFromColumn } from '../core/dispatch-policy.ts';
import { formatDuration } from '../core/duration.ts';
import type { WorkerSnapshot } from '../core/routing.ts';
import type { TaskDefinition } from '../core/task.ts';
import type { DispatchCandidate } from './dispatch-plan.ts';
import { type JsonColumn, json } from './rows.ts';
import type { ClaimedRun, GroupLimit, GroupLimits } from './store.ts';

/** Row shapes of the dispatch claim, shared by the dialects (same column names). */

export interface CandidateRow {
  id: number;
  job_id: number;
  job_name: string;
  handler: string;
  params: JsonColumn;
  target_worker_id: string | null;
  dispatch: JsonColumn;
  task: JsonColumn | null;
}

export function candidateFromRow(row: CandidateRow): DispatchCandidate {
  return {
    runId: row.id,
    jobId: row.job_id,
    jobName: row.job_name,
    handler: row.handler,
    params: json<JsonObject>(row.params),
    targetWorkerId: row.target_worker_id,
    policy: dispatchFromColumn(row.dispatch),
    task: row.task === null ? null : json<TaskDefinition>(row.task),
  };
}

export interface SnapshotRow {
  id: string;
  name: string;
  handlers: JsonColumn;
  labels: JsonColumn;
  capacity: number;
  running: number;
}

export function snapshotFromRow(row: SnapshotRow): WorkerSnapshot {
  return {
    id: row.id,
    name: row.name,
    handlers: json<string[]>(row.handlers),
    labels: json<Record<string, string>>(row.labels),
    capacity: row.capacity,
    running: Number(row.running),
    runningOfJob: 0,
  };
}

export interface ClaimRow {
  id: number;
  attempt: number;
  handler: string;
  params: JsonColumn;
  fire_time: number | null;
  timeout_ms: number;
  max_attempts: number;
  shard: number;
  shard_count: number;
  /** JSON of a TraceContext, or null (see Store RunTimingRequest.traceContext). */
  trace_context: string | null;
}

export function claimedFromRow(
  row: ClaimRow,
  candidate: Pick<DispatchCandidate, 'jobName' | 'task'>,
): ClaimedRun {
  return {
    task: candidate.task,
    ...(row.shard_count > 0 ? { shard: { index: row.shard, total: row.shard_count } } : {}),
    runId: row.id,
    attempt: row.attempt,
    jobName: candidate.jobName,
    handler: row.handler,
    params: json<JsonObject>(row.params),
    fireTime: row.fire_time,
    timeoutMs: row.timeout_ms,
    maxAttempts: row.max_attempts,
    ...(row.trace_context ? { traceContext: JSON.parse(row.trace_context) as TraceContext } : {}),
  };
}

/**
 * How many queued runs a claim looks at for `max` slots. Wider than `max` so that runs the
 * claimer may not take (assigned elsewhere by routing, over a concurrency limit, labels that do
 * not match) do not hide the ones behind them; bounded so that a claim stays one short read.
 */
export function dispatchWindow(max: number): number {
  return Math.max(64, max * 4);
}

/** The error of a run that no worker started in time. */
export function scheduleToStartError(timeoutMs: number): RunError {
  return {
    name: 'ScheduleToStartTimeout',
    message: `no worker started the run within its schedule-to-start timeout of ${formatDuration(timeoutMs)}`,
  };
}

export interface GroupLimitRow {
  max_concurrency: number | null;
  rate_limit: number | null;
  rate_per_ms: number | null;
}

export function groupLimitsFromRow(row: GroupLimitRow | undefined): GroupLimits {
  return {
    maxConcurrency: row?.max_concurrency ?? null,
    rateLimit:
      row && row.rate_limit !== null && row.rate_per_ms !== null
        ? { limit: row.rate_limit, perMs: Number(row.rate_per_ms) }
        : null,
  };
}

export interface NamespaceGroupLimitRow extends GroupLimitRow {
  namespace: string;
  group_name: string;
  updated_at: number;
}

export function groupLimitFromRow(row: NamespaceGroupLimitRow): GroupLimit {
  return {
    namespace: row.namespace,
    group: row.group_name,
    ...groupLimitsFromRow(row),
    updatedAt: Number(row.updated_at),
  };
}

export interface BucketRow {
  scope: string;
  tokens: number;
  updated_at: number;
}
