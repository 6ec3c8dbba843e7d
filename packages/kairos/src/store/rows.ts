import type {
  AttemptRef,
  AttemptStatus,
  Json,
  JsonObject,
  RetryPolicy,
  RunCause,
  RunError,
  RunStatus,
  TraceContext,
  WorkerStatus,
} from '@kairos/client';
import { dispatchFromColumn } from '../core/dispatch-policy.ts';
import type { JobDefinition, JobRecord } from '../core/job.ts';
import type { Resources } from '../core/resources.ts';
import { retentionFromColumn } from '../core/retention.ts';
import type { WorkerLoad } from '../core/routing.ts';
import { DEFAULT_SCHEDULE, type SchedulePolicy } from '../core/schedule-policy.ts';
import type { TaskDefinition } from '../core/task.ts';
import type { Trigger } from '../core/trigger.ts';
import type {
  AttemptRecord,
  DecisionInput,
  DueJob,
  HeartbeatAnswer,
  LateReport,
  Lease,
  NodeRecord,
  RunRecord,
  WorkerRecord,
} from './store.ts';

/** Row shapes shared by the dialects (same column names); JSON columns arrive as text. */
export interface JobRow {
  id: number;
  namespace: string;
  name: string;
  description: string;
  group_name: string;
  handler: string;
  params: JsonColumn;
  trigger: JsonColumn;
  retry: JsonColumn;
  timeout_ms: number;
  priority: number;
  paused: number | boolean;
  next_fire_at: number | null;
  created_at: number;
  updated_at: number;
  schedule: JsonColumn;
  runs_fired: number;
  dispatch: JsonColumn;
  task: JsonColumn | null;
  version: number;
  retention: JsonColumn;
  owner: string | null;
  revision: number | string | null;
  /** Null on rows written before the secrets migration's default applied (none: it has a default). */
  secret_params: JsonColumn | null;
}

export interface RunRow {
  id: number;
  job_id: number;
  job_name: string;
  namespace: string;
  group_name: string;
  handler: string;
  cause: string;
  fire_time: number | null;
  params: JsonColumn;
  priority: number;
  status: string;
  attempt: number;
  max_attempts: number;
  timeout_ms: number;
  worker_id: string | null;
  created_at: number;
  available_at: number;
  started_at: number | null;
  finished_at: number | null;
  result: JsonColumn | null;
  error: JsonColumn | null;
  shard: number;
  shard_count: number;
  target_worker_id: string | null;
  /** What the run requests: its own, else its job's (JSON; null or `null`: nothing). */
  resources?: JsonColumn | null;
}

export interface AttemptRow {
  run_id: number;
  attempt: number;
  worker_id: string;
  status: string;
  started_at: number;
  finished_at: number | null;
  error: JsonColumn | null;
  late_outcome: string | null;
  late_reported_at: number | null;
  late_error: JsonColumn | null;
}

export interface WorkerRow {
  id: string;
  namespace: string;
  name: string;
  group_name: string;
  handlers: JsonColumn;
  capacity: number;
  labels: JsonColumn;
  version: string;
  host: string;
  status: string;
  running: number;
  registered_at: number;
  last_heartbeat_at: number;
  lease_expires_at: number;
  resources?: JsonColumn | null;
  load?: JsonColumn | null;
}

/** A JSON column as text: every dialect hands JSON over unparsed (PostgreSQL's jsonb parser is off). */
export type JsonColumn = string;

export function json<T>(value: JsonColumn): T {
  return JSON.parse(value) as T;
}

function jsonOrNull<T>(value: JsonColumn | null): T | null {
  return value === null ? null : json<T>(value);
}

export interface NodeRow {
  /** The instance (see migration node_instances: PostgreSQL 0014, SQLite 0013); the node id too for rows written before it. */
  id: string;
  name: string;
  address: string;
  version: string;
  started_at: number;
  heartbeat_at: number;
  expires_at: number;
  partitions: JsonColumn;
  clock_skew_ms: number;
}

export function nodeFromRow(row: NodeRow): NodeRecord {
  return {
    instance: row.id,
    id: row.name || row.id,
    address: row.address,
    version: row.version,
    startedAt: row.started_at,
    heartbeatAt: row.heartbeat_at,
    expiresAt: row.expires_at,
    partitions: json<number[]>(row.partitions),
    clockSkewMs: row.clock_skew_ms,
  };
}

