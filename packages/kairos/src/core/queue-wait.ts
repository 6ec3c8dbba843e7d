import type { QueueWait } from '@kairos/client';
import { BUFFERED_AT, HELD_WHILE_PAUSED_AT } from './overlap.ts';
import { amountOf, describeResources, fits, type Resources, resourceSpecOf } from './resources.ts';

/** What deciding why a queued run waits reads of it. */
export interface WaitingRun {
  namespace: string;
  group: string;
  handler: string;
  availableAt: number;
  /** The worker routing chose for it, if any. */
  assignedWorkerId: string | null;
  /** What it requests (core/resources.ts); null or absent: nothing. */
  resources?: Resources | null;
}

/** What it reads of each worker (live or not: this function judges). */
export interface WaitWorker {
  id: string;
  namespace: string;
  group: string;
  handlers: readonly string[];
  status: string;
  capacity: number;
  running: number;
  leaseExpiresAt: number;
  /** What it advertised; null or absent: nothing. */
  resources?: Resources | null;
}

/**
 * Why a queued run has not started at `now`, first reason first:
 * - `not_yet_available`: its time has not come (a delay, a retry's backoff, jitter), or the job's
 *   overlap policy buffers it until the job's previous run ends, or it is a workflow step's run
 *   of a paused job, held until the job is resumed;
 * - `no_live_worker_in_group`: no live worker (active, lease not expired) of its namespace serves
 *   its group (a worker claims the runs of its own namespace only);
 * - `no_live_worker_for_handler`: live workers serve the group, none declares its handler;
 * - `no_worker_with_resources`: none of those has as much as the run requests in all (free or not):
 *   it is unplaceable until a bigger worker joins (`resources.missing` says by how much);
 *   these three are {@link unplaceable}'s, the metric's and the alert's too;
 * - `assigned_worker`: routing chose one worker for it, and that worker takes it when it can;
 * - `all_slots_busy`: the live workers that could take it run as many attempts as their capacity;
 * - `next_poll`: a worker has a free slot; it starts at that worker's next poll unless a limit of
 *   its group or job, or runs of higher priority, come first.
 */
export function whyQueued(run: WaitingRun, workers: readonly WaitWorker[], now: number): QueueWait {
  if (run.availableAt === HELD_WHILE_PAUSED_AT)
    return {
      reason: 'not_yet_available',
      message: "a workflow step's run of a paused job: it becomes available when the job is resumed",
    };
  if (run.availableAt >= BUFFERED_AT)
    return {
      reason: 'not_yet_available',
      message: "buffered by the job's overlap policy: it becomes available when the job's previous run ends",
    };
  if (run.availableAt > now)
    return {
      reason: 'not_yet_available',
      message: `waits until ${new Date(run.availableAt).toISOString()} (a delay, a retry's backoff or jitter)`,
    };
  const cannot = unplaceable(run, workers, now);
  if (cannot) return cannot;
  const able = liveWorkers(run, workers, now).filter((w) => w.handlers.includes(run.handler));
  if (run.assignedWorkerId !== null)
    return {
      reason: 'assigned_worker',
      message: `routing chose worker ${run.assignedWorkerId} for it; it waits for a free slot there`,
    };
  const slots = able.reduce((sum, w) => sum + w.capacity, 0);
  if (able.every((w) => w.running >= w.capacity))
    return {
      reason: 'all_slots_busy',
      message: `all ${slots} slots of the ${able.length} live workers declaring handler ${run.handler} are busy`,
    };
  return {
    reason: 'next_poll',
    message:
      'a live worker has a free slot: it starts at that worker’s next poll, unless a limit of its group or job or runs of higher priority come first',
  };
}

/** What deciding whether any live worker can take a queued run reads of it. */
export interface PlacedRun {
  namespace: string;
  group: string;
  handler: string;
  /** What it requests: its own (a workflow step's), else its job's; null or absent: nothing. */
  resources?: Resources | null;
}

/** What it reads of each worker; `capacity`, `running` and `id` are not needed for placement. */
export type PlacementWorker = Pick<
  WaitWorker,
  'namespace' | 'group' | 'handlers' | 'status' | 'leaseExpiresAt' | 'resources'
>;

/** A queued run no live worker can take, and why ({@link unplaceable}). */
export type Unplaceable = QueueWait & {
  reason: 'no_live_worker_in_group' | 'no_live_worker_for_handler' | 'no_worker_with_resources';
};

/** The live workers (active, lease not expired) of a run's namespace and group. */
function liveWorkers<W extends PlacementWorker>(run: PlacedRun, workers: readonly W[], now: number): W[] {
  return workers.filter(
    (w) =>
      w.namespace === run.namespace &&
      w.group === run.group &&
      w.status === 'active' &&
      w.leaseExpiresAt > now,
  );
}

/**
 * Whether no live worker can take a queued run at `now`, and why, first reason first: no live
 * worker of its namespace serves its group; none of those declares its handler; none of those has
 * as much as it requests in all, free or not (`resources.missing`: by how much the largest falls
 * short). Null: some live worker can take it, now or once a slot or its resources are free.
 *
 * The one decision behind every place that says so: a queued run's `waiting` ({@link whyQueued}),
 * the metric `kairos_runs_unplaceable` and the `run-queued` alert rule. Like a claim (store/
 * dispatch-plan.ts), it places a run only on a worker whose whole capacity fits its request.
 */
export function unplaceable(
  run: PlacedRun,
  workers: readonly PlacementWorker[],
  now: number,
): Unplaceable | null {
  const live = liveWorkers(run, workers, now);
  if (live.length === 0)
    return { reason: 'no_live_worker_in_group', message: `no live worker in group ${run.group}` };
  const able = live.filter((w) => w.handlers.includes(run.handler));
  if (able.length === 0)
    return {
      reason: 'no_live_worker_for_handler',
      message: `no live worker in group ${run.group} declares handler ${run.handler}`,
    };
  const request = run.resources ?? null;
  if (request !== null && !able.some((w) => fits(request, w.resources ?? {}))) {
    const missing = missingResources(request, able);
    return {
      reason: 'no_worker_with_resources',
      message: `no live worker in group ${run.group} declaring handler ${run.handler} has ${describeResources(request)} in all (short of the largest: ${describeResources(missing) || 'each is on some worker, never all on one'})`,
      resources: { request: resourceSpecOf(request), missing: resourceSpecOf(missing) },
    };
  }
  return null;
}

/** Per resource, how much `request` exceeds what the worker with the most of it has (absent: enough). */
export function missingResources(
  request: Resources,
  workers: ReadonlyArray<{ resources?: Resources | null }>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, amount] of Object.entries(request)) {
    const most = Math.max(0, ...workers.map((w) => amountOf(w.resources, name)));
    if (most < amount) out[name] = amount - most;
  }
  return out;
}
