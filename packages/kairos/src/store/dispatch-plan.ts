import type { JsonObject } from '@kairos/client';
import { type DispatchPolicy, isPlainDispatch } from '../core/dispatch-policy.ts';
import { type Bucket, fullBucket, type RateLimit, take as takeToken } from '../core/rate-limit.ts';
import {
  EMPTY_ROUTING_STATE,
  eligible,
  type RoutingState,
  route,
  type WorkerSnapshot,
} from '../core/routing.ts';
import type { TaskDefinition } from '../core/task.ts';
import type { GroupLimits } from './store.ts';

/**
 * The decision part of a dispatch claim, shared by every dialect: each dialect reads these inputs
 * inside its claim transaction (with the rows it needs locked), calls {@link planDispatch}, and
 * writes the plan in the same transaction. Pure; no I/O.
 */

/** A queued run the claiming worker could take, in claim order (priority, then age). */
export interface DispatchCandidate {
  runId: number;
  jobId: number;
  jobName: string;
  handler: string;
  params: JsonObject;
  targetWorkerId: string | null;
  policy: DispatchPolicy;
  task: TaskDefinition | null;
}

export interface DispatchInput {
  /** The claiming worker (active). */
  workerId: string;
  max: number;
  candidates: readonly DispatchCandidate[];
  /**
   * The live workers of the group (active, lease not expired), the claimer included; `running`
   * counts running attempts plus queued runs assigned to the worker, `runningOfJob` is ignored.
   */
  live: readonly WorkerSnapshot[];
  /** `${workerId}:${jobId}` → running plus assigned runs of that job on that worker. */
  loadOfJob: ReadonlyMap<string, number>;
  /** jobId → running runs of the job, cluster-wide. */
  runningOfJob: ReadonlyMap<number, number>;
  /** Running runs of the group in its namespace, when the group has a limit. */
  groupRunning: number;
  group: GroupOfClaim;
  /** Token buckets of the rate limits in play ({@link jobBucketScope}, {@link groupBucketScope}); missing ones are full. */
  buckets: ReadonlyMap<string, Bucket>;
  now: number;
  states: ReadonlyMap<number, RoutingState>;
  /** A number in [0, 1) that seeds `random` routing. */
  random: number;
}

export interface DispatchPlan {
  /** Runs to claim for the worker, in order. */
  claim: number[];
  /** New assignments of queued runs (null: unassigned, no worker can take it now). */
  assign: Array<{ runId: number; workerId: string | null }>;
  /** Routing states that changed. */
  states: Map<number, RoutingState>;
  /** Token buckets that changed. */
  buckets: Map<string, Bucket>;
}

/** The group a claim takes from: the claiming worker's, in its namespace, with that group's limits there. */
export interface GroupOfClaim extends GroupLimits {
  namespace: string;
  name: string;
}

/** The token bucket of a job's rate limit. */
export function jobBucketScope(jobId: number): string {
  return `job:${jobId}`;
}

/**
 * The token bucket of a group's rate limit in a namespace: `group:<namespace>/<group>`. A group name
 * has no `/`, so no scope `group:<group>` of the previous release (one bucket per group name, for
 * every namespace) is ever read as one of these.
 */
export function groupBucketScope(namespace: string, group: string): string {
  return `group:${namespace}/${group}`;
}

/** Whether the plan needs the live-worker snapshot and locks, or is a plain "oldest first" claim. */
export function needsSnapshot(candidates: readonly DispatchCandidate[], group: GroupLimits): boolean {
  return (
    group.maxConcurrency !== null ||
    group.rateLimit !== null ||
    candidates.some((c) => !isPlainDispatch(c.policy))
  );
}

/** The bucket scopes a claim reads: rate-limited jobs among the candidates, and the group's in its namespace. */
export function bucketScopes(candidates: readonly DispatchCandidate[], group: GroupOfClaim): string[] {
  const scopes = new Set<string>();
  for (const c of candidates) if (c.policy.rateLimit) scopes.add(jobBucketScope(c.jobId));
  if (group.rateLimit) scopes.add(groupBucketScope(group.namespace, group.name));
  return [...scopes];
}

/** The job ids whose routing row a claim must lock: routed jobs and jobs with a concurrency limit. */
export function lockedJobs(candidates: readonly DispatchCandidate[]): number[] {
  const ids = new Set<number>();
  for (const c of candidates) if (!isPlainDispatch(c.policy)) ids.add(c.jobId);
  return [...ids].sort((a, b) => a - b);
}