/** The run columns every run query selects, with the job's name. */
export const RUN_COLUMNS = `r.id, r.job_id, j.name AS job_name, r.namespace, r.group_name, r.handler, r.cause, r.fire_time,
  r.params, r.priority, r.status, r.attempt, r.max_attempts, r.timeout_ms, r.worker_id, r.created_at,
  r.available_at, r.started_at, r.finished_at, r.result, r.error,
  r.shard, r.shard_count, r.target_worker_id, coalesce(r.resources, j.dispatch -> 'resources') AS resources`;

/** RUN_COLUMNS without the params and result, as `'{}'` and NULL (text, like the JSON columns). */
export const RUN_SUMMARY_COLUMNS = RUN_COLUMNS.replace('r.params', `'{}' AS params`).replace(
  'r.result',
  'NULL AS result',
);

export function jobFromRow(row: JobRow): JobRecord {
  return {
    id: row.id,
    namespace: row.namespace,
    name: row.name,
    description: row.description,
    group: row.group_name,
    handler: row.handler,
    params: json<JsonObject>(row.params),
    trigger: json<Trigger>(row.trigger),
    retry: json<RetryPolicy>(row.retry),
    timeoutMs: row.timeout_ms,
    priority: row.priority,
    paused: Boolean(row.paused),
    // Jobs from before the schedules migration hold '{}': every default.
    schedule: { ...DEFAULT_SCHEDULE, ...json<Partial<SchedulePolicy>>(row.schedule) },
    runsFired: row.runs_fired,
    version: row.version,
    nextFireAt: row.next_fire_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    dispatch: dispatchFromColumn(row.dispatch),
    task: jsonOrNull<TaskDefinition>(row.task),
    retention: retentionFromColumn(row.retention),
    owner: row.owner ?? null,
    revision: row.revision === null || row.revision === undefined ? null : Number(row.revision),
    secretParams:
      row.secret_params === null || row.secret_params === undefined ? [] : json<string[]>(row.secret_params),
  };
}

/** The job columns firing reads (Store.dueJobs): a storm reads 100,000 rows, 3× faster than `*`. */
export const DUE_JOB_COLUMNS = 'id, name, trigger, schedule, runs_fired, next_fire_at, workflow_id';

export type DueJobRow = Pick<
  JobRow,
  'id' | 'name' | 'trigger' | 'schedule' | 'runs_fired' | 'next_fire_at'
> & {
  workflow_id?: number | null;
};

/** Due jobs from their rows; each distinct trigger and schedule text is parsed once (see DueJob). */
export function dueJobsFromRows(rows: readonly DueJobRow[]): DueJob[] {
  const triggers = new Map<string, Trigger>();
  const schedules = new Map<string, SchedulePolicy>();
  return rows.map((row) => {
    let trigger = triggers.get(row.trigger);
    if (!trigger) {
      trigger = json<Trigger>(row.trigger);
      triggers.set(row.trigger, trigger);
    }
    let schedule = schedules.get(row.schedule);
    if (!schedule) {
      schedule = { ...DEFAULT_SCHEDULE, ...json<Partial<SchedulePolicy>>(row.schedule) };
      schedules.set(row.schedule, schedule);
    }
    return {
      id: row.id,
      name: row.name,
      trigger,
      schedule,
      runsFired: row.runs_fired,
      nextFireAt: row.next_fire_at,
      workflowId: row.workflow_id ?? null,
    };
  });
}

export function runFromRow(row: RunRow): RunRecord {
  return {
    id: row.id,
    jobId: row.job_id,
    jobName: row.job_name,
    namespace: row.namespace,
    group: row.group_name,
    handler: row.handler,
    cause: row.cause as RunCause,
    fireTime: row.fire_time,
    params: json<JsonObject>(row.params),
    priority: row.priority,
    status: row.status as RunStatus,
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    timeoutMs: row.timeout_ms,
    workerId: row.worker_id,
    createdAt: row.created_at,
    availableAt: row.available_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    result: jsonOrNull<Json>(row.result),
    error: jsonOrNull<RunError>(row.error),
    shard: row.shard_count > 0 ? { index: row.shard, total: row.shard_count } : null,
    assignedWorkerId: row.target_worker_id,
    resources: row.resources ? json<Resources | null>(row.resources) : null,
  };
}

