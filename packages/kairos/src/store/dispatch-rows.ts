import type { JsonObject, RunError, TraceContext } from '@kairos/client';
import { dispatchFromColumn } from '../core/dispatch-policy.ts';
import { formatDuration } from '../core/duration.ts';
import { addResources, type Resources } from '../core/resources.ts';
import type { WorkerLoad, WorkerSnapshot } from '../core/routing.ts';
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
  /** The run's own request (a workflow step's), or null: its job's applies. */
  resources: JsonColumn | null;
  available_at: number | string;
  priority: number | string;
}

export function candidateFromRow(row: CandidateRow): DispatchCandidate {
  const policy = dispatchFromColumn(row.dispatch);
  return {
    runId: row.id,
    jobId: row.job_id,
    jobName: row.job_name,
    handler: row.handler,
    params: json<JsonObject>(row.params),
    targetWorkerId: row.target_worker_id,
    policy,
    task: row.task === null ? null : json<TaskDefinition>(row.task),
    resources: row.resources === null ? policy.resources : json<Resources>(row.resources),
    availableAt: Number(row.available_at),
    priority: Number(row.priority),
  };
}

export interface SnapshotRow {
  id: string;
  name: string;
  handlers: JsonColumn;
  labels: JsonColumn;
  capacity: number;
  running: number;
  /** The worker's advertised resources (null: none; absent: not read, as for broadcast shards). */
  resources?: JsonColumn | null;
  load?: JsonColumn | null;
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
    resources: row.resources ? (json<Resources | null>(row.resources) ?? {}) : {},
    used: {},
    load: row.load ? json<WorkerLoad | null>(row.load) : null,
  };
}

/** One running run's request on a live worker ({@link addUsed}); `request` null: nothing. */
export interface UsedRow {
  worker_id: string;
  request: JsonColumn | null;
}

/** The requests of the rows ({@link UsedRow}) summed per worker. */
export function usedByWorker(rows: readonly UsedRow[]): Map<string, Resources> {
  const out = new Map<string, Resources>();
  for (const row of rows) {
    const request = row.request === null ? null : json<Resources | null>(row.request);
    if (request !== null) out.set(row.worker_id, addResources(out.get(row.worker_id) ?? {}, request));
  }
  return out;
}

/** Adds the requests of the runs live workers hold to their snapshots' `used`. */
export function addUsed(live: WorkerSnapshot[], rows: readonly UsedRow[]): void {
  const byId = new Map(live.map((w) => [w.id, w]));
  for (const row of rows) {
    const w = byId.get(row.worker_id);
    const request = row.request === null ? null : json<Resources | null>(row.request);
    if (!w || request === null) continue;
    w.used = addResources(w.used ?? {}, request);
  }
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
  /** The run's own task (a workflow task step's), when the claim read it; null: its job's applies. */
  run_task?: JsonColumn | null;
}

export function claimedFromRow(
  row: ClaimRow,
  candidate: Pick<DispatchCandidate, 'jobName' | 'task'>,
): ClaimedRun {
  return {
    task: row.run_task == null ? candidate.task : json<TaskDefinition>(row.run_task),
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