export function planDispatch(input: DispatchInput): DispatchPlan {
  const plan: DispatchPlan = { claim: [], assign: [], states: new Map(), buckets: new Map() };
  const me = input.live.find((w) => w.id === input.workerId);
  const live = new Map(input.live.map((w) => [w.id, { ...w }]));
  const loadOfJob = new Map(input.loadOfJob);
  const runningOfJob = new Map(input.runningOfJob);
  const next = seeded(input.random);
  let groupRunning = input.groupRunning;

  const load = (workerId: string, jobId: number, delta: number) => {
    const worker = live.get(workerId);
    if (worker) worker.running += delta;
    const key = `${workerId}:${jobId}`;
    loadOfJob.set(key, (loadOfJob.get(key) ?? 0) + delta);
  };
  const bucket = (scope: string, rate: RateLimit) =>
    plan.buckets.get(scope) ?? input.buckets.get(scope) ?? fullBucket(rate, input.now);
  /** Concurrency limits hold and every rate limit has a token; takes the tokens when it does. */
  const underLimits = (c: DispatchCandidate) => {
    if (input.group.maxConcurrency !== null && groupRunning >= input.group.maxConcurrency) return false;
    if (c.policy.maxConcurrency !== null && (runningOfJob.get(c.jobId) ?? 0) >= c.policy.maxConcurrency)
      return false;
    const taken: Array<[string, Bucket]> = [];
    for (const [scope, rate] of [
      [jobBucketScope(c.jobId), c.policy.rateLimit],
      [groupBucketScope(input.group.namespace, input.group.name), input.group.rateLimit],
    ] as const) {
      if (!rate) continue;
      const next = takeToken(bucket(scope, rate), rate, input.now);
      if (!next) return false;
      taken.push([scope, next]);
    }
    for (const [scope, next] of taken) plan.buckets.set(scope, next);
    return true;
  };
  const take = (c: DispatchCandidate) => {
    plan.claim.push(c.runId);
    groupRunning++;
    runningOfJob.set(c.jobId, (runningOfJob.get(c.jobId) ?? 0) + 1);
  };

  for (const c of input.candidates) {
    if (plan.claim.length >= input.max) break;
    const { routing } = c.policy;
    if (routing.strategy === 'broadcast') {
      // A shard belongs to its worker while that one lives; then to any eligible worker.
      const owner = c.targetWorkerId === null ? undefined : live.get(c.targetWorkerId);
      if (owner && eligible(owner, c.handler, routing.selector)) {
        if (owner.id === input.workerId && underLimits(c)) take(c);
        continue;
      }
      if (me && eligible(me, c.handler, routing.selector) && underLimits(c)) {
        take(c);
        load(me.id, c.jobId, 1);
      }
      continue;
    }
    if (routing.strategy === 'any') {
      // Unrouted: whoever asks first, if the selector lets it.
      if (me && eligible(me, c.handler, routing.selector) && underLimits(c)) {
        take(c);
        load(me.id, c.jobId, 1);
      }
      continue;
    }
    let target = c.targetWorkerId;
    const current = target === null ? undefined : live.get(target);
    if (!current || !eligible(current, c.handler, routing.selector)) {
      // Unassigned, or its worker died, drains or no longer fits: route it (again).
      const workers = [...live.values()].map((w) => ({
        ...w,
        runningOfJob: loadOfJob.get(`${w.id}:${c.jobId}`) ?? 0,
      }));
      const decision = route(workers, {
        routing,
        handler: c.handler,
        jobName: c.jobName,
        params: c.params,
        state: plan.states.get(c.jobId) ?? input.states.get(c.jobId) ?? EMPTY_ROUTING_STATE,
        random: next(),
      });
      if (decision.workerId !== null) plan.states.set(c.jobId, decision.state);
      if (decision.workerId !== target) plan.assign.push({ runId: c.runId, workerId: decision.workerId });
      target = decision.workerId;
      if (target !== null) load(target, c.jobId, 1);
    }
    if (target === input.workerId && underLimits(c)) {
      take(c);
      // The assignment becomes a running attempt: the worker's load is unchanged.
    }
  }
  return plan;
}

/** mulberry32: a small deterministic generator, so that one random number seeds a whole claim. */
function seeded(seed: number): () => number {
  let a = Math.floor(seed * 2 ** 32) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
