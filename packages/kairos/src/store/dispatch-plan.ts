import type { JsonObject } from '@kairos/client';
import { type DispatchPolicy, isPlainDispatch } from '../core/dispatch-policy.ts';
import { type Bucket, fullBucket, type RateLimit, take as takeToken } from '../core/rate-limit.ts';
import { addResources, distance, fits, type Resources } from '../core/resources.ts';
import {
  compare,
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
  /** What the run requests: its own (a workflow step's) or its job's; null: nothing but a slot. */
  resources: Resources | null;
  /** When it became available (it has waited since). */
  availableAt: number;
  /** The run's priority: higher first, then older ({@link claimOrder}). */
  priority: number;
}

/** Claim order: priority descending, then available earlier, then run id (the candidate SQL's ORDER BY). */
export function claimOrder(a: DispatchCandidate, b: DispatchCandidate): number {
  return b.priority - a.priority || a.availableAt - b.availableAt || a.runId - b.runId;
}

/**
 * How long the oldest run that fits no worker's free capacity (but some worker's whole capacity)
 * waits before one worker reserves for it: see {@link planDispatch}.
 */
export const DEFAULT_RESERVE_AFTER_MS = 30_000;

export interface DispatchInput {
  /** The claiming worker (active). */
  workerId: string;
  max: number;
  candidates: readonly DispatchCandidate[];
  /**
   * Queued runs of the group that request resources and waited `reserveAfterMs`, read without
   * locks (PostgreSQL: the candidates skip rows another claim holds, which may be the very run a
   * reservation is for). Each one that is not a candidate reserves at its place in claim order
   * ({@link claimOrder}): before every candidate it comes before, after those that come before it.
   * Never claimed here.
   */
  waiting?: readonly DispatchCandidate[];
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
  /** Resource reservations start after a run waited this long (default {@link DEFAULT_RESERVE_AFTER_MS}). */
  reserveAfterMs?: number;
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
    candidates.some((c) => !isPlainDispatch(c.policy) || c.resources !== null)
  );
}

/** Whether any candidate requests resources: the claim then locks the claiming worker's row. */
export function requestsResources(candidates: readonly DispatchCandidate[]): boolean {
  return candidates.some((c) => c.resources !== null);
}

/** The bucket scopes a claim reads: rate-limited jobs among the candidates, and the group's in its namespace. */
export function bucketScopes(candidates: readonly DispatchCandidate[], group: GroupOfClaim): string[] {
  const scopes = new Set<string>();
  for (const c of candidates) if (c.policy.rateLimit) scopes.add(jobBucketScope(c.jobId));
  if (group.rateLimit) scopes.add(groupBucketScope(group.namespace, group.name));
  return [...scopes];
}

/**
 * The job ids whose routing row a claim must lock: routed jobs and jobs with a concurrency or rate
 * limit. A request of resources alone needs no job row: it is held per worker, under the claiming
 * worker's row (so claims of one such job on many workers run side by side).
 */
export function lockedJobs(candidates: readonly DispatchCandidate[]): number[] {
  const ids = new Set<number>();
  for (const c of candidates) if (!isPlainDispatch({ ...c.policy, resources: null })) ids.add(c.jobId);
  return [...ids].sort((a, b) => a - b);
}

/**
 * Decides a claim. Resources (core/resources.ts): a run that requests some is taken only when it
 * fits the claiming worker's free capacity (what it advertised minus the requests of the runs it
 * holds, minus any reservation on it), and routed only among workers whose whole capacity fits it;
 * a run that fits no live worker's whole capacity is left queued (unplaceable, see queue-wait.ts).
 *
 * Starvation: runs are looked at oldest first (within a priority), so a big run that does not fit
 * now would see smaller ones behind it take every resource it waits for, again and again. Once the
 * oldest such run has waited `reserveAfterMs` and fits no live worker's free capacity, one worker
 * reserves for it: its assigned worker if routing chose one, else the eligible worker closest to
 * fitting it ({@link distance}, then by name). That worker takes no run whose request does not fit
 * in its free capacity minus the reservation, so what its runs give back accumulates until the big
 * run fits. Runs that request nothing, or only resources the big run does not need, still run there.
 * Every claim derives the reservations again from the store's rows, so every node agrees.
 */
