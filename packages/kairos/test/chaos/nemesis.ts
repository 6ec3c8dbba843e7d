import { writeFileSync } from 'node:fs';
import { appendEvent, type FaultEvent } from './history-log.ts';
import { ADMIN_TOKEN, type Member, type System, sleep } from './system.ts';

/** A seeded random number generator (mulberry32): the same seed plans the same faults. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The faults the nemesis can inject. `network` ones need the processes in namespaces,
 * `postgres` ones the cluster profile.
 */
export const FAULTS = {
  /** kill -9 of a node; restarted (a new node id) after the fault's duration. */
  'node-kill': { ms: [1000, 5000], needs: [] },
  /** SIGSTOP of a node (a GC pause, a frozen VM), SIGCONT after the duration. */
  'node-stop': { ms: [2000, 8000], needs: [] },
  /** kill -9 of a worker with runs in flight; restarted after the duration. */
  'worker-kill': { ms: [500, 4000], needs: [] },
  /** SIGSTOP of a worker, past its lease or not: a zombie when it resumes. */
  'worker-stop': { ms: [1000, 9000], needs: [] },
  /** PostgreSQL stopped (fast shutdown) and started again after the duration. */
  'db-restart': { ms: [500, 3000], needs: ['postgres'] },
  /** A node cut off from PostgreSQL while its process runs (and its workers still reach it). */
  'node-db-cut': { ms: [2000, 10_000], needs: ['postgres', 'network'] },
  /** One node's link to PostgreSQL slowed to 200 ms each way. */
  'db-slow': { ms: [5000, 15_000], needs: ['postgres', 'network'] },
  /** A worker cut off from every node past its lease, then healed: a zombie that reports. */
  'worker-isolate': { ms: [2000, 10_000], needs: ['network'] },
  /** A worker cut off from one node; the other nodes and the database stay reachable. */
  'worker-node-cut': { ms: [3000, 12_000], needs: ['postgres', 'network'] },
  /** One packet in five lost between a worker and every node. */
  'worker-lossy': { ms: [5000, 15_000], needs: ['network'] },
  /** One node's wall clock stepped forward or back by 10 s to 10 min, and back after the duration. */
  'clock-step': { ms: [5000, 20_000], needs: ['postgres'] },
  /** Every node in turn stopped cleanly (SIGTERM) and started again, as an upgrade rolls. */
  'rolling-restart': { ms: [0, 0], needs: [] },
  /** The SQLite node's disk (a 64 MB tmpfs) filled up, and freed after the duration. */
  'disk-full': { ms: [3000, 10_000], needs: ['sqlite'] },
  /** A run whose handler kills its worker, on every attempt (2 attempts). */
  poison: { ms: [0, 0], needs: [] },
} as const;
export type FaultKind = keyof typeof FAULTS;

export interface PlannedFault {
  at: number;
  kind: FaultKind;
  ms: number;
  /** Picks the target among the candidates: index = floor(pick × count). */
  pick: number;
  pick2: number;
  sign: number;
}

/**
 * The whole fault plan of a run, from the seed alone. Kinds come in rounds, each a seeded shuffle
 * of every kind, so that even a short run injects each kind.
 */
export function planFaults(
  seed: number,
  kinds: FaultKind[],
  durationMs: number,
  gapMs: [number, number],
): PlannedFault[] {
  const random = rng(seed);
  const plan: PlannedFault[] = [];
  let round: FaultKind[] = [];
  let at = 2000;
  while (at < durationMs) {
    if (round.length === 0) {
      round = [...kinds];
      for (let i = round.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [round[i], round[j]] = [round[j]!, round[i]!];
      }
    }
    const kind = round.pop()!;
    const [min, max] = FAULTS[kind].ms;
    const ms = Math.min(Math.round(min + random() * (max - min)), Math.max(0, durationMs - at));
    plan.push({ at, kind, ms, pick: random(), pick2: random(), sign: random() < 0.5 ? -1 : 1 });
    at += Math.round(gapMs[0] + random() * (gapMs[1] - gapMs[0]));
  }
  return plan;
}

