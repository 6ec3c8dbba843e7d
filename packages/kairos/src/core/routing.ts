/**
 * Routing: which live worker of a job's group runs a run. Pure: every strategy is a choice over a
 * snapshot of workers plus the job's routing state (kept in the store, so that a round robin is
 * fair across every node of the cluster, not per node). Time and randomness come in as arguments.
 *
 * Workers are ordered by name (then id): names are what users set and see, and stay the same when
 * a worker restarts with a new id, so "first", "failover" and the hash ring survive restarts.
 * The strategies' names (and what each does) are listed once, in `@kairos/client`.
 */
import { type JsonObject, ROUTING_STRATEGIES } from '@kairos/client';
import { amountOf, fits, type Resources } from './resources.ts';

export { ROUTING_STRATEGIES };

export type RoutingStrategy = (typeof ROUTING_STRATEGIES)[number];

/** How a job's runs are routed: the strategy, the hash key and the label selector. */
export interface Routing {
  strategy: RoutingStrategy;
  /** consistent-hash only: the params field whose value is the key; null hashes the job name. */
  key: string | null;
  /** Only workers whose labels carry every one of these pairs (e.g. `{ region: 'eu' }`). */
  selector: Record<string, string>;
}

export const DEFAULT_ROUTING: Routing = Object.freeze({ strategy: 'any', key: null, selector: {} });

/** A live worker as routing sees it. */
export interface WorkerSnapshot {
  id: string;
  name: string;
  handlers: readonly string[];
  labels: Readonly<Record<string, string>>;
  capacity: number;
  /** Attempts running on it now (every job). */
  running: number;
  /** Attempts of the job being routed running on it now. */
  runningOfJob: number;
  /** What it advertised (core/resources.ts); `{}` for a worker that advertised nothing. */
  resources?: Resources;
  /** The requests of the runs it holds (its running attempts, held ones included); not assigned ones. */
  used?: Resources;
  /** What it last reported of its host's load; absent: never reported. */
  load?: WorkerLoad | null;
}

/** A worker's host load, as its heartbeats report it. */
export interface WorkerLoad {
  /** The 1-minute load average. */
  loadAverage: number;
  /** CPUs the host has (the load average's scale). */
  cpus: number;
  freeMemory: number;
  totalMemory: number;
}

/**
 * How busy a worker's host is, from 0 to 1: the highest of its load average per CPU, the part of
 * its memory in use, and the part of each advertised resource its runs requested; 0 where nothing
 * is known.
 */
export function pressure(worker: WorkerSnapshot): number {
  let p = 0;
  const load = worker.load;
  if (load) {
    if (load.cpus > 0) p = Math.max(p, load.loadAverage / load.cpus);
    if (load.totalMemory > 0) p = Math.max(p, 1 - load.freeMemory / load.totalMemory);
  }
  for (const [name, amount] of Object.entries(worker.used ?? {})) {
    const capacity = amountOf(worker.resources, name);
    if (capacity > 0) p = Math.max(p, amount / capacity);
  }
  return Math.min(1, Math.max(0, p));
}

/**
 * Per-job routing state, one JSON value per job in the store. `turn` counts assignments: the
 * round-robin position and the logical clock of least-recently-used (no wall clock: two
 * assignments in one millisecond are still ordered).
 */
export interface RoutingState {
  turn: number;
  /** Worker name → `turn` of its last assignment. */
  lastUsed: Record<string, number>;
  /** Worker name → assignments so far. */
  uses: Record<string, number>;
}

export const EMPTY_ROUTING_STATE: RoutingState = Object.freeze({ turn: 0, lastUsed: {}, uses: {} });

export interface RouteInput {
  routing: Routing;
  handler: string;
  jobName: string;
  params: JsonObject;
  state: RoutingState;
  /** A number in [0, 1) for `random`. */
  random: number;
  /** What the run requests: only workers whose whole capacity fits it are candidates. */
  resources?: Resources | null;
}

export interface RouteDecision {
  /** The worker, or null when none can take the run now (it waits, queued). */
  workerId: string | null;
  state: RoutingState;
}

/**
 * Whether a worker may run a job's runs at all: it has the handler, matches the selector and, for a
 * run that requests resources, has at least that much in all (free or not).
 */
export function eligible(
  worker: WorkerSnapshot,
  handler: string,
  selector: Routing['selector'],
  resources: Resources | null = null,
): boolean {
  if (!worker.handlers.includes(handler)) return false;
  for (const [label, value] of Object.entries(selector)) if (worker.labels[label] !== value) return false;
  return resources === null || fits(resources, worker.resources ?? {});
}

