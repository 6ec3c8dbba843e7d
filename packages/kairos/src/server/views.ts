import type { Assignment, Attempt, JsonObject, NodeInfo, Run, RunSummary, WorkerInfo } from '@kairos/client';
import { type Resources, resourceSpecOf } from '../core/resources.ts';
import { maskSecrets } from '../core/secret-params.ts';
import { taskSpecOf } from '../core/task.ts';
import type { AttemptRecord, ClaimedRun, NodeRecord, RunRecord, WorkerRecord } from '../store/store.ts';

const iso = (ms: number): string => new Date(ms).toISOString();
const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

export function runView(run: RunRecord, attempts?: AttemptRecord[]): Run {
  const view: Run = {
    id: run.id,
    jobId: run.jobId,
    jobName: run.jobName,
    group: run.group,
    handler: run.handler,
    cause: run.cause,
    fireTime: isoOrNull(run.fireTime),
    // Secret values never leave the node in an answer: each is "***".
    params: maskSecrets(run.params),
    priority: run.priority,
    status: run.status,
    attempt: run.attempt,
    maxAttempts: run.maxAttempts,
    timeout: run.timeoutMs,
    workerId: run.workerId,
    createdAt: iso(run.createdAt),
    availableAt: iso(run.availableAt),
    startedAt: isoOrNull(run.startedAt),
    finishedAt: isoOrNull(run.finishedAt),
    result: run.result,
    error: run.error,
  };
  if (run.shard) view.shard = run.shard;
  if (run.assignedWorkerId) view.assignedWorkerId = run.assignedWorkerId;
  if (run.resources) view.resources = resourceSpecOf(run.resources);
  if (attempts) view.attempts = attempts.map(attemptView);
  return view;
}

/** A run as lists show it: no params or result (see RunSummarySchema). */
export function runSummaryView(run: RunRecord): RunSummary {
  const { params: _params, result: _result, ...summary } = runView(run);
  return summary;
}

function attemptView(attempt: AttemptRecord): Attempt {
  const view: Attempt = {
    attempt: attempt.attempt,
    workerId: attempt.workerId,
    status: attempt.status,
    startedAt: iso(attempt.startedAt),
    finishedAt: isoOrNull(attempt.finishedAt),
    error: attempt.error,
  };
  const late = attempt.lateReport;
  if (late) view.lateReport = { outcome: late.outcome, reportedAt: iso(late.reportedAt), error: late.error };
  return view;
}

/** A worker as the fleet list shows it; `inUse`: what its running runs request (the store's `resourcesInUse`). */
export function workerView(worker: WorkerRecord, inUse?: Resources): WorkerInfo {
  const view: WorkerInfo = {
    id: worker.id,
    name: worker.name,
    group: worker.group,
    handlers: worker.handlers,
    capacity: worker.capacity,
    labels: worker.labels,
    version: worker.version,
    host: worker.host,
    status: worker.status,
    running: worker.running,
    registeredAt: iso(worker.registeredAt),
    lastHeartbeatAt: iso(worker.lastHeartbeatAt),
    resources: worker.resources ? resourceSpecOf(worker.resources) : null,
    load: worker.load ?? null,
  };
  if (inUse) view.resourcesInUse = resourceSpecOf(inUse);
  return view;
}

/**
 * A claimed run as the worker gets it; `now` turns a later start instant into a delay
 * (clock-independent). `params` are the run's params with their secrets decrypted: the worker that
 * claims a run is the one receiver of secret values.
 */
export function assignmentView(run: ClaimedRun, params: JsonObject, now: number): Assignment {
  return {
    runId: run.runId,
    attempt: run.attempt,
    jobName: run.jobName,
    handler: run.handler,
    params,
    fireTime: isoOrNull(run.fireTime),
    timeout: run.timeoutMs,
    maxAttempts: run.maxAttempts,
    ...(run.task ? { task: taskSpecOf(run.task) } : {}),
    ...(run.shard ? { shard: run.shard } : {}),
    ...(run.startAt !== undefined && run.startAt > now ? { startInMs: run.startAt - now } : {}),
    ...(run.traceContext ? run.traceContext : {}),
  };
}

export function nodeView(node: NodeRecord, now: number): NodeInfo {
  const alive = node.expiresAt > now;
  return {
    id: node.id,
    instance: node.instance,
    address: node.address,
    version: node.version,
    status: alive ? 'alive' : 'gone',
    // A gone node's leases ran out with its row: it owns nothing, whatever it last reported.
    partitions: alive ? node.partitions : [],
    clockSkewMs: node.clockSkewMs,
    startedAt: iso(node.startedAt),
    lastHeartbeatAt: iso(node.heartbeatAt),
  };
}
