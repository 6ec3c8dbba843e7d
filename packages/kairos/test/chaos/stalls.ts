import type { FaultEvent, LoadEvent, StallEvent } from './history-log.ts';

/**
 * What made a process stall (`stall-probe.ts` records the gaps), by what its main thread did for
 * most of the gap:
 * - `injected`: the nemesis froze that very process (`node-stop`, `worker-stop`) meanwhile;
 * - `machine`: runnable but waiting for a CPU for at least half the gap: the machine, not Kairos
 *   and not the nemesis, held it;
 * - `busy`: on a CPU for at least half the gap: its own work (a handler that blocks the event
 *   loop, GC, loading code), which Kairos must live with;
 * - `blocked`: neither: asleep in the kernel (disk, a synchronous child process, page faults), or
 *   a mix, or a kernel that does not say how long the thread waited. Explains nothing.
 * A handler that blocks its event loop on a starved machine, getting less than half a CPU, counts
 * as `machine`: the stall is longer than the handler made it by what it waited for.
 */
export type StallCause = 'machine' | 'busy' | 'blocked' | 'injected';

export interface ClassifiedStall {
  process: string;
  start: number;
  end: number;
  ms: number;
  cpuMs: number;
  waitMs: number | null;
  cause: StallCause;
}

/** Faults that freeze the process they target. */
const FREEZES = new Set(['node-stop', 'worker-stop']);
/** Faults that leave the node they target unable to fire (the database outage: every node). */
const NODE_DOWN = new Set(['node-kill', 'node-stop', 'node-db-cut']);

const targetsProcess = (f: FaultEvent, process: string) =>
  f.targets.some((t) => t.slice(t.indexOf(':') + 1) === process);

export function classifyStalls(stalls: StallEvent[], faults: FaultEvent[]): ClassifiedStall[] {
  return stalls.map((s) => {
    const ms = s.end - s.start;
    const frozen = faults.some(
      (f) =>
        FREEZES.has(f.kind) &&
        targetsProcess(f, s.process) &&
        f.start <= s.end &&
        (f.end ?? Number.POSITIVE_INFINITY) >= s.start,
    );
    const cause: StallCause = frozen
      ? 'injected'
      : s.waitMs !== null && s.waitMs >= ms / 2
        ? 'machine'
        : s.cpuMs >= ms / 2
          ? 'busy'
          : 'blocked';
    return { process: s.process, start: s.start, end: s.end, ms, cpuMs: s.cpuMs, waitMs: s.waitMs, cause };
  });
}

/**
 * The machine stall that explains why an attempt on `worker` was declared lost: one stall of that
 * worker's process, overlapping the attempt (from a lease before it started to its end, with
 * slack, as a fault on the worker must), at least `workerLeaseMs − heartbeatMs` long: the shortest
 * freeze that can end a lease (it begins just before a heartbeat is due, and the lease the last
 * heartbeat gave ends `workerLeaseMs` after that heartbeat). Shorter stalls never explain a loss.
 */
export function stallEndingLease(
  stalls: ClassifiedStall[],
  worker: string,
  attempt: { startedAt: number; finishedAt: number | null },
  options: { workerLeaseMs: number; heartbeatMs: number; slackMs: number; until: number },
): ClassifiedStall | undefined {
  const min = options.workerLeaseMs - options.heartbeatMs;
  const from = attempt.startedAt - options.workerLeaseMs - options.slackMs;
  const to = (attempt.finishedAt ?? options.until) + options.slackMs;
  return stalls.find(
    (s) => s.cause === 'machine' && s.process === worker && s.ms >= min && s.start <= to && s.end >= from,
  );
}

export interface NodeAvailability {
  /** Per node slot (`n1`): ms of the window it could not fire, and how many of them were machine stalls. */
  nodes: Record<string, { unableMs: number; stalledMs: number }>;
  windowMs: number;
}

/**
 * How long each node could not fire in [from, to]: its processes' machine stalls, the faults that
 * took it down (killed, frozen, cut off from the database) and database outages. A fire can be
 * missed only if no node could fire it for the whole window: every node able for less than a
 * partition lease and a renewal (`P + P/3`, the failover time) in all.
 */