/** Picks the worker for one run among `workers` (the live workers of the job's group). */
export function route(workers: readonly WorkerSnapshot[], input: RouteInput): RouteDecision {
  const { routing, state } = input;
  const candidates = workers
    .filter((w) => eligible(w, input.handler, routing.selector, input.resources ?? null))
    .sort((a, b) => compare(a.name, b.name) || compare(a.id, b.id));
  const identity = identities(workers);
  const chosen = choose(candidates, input, (w) => identity.get(w.id)!);
  if (!chosen) return { workerId: null, state };
  return { workerId: chosen.id, state: advance(state, identity.get(chosen.id)!, identity) };
}

/**
 * What routing knows a worker by: its name, which survives restarts, so a restarted worker keeps
 * its keys and its history; `name#id` for workers that share a name (replicas started with one
 * name), so that they still count as distinct workers.
 */
function identities(workers: readonly WorkerSnapshot[]): Map<string, string> {
  const count = new Map<string, number>();
  for (const w of workers) count.set(w.name, (count.get(w.name) ?? 0) + 1);
  return new Map(workers.map((w) => [w.id, count.get(w.name) === 1 ? w.name : `${w.name}#${w.id}`]));
}

function choose(
  workers: WorkerSnapshot[],
  input: RouteInput,
  identity: (worker: WorkerSnapshot) => string,
): WorkerSnapshot | undefined {
  if (workers.length === 0) return undefined;
  const { state } = input;
  switch (input.routing.strategy) {
    case 'any':
    case 'first':
      return workers[0];
    case 'last':
      return workers[workers.length - 1];
    case 'round-robin':
      return workers[state.turn % workers.length];
    case 'random':
      return workers[Math.min(workers.length - 1, Math.floor(input.random * workers.length))];
    case 'consistent-hash': {
      const key = hashKeyOf(input);
      return maxBy(workers, (w) => hash53(`${key}\u0000${identity(w)}`));
    }
    case 'least-recently-used':
      return maxBy(workers, (w) => -(state.lastUsed[identity(w)] ?? -1));
    case 'least-frequently-used':
      return maxBy(workers, (w) => -(state.uses[identity(w)] ?? 0));
    case 'least-loaded':
      // The most free slots; between equal ones, the host that reports the least load. Load only
      // breaks ties (pressure ≤ 1 moves a score by at most half a slot): workers of one host
      // report their load at different instants, and weighing slots by it spread a burst unevenly.
      return maxBy(workers, (w) => {
        const free = w.capacity - w.running;
        return free > 0 ? free - pressure(w) / 2 : free;
      });
    case 'failover':
      return workers.find((w) => w.running < w.capacity);
    case 'busy-over':
      return workers.find((w) => w.runningOfJob === 0);
    case 'broadcast':
      // A shard to place again: the least loaded worker.
      return maxBy(workers, (w) => w.capacity - w.running);
  }
}

/** The consistent-hash key of a run: a params field (as JSON, so 1 and "1" differ) or the job name. */
export function hashKeyOf(input: Pick<RouteInput, 'routing' | 'params' | 'jobName'>): string {
  const { key } = input.routing;
  if (key === null) return `job:${input.jobName}`;
  const value = input.params[key];
  return value === undefined ? `job:${input.jobName}` : `param:${JSON.stringify(value)}`;
}

/** The state after assigning a run to `name`; entries of workers no longer alive are dropped. */
function advance(state: RoutingState, name: string, alive: ReadonlyMap<string, string>): RoutingState {
  const names = new Set(alive.values());
  const keep = (record: Record<string, number>) =>
    Object.fromEntries(Object.entries(record).filter(([n]) => names.has(n)));
  const turn = state.turn + 1;
  const uses = keep(state.uses);
  uses[name] = (uses[name] ?? 0) + 1;
  const lastUsed = keep(state.lastUsed);
  lastUsed[name] = turn;
  return { turn, lastUsed, uses };
}

/** The first element with the highest score (ties keep the order). */
function maxBy<T>(items: readonly T[], score: (item: T) => number): T | undefined {
  let best: T | undefined;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (const item of items) {
    const s = score(item);
    if (s > bestScore) {
      best = item;
      bestScore = s;
    }
  }
  return best;
}

/** Byte order of two strings (not locale order: every node sorts alike). */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** cyrb53: a fast, well-mixed 53-bit string hash (no crypto needed: keys are not secrets). */
export function hash53(text: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** Shards of one broadcast fire: the eligible live workers in name order, one shard each. */
export function shardTargets(
  workers: readonly WorkerSnapshot[],
  handler: string,
  selector: Routing['selector'],
): string[] {
  return workers
    .filter((w) => eligible(w, handler, selector))
    .sort((a, b) => compare(a.name, b.name) || compare(a.id, b.id))
    .map((w) => w.id);
}