export function planDispatch(input: DispatchInput): DispatchPlan {
  const plan: DispatchPlan = { claim: [], assign: [], states: new Map(), buckets: new Map() };
  const me = input.live.find((w) => w.id === input.workerId);
  const live = new Map(input.live.map((w) => [w.id, { ...w, used: { ...(w.used ?? {}) } }]));
  const reserveAfterMs = input.reserveAfterMs ?? DEFAULT_RESERVE_AFTER_MS;
  /** Worker id → resources reserved on it for older runs. */
  const reserved = new Map<string, Resources>();
  const free = (w: WorkerSnapshot): Resources => {
    const left = addResources(w.resources ?? {}, w.used ?? {}, -1);
    const held = reserved.get(w.id);
    return held ? addResources(left, held, -1) : left;
  };
  /** Whether `c`'s request (if any) fits worker `id`'s free capacity now. */
  const fitsFree = (c: DispatchCandidate, id: string) => {
    if (c.resources === null) return true;
    const w = live.get(id);
    return w !== undefined && fits(c.resources, free(w));
  };
  const hold = (id: string, c: DispatchCandidate) => {
    const w = live.get(id);
    if (w && c.resources) w.used = addResources(w.used ?? {}, c.resources);
  };
  /**
   * A run that requests resources and cannot be placed now: reserve for it on `target` (or on the
   * eligible worker closest to fitting it) once it waited long enough and no worker has it free.
   */
  const reserveFor = (c: DispatchCandidate, target: string | null) => {
    if (c.resources === null || input.now - c.availableAt < reserveAfterMs) return;
    const holders = [...live.values()].filter((w) =>
      eligible(w, c.handler, c.policy.routing.selector, c.resources),
    );
    if (holders.length === 0 || holders.some((w) => fits(c.resources!, free(w)))) return;
    let chosen = target === null ? undefined : holders.find((w) => w.id === target);
    if (!chosen) {
      chosen = holders.sort(
        (a, b) =>
          distance(c.resources!, free(a), a.resources ?? {}) -
            distance(c.resources!, free(b), b.resources ?? {}) ||
          compare(a.name, b.name) ||
          compare(a.id, b.id),
      )[0]!;
    }
    reserved.set(chosen.id, addResources(reserved.get(chosen.id) ?? {}, c.resources));
  };
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

  // Waiting runs another claim holds locked (not candidates here) reserve at their place in claim
  // order: a run of higher priority, or as high and older, reserves before the candidates behind it;
  // one of lower priority never holds back a candidate of higher priority.
  const candidateIds = new Set(input.candidates.map((c) => c.runId));
  const waiting = (input.waiting ?? []).filter((c) => !candidateIds.has(c.runId)).sort(claimOrder);
  let nextWaiting = 0;
  const reserveWaitingBefore = (c: DispatchCandidate) => {
    while (nextWaiting < waiting.length && claimOrder(waiting[nextWaiting]!, c) < 0) {
      const w = waiting[nextWaiting++]!;
      reserveFor(w, w.targetWorkerId);
    }
  };

  for (const c of input.candidates) {
    if (plan.claim.length >= input.max) break;
    reserveWaitingBefore(c);
    const { routing } = c.policy;
    const request = c.resources;
    if (routing.strategy === 'broadcast') {
      // A shard belongs to its worker while that one lives; then to any eligible worker.
      const owner = c.targetWorkerId === null ? undefined : live.get(c.targetWorkerId);
      if (owner && eligible(owner, c.handler, routing.selector, request)) {
        if (owner.id === input.workerId && fitsFree(c, owner.id) && underLimits(c)) {
          take(c);
          hold(owner.id, c);
        } else reserveFor(c, owner.id);
        continue;
      }
      if (me && eligible(me, c.handler, routing.selector, request) && fitsFree(c, me.id) && underLimits(c)) {
        take(c);
        load(me.id, c.jobId, 1);
        hold(me.id, c);
      } else reserveFor(c, null);
      continue;
    }
    if (routing.strategy === 'any') {
      // Unrouted: whoever asks first, if the selector lets it and its request fits.
      if (me && eligible(me, c.handler, routing.selector, request) && fitsFree(c, me.id) && underLimits(c)) {
        take(c);
        load(me.id, c.jobId, 1);
        hold(me.id, c);
      } else reserveFor(c, null);
      continue;
    }
    let target = c.targetWorkerId;
    const current = target === null ? undefined : live.get(target);
    if (!current || !eligible(current, c.handler, routing.selector, request)) {
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
        resources: request,
      });
      if (decision.workerId !== null) plan.states.set(c.jobId, decision.state);
      if (decision.workerId !== target) plan.assign.push({ runId: c.runId, workerId: decision.workerId });
      target = decision.workerId;
      if (target !== null) load(target, c.jobId, 1);
    }
    if (target === input.workerId && fitsFree(c, target) && underLimits(c)) {
      take(c);
      // The assignment becomes a running attempt: the worker's load is unchanged; its request is held.
      hold(target, c);
    } else if (target !== null) {
      reserveFor(c, target);
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