/** Carries out a fault plan on a system, recording each fault in the history when it heals. */
export class Nemesis {
  private readonly busy = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private readonly stop = new AbortController();
  injected = 0;

  constructor(
    private readonly system: System,
    private readonly history: string,
    private readonly log: (line: string) => void,
  ) {}

  async run(plan: PlannedFault[], startedAt: number): Promise<void> {
    for (const fault of plan) {
      const wait = startedAt + fault.at - Date.now();
      if (wait > 0) await sleep(wait);
      if (this.stop.signal.aborted) break;
      const job = this.inject(fault).catch((error: unknown) =>
        this.log(`nemesis: ${fault.kind} failed: ${String(error)}`),
      );
      this.running.add(job);
      void job.finally(() => this.running.delete(job));
    }
  }

  /** Ends every fault now (healing it) and waits until all are healed. */
  async healAll(): Promise<void> {
    this.stop.abort();
    await Promise.all([...this.running]);
    if (this.system.options.network) this.system.net.healAll();
  }

  /**
   * Starts node `slot` again. A start that fails leaves the node down: that is recorded as the
   * fault it is (until the failure), so that the checker sees the node was down, and rethrown.
   */
  private async restart(slot: string, targets: string[], kind: FaultKind, start: number): Promise<void> {
    try {
      await this.system.startNode(slot);
    } catch (error) {
      this.record({ kind, targets, start, end: Date.now(), note: `did not start again: node left down` });
      throw error;
    }
  }

  private record(event: Omit<FaultEvent, 't'>): void {
    this.injected++;
    appendEvent(this.history, { t: 'fault', ...event });
    this.log(
      `fault ${event.kind} ${event.targets.join(',')} ${event.end === null ? '' : `${event.end - event.start} ms`} ${event.note ?? ''}`,
    );
  }

  /** A slot of the given kind that no other fault holds, picked by `pick`. */
  private take(slots: string[], pick: number): string | undefined {
    const free = slots.filter((s) => !this.busy.has(s));
    const slot = free[Math.floor(pick * free.length)];
    if (slot) this.busy.add(slot);
    return slot;
  }