export function nodeAvailability(
  stalls: ClassifiedStall[],
  faults: FaultEvent[],
  slots: string[],
  from: number,
  to: number,
): NodeAvailability {
  const slotOf = (process: string) => process.replace(/-g\d+$/, '');
  const nodes: NodeAvailability['nodes'] = {};
  for (const slot of slots) {
    const stalled = stalls
      .filter((s) => s.cause === 'machine' && slotOf(s.process) === slot)
      .map((s): [number, number] => [s.start, s.end]);
    const down = faults
      .filter(
        (f) =>
          (NODE_DOWN.has(f.kind) &&
            f.targets.some((t) => t.startsWith('node:') && slotOf(t.slice(5)) === slot)) ||
          (f.kind === 'db-restart' && f.targets.includes('db')),
      )
      .map((f): [number, number] => [f.start, f.end ?? to]);
    nodes[slot] = {
      unableMs: coveredMs([...stalled, ...down], from, to),
      stalledMs: coveredMs(stalled, from, to),
    };
  }
  return { nodes, windowMs: Math.max(0, to - from) };
}

/** Whether no node could fire in the window (each able for less than `failoverMs`), stalls part of it. */
export function clusterStalled(availability: NodeAvailability, failoverMs: number): boolean {
  const nodes = Object.values(availability.nodes);
  return (
    nodes.length > 0 &&
    nodes.every((n) => availability.windowMs - n.unableMs < failoverMs) &&
    nodes.some((n) => n.stalledMs > 0)
  );
}

/** The length of the union of the intervals, clipped to [from, to]. */
function coveredMs(intervals: Array<[number, number]>, from: number, to: number): number {
  const clipped = intervals
    .map(([a, b]): [number, number] => [Math.max(a, from), Math.min(b, to)])
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  let total = 0;
  let [start, end] = [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY];
  for (const [a, b] of clipped) {
    if (a > end) {
      if (end > start) total += end - start;
      [start, end] = [a, b];
    } else end = Math.max(end, b);
  }
  if (end > start) total += end - start;
  return total;
}

export interface StallSummary {
  recorded: number;
  machine: number;
  busy: number;
  blocked: number;
  injected: number;
  /** Machine stalls at least as long as the shortest that can end a worker's lease. */
  machineLeaseLong: number;
  longestMachine: ClassifiedStall | null;
}

export function summarizeStalls(stalls: ClassifiedStall[], leaseLongMs: number): StallSummary {
  const machine = stalls.filter((s) => s.cause === 'machine');
  return {
    recorded: stalls.length,
    machine: machine.length,
    busy: stalls.filter((s) => s.cause === 'busy').length,
    blocked: stalls.filter((s) => s.cause === 'blocked').length,
    injected: stalls.filter((s) => s.cause === 'injected').length,
    machineLeaseLong: machine.filter((s) => s.ms >= leaseLongMs).length,
    longestMachine: machine.reduce<ClassifiedStall | null>(
      (a, s) => (a === null || s.ms > a.ms ? s : a),
      null,
    ),
  };
}

export interface LoadSummary {
  samples: number;
  load1Max: number | null;
  cpuSomePctMean: number | null;
  cpuSomePctMax: number | null;
  ioSomePctMax: number | null;
}

export function summarizeLoad(samples: LoadEvent[]): LoadSummary {
  const values = (pick: (s: LoadEvent) => number | null) =>
    samples.map(pick).filter((v): v is number => v !== null && Number.isFinite(v));
  const max = (list: number[]) => (list.length === 0 ? null : Math.max(...list));
  const cpu = values((s) => s.cpuSomePct);
  return {
    samples: samples.length,
    load1Max: max(values((s) => s.load1)),
    cpuSomePctMean:
      cpu.length === 0 ? null : Math.round((cpu.reduce((a, b) => a + b, 0) / cpu.length) * 10) / 10,
    cpuSomePctMax: max(cpu),
    ioSomePctMax: max(values((s) => s.ioSomePct)),
  };
}

/** `machine stall w1-g0 at 12:00:01.234Z, 4800 ms (run queue 4100 ms, on CPU 200 ms)`. */
export function formatStall(s: ClassifiedStall): string {
  const wait = s.waitMs === null ? '' : `run queue ${s.waitMs} ms, `;
  return `${s.cause} stall ${s.process} at ${new Date(s.start).toISOString()}, ${s.ms} ms (${wait}on CPU ${s.cpuMs} ms)`;
}