export function attemptFromRow(row: AttemptRow): AttemptRecord {
  return {
    runId: row.run_id,
    attempt: row.attempt,
    workerId: row.worker_id,
    status: row.status as AttemptStatus,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    error: jsonOrNull<RunError>(row.error),
    lateReport:
      row.late_outcome === null
        ? null
        : {
            outcome: row.late_outcome as LateReport['outcome'],
            reportedAt: Number(row.late_reported_at),
            error: jsonOrNull<RunError>(row.late_error),
          },
  };
}

/**
 * A heartbeat's answer from the worker's running attempts in the store, `[run id, attempt, claim
 * seq]` each: those it listed that are not among them (to cancel), and, with `polled`, those claimed
 * by its settled polls that it did not list (to give back).
 */
export function heartbeatAnswer(
  current: ReadonlyArray<readonly [number, number, number | null]>,
  running: readonly AttemptRef[],
  polled: number | null,
): HeartbeatAnswer {
  const key = (runId: number, attempt: number) => `${runId}:${attempt}`;
  const held = new Set(current.map(([runId, attempt]) => key(runId, attempt)));
  const listed = new Set(running.map((ref) => key(ref.runId, ref.attempt)));
  const cancel = running.filter((ref) => !held.has(key(ref.runId, ref.attempt)));
  const unheld =
    polled === null
      ? []
      : current
          .filter(
            ([runId, attempt, seq]) =>
              seq !== null && Number(seq) <= polled && !listed.has(key(runId, attempt)),
          )
          .map(([runId, attempt]) => ({ runId: Number(runId), attempt }));
  return { cancel, unheld };
}

export function workerFromRow(row: WorkerRow): WorkerRecord {
  return {
    id: row.id,
    namespace: row.namespace,
    name: row.name,
    group: row.group_name,
    handlers: json<string[]>(row.handlers),
    capacity: row.capacity,
    labels: json<Record<string, string>>(row.labels),
    version: row.version,
    host: row.host,
    status: row.status as WorkerStatus,
    running: row.running,
    registeredAt: row.registered_at,
    lastHeartbeatAt: row.last_heartbeat_at,
    leaseExpiresAt: row.lease_expires_at,
    resources: row.resources ? json<Resources>(row.resources) : null,
    load: row.load ? json<WorkerLoad>(row.load) : null,
  };
}

/** The delay of a fixed-delay trigger, kept in its own column so that the store can reschedule. */
export function delayOf(trigger: Trigger): number | null {
  return trigger.kind === 'delay' ? trigger.delay : null;
}

export function toJson(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

/** The workers-at-scale columns of a job: dispatch policy, its schedule-to-start timeout, task. */
export function dispatchValues(job: JobDefinition): [string, number | null, string | null] {
  return [JSON.stringify(job.dispatch), job.dispatch.scheduleToStartMs, toJson(job.task)];
}

/** A running run with what deciding its attempt's end needs. */
export interface DecisionRow {
  id: number;
  attempt: number;
  job_id: number;
  group_name: string;
  cause: string;
  retry: string;
  worker_id: string;
}

export function decisionFromRow(row: DecisionRow): DecisionInput {
  return {
    runId: row.id,
    attempt: row.attempt,
    jobId: row.job_id,
    group: row.group_name,
    cause: row.cause as DecisionInput['cause'],
    retry: JSON.parse(row.retry),
    workerId: row.worker_id,
  };
}

export interface LeaseRow {
  name: string;
  owner: string;
  epoch: number;
  expires_at: number;
}

export function leaseFromRow(row: LeaseRow): Lease {
  return { name: row.name, owner: row.owner, epoch: row.epoch, expiresAt: row.expires_at };
}

/** The `trace_context` column of a run: the JSON of its trace context, or null. */
export function traceColumn(traceContext: TraceContext | null | undefined): string | null {
  return traceContext ? JSON.stringify(traceContext) : null;
}