  /** Waits the fault's duration, or less when the nemesis is told to heal everything. */
  private hold(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.stop.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.stop.signal.addEventListener('abort', done);
    });
  }

  private async inject(fault: PlannedFault): Promise<void> {
    const { system } = this;
    const nodes = system.nodeSlots();
    const workers = system.workerSlots();
    const start = Date.now();
    switch (fault.kind) {
      case 'node-kill':
      case 'node-stop':
      case 'clock-step':
      case 'node-db-cut':
      case 'db-slow': {
        const slot = this.take(nodes, fault.pick);
        if (!slot) return;
        const member = system.nodes.get(slot)!;
        try {
          const targets = [`node:${member.name}`];
          if (fault.kind === 'node-kill') {
            await system.kill(member);
            await this.hold(fault.ms);
            const end = Date.now();
            await this.restart(slot, targets, fault.kind, start);
            this.record({
              kind: fault.kind,
              targets,
              start,
              end,
              note: `restarted as ${system.nodes.get(slot)!.name}`,
            });
          } else if (fault.kind === 'node-stop') {
            system.pause(member);
            await this.hold(fault.ms);
            system.resume(member);
            this.record({ kind: fault.kind, targets, start, end: Date.now() });
          } else if (fault.kind === 'clock-step') {
            const offset = fault.sign * Math.round(10_000 + fault.pick2 * 590_000);
            writeFileSync(system.clockFile(slot), String(offset));
            await this.hold(fault.ms);
            writeFileSync(system.clockFile(slot), '0');
            this.record({ kind: fault.kind, targets, start, end: Date.now(), note: `offset ${offset} ms` });
          } else if (fault.kind === 'db-slow') {
            system.links.get(slot)!.delayMs = 200;
            await this.hold(fault.ms);
            system.links.get(slot)!.delayMs = 0;
            this.record({ kind: fault.kind, targets, start, end: Date.now(), note: '200 ms each way' });
          } else {
            system.net.cut(slot, 'db');
            await this.hold(fault.ms);
            system.net.heal(slot, 'db');
            this.record({ kind: fault.kind, targets, start, end: Date.now() });
          }
        } finally {
          this.busy.delete(slot);
        }
        return;
      }
      case 'worker-kill':
      case 'worker-stop':
      case 'worker-isolate':
      case 'worker-lossy':
      case 'worker-node-cut': {
        const slot = this.take(workers, fault.pick);
        if (!slot) return;
        const member: Member = system.workers.get(slot)!;
        try {
          const targets = [`worker:${member.name}`];
          if (fault.kind === 'worker-kill') {
            await system.kill(member);
            await this.hold(fault.ms);
            const end = Date.now();
            system.startWorker(slot);
            this.record({
              kind: fault.kind,
              targets,
              start,
              end,
              note: `restarted as ${system.workers.get(slot)!.name}`,
            });
          } else if (fault.kind === 'worker-stop') {
            system.pause(member);
            await this.hold(fault.ms);
            system.resume(member);
            this.record({ kind: fault.kind, targets, start, end: Date.now() });
          } else if (fault.kind === 'worker-isolate') {
            for (const n of nodes) system.net.cut(slot, n);
            await this.hold(fault.ms);
            for (const n of nodes) system.net.heal(slot, n);
            this.record({ kind: fault.kind, targets, start, end: Date.now() });
          } else if (fault.kind === 'worker-lossy') {
            for (const n of nodes) system.net.lossy(slot, n);
            await this.hold(fault.ms);
            for (const n of nodes) system.net.unlossy(slot, n);
            this.record({ kind: fault.kind, targets, start, end: Date.now() });
          } else {
            // The worker keeps the other nodes: a lost attempt here is not excused by a fault
            // on the worker, so the targets name the node and the link only.
            const node = nodes[Math.floor(fault.pick2 * nodes.length)]!;
            system.net.cut(slot, node);
            await this.hold(fault.ms);
            system.net.heal(slot, node);
            this.record({
              kind: fault.kind,
              targets: [`node:${system.nodes.get(node)!.name}`, `link:${member.name}`],
              start,
              end: Date.now(),
            });
          }
        } finally {
          this.busy.delete(slot);
        }
        return;
      }
      case 'db-restart': {
        if (this.busy.has('db')) return;
        this.busy.add('db');
        try {
          await system.postgres!.stopAsync();
          await this.hold(fault.ms);
          await system.postgres!.startAsync();
          this.record({ kind: fault.kind, targets: ['db'], start, end: Date.now() });
        } finally {
          this.busy.delete('db');
        }
        return;
      }
      case 'disk-full': {
        // Only the SQLite profile's data folder is a disk of its own.
        if (this.busy.has('db') || system.options.store !== 'sqlite') return;
        this.busy.add('db');
        try {
          await system.fillDisk();
          await this.hold(fault.ms);
          system.freeDisk();
          this.record({ kind: fault.kind, targets: ['db'], start, end: Date.now() });
        } finally {
          this.busy.delete('db');
        }
        return;
      }
      case 'rolling-restart': {
        const targets: string[] = [];
        for (const slot of nodes) {
          if (this.stop.signal.aborted) break;
          if (this.busy.has(slot)) continue;
          this.busy.add(slot);
          try {
            const member = system.nodes.get(slot)!;
            targets.push(`node:${member.name}`);
            await system.terminate(member);
            await this.restart(slot, [...targets], fault.kind, start);
          } finally {
            this.busy.delete(slot);
          }
        }
        this.record({ kind: fault.kind, targets, start, end: Date.now() });
        return;
      }
      case 'poison': {
        const node = nodes.find((n) => !system.nodes.get(n)!.stopped) ?? nodes[0]!;
        const response = await fetch(`${system.url(node)}/v1/jobs/poison/trigger`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
          body: '{}',
          signal: AbortSignal.timeout(3000),
        }).catch(() => undefined);
        this.record({
          kind: 'poison',
          targets: [],
          start,
          end: Date.now(),
          note: `enqueued: ${response?.status ?? 'no answer'}`,
        });
        return;
      }
    }
  }
}
