import { appendFileSync, existsSync, readFileSync } from 'node:fs';

/**
 * The chaos history: one JSON object per line, appended by every process of a run. Workers write
 * `exec` when a handler starts and `end` when it returns; the producer writes `ack` for every
 * enqueue the API acknowledged; the nemesis writes `fault` when it heals a fault (or at the end);
 * every process writes `stall` when its stall probe woke late (`stall-probe.ts`), and the harness
 * writes a `load` sample of the machine every second.
 * Each line is one `write` on a file opened for appending, so lines of different processes never
 * interleave, and a process killed with -9 loses at most the line it had not written yet.
 */
export type HistoryEvent = ExecEvent | EndEvent | AckEvent | FaultEvent | StallEvent | LoadEvent;

/** A handler started: one execution of (run, attempt). */
export interface ExecEvent {
  t: 'exec';
  runId: number;
  attempt: number;
  job: string;
  fireTime: number | null;
  /** The worker process's name (`w1-g0`): the nemesis names its targets the same way. */
  worker: string;
  at: number;
  /** A workflow step's run: its instance and step (test/chaos/workflows-chaos.test.ts). */
  workflow?: { instanceId: number; step: string };
}

/** A handler returned (`ok`) or threw. */
export interface EndEvent {
  t: 'end';
  runId: number;
  attempt: number;
  worker: string;
  at: number;
  ok: boolean;
}

/** The API acknowledged an enqueue (2xx) with this run id. */
export interface AckEvent {
  t: 'ack';
  runId: number;
  job: string;
  at: number;
}

/**
 * A fault the nemesis injected. `targets` name what it hit: `node:n1-g0`, `worker:w2-g1`, `db`;
 * `end` is null for a fault that was never healed (a kill whose process was not restarted).
 */
export interface FaultEvent {
  t: 'fault';
  kind: string;
  targets: string[];
  start: number;
  end: number | null;
  note?: string;
}

/**
 * A process ran none of its timers from `start` to `end` (wall clock, ms): its stall probe, due
 * every 100 ms, woke that late. Of the gap, its main thread spent `cpuMs` on a CPU (its own work:
 * a blocking handler, GC, loading code) and `waitMs` runnable but waiting for a CPU (the machine
 * did not schedule it; null where the kernel does not say). The rest it was neither: stopped
 * (SIGSTOP) or blocked in the kernel (disk, page faults).
 */
export interface StallEvent {
  t: 'stall';
  /** `n1-g0`, `w2-g1` (as the nemesis names its targets), or `harness`. */
  process: string;
  start: number;
  end: number;
  cpuMs: number;
  waitMs: number | null;
}

/**
 * The machine, sampled by the harness every second: the 1-minute load average and the share of
 * the last interval in which some task waited for a CPU (`cpuSomePct`) or for I/O (`ioSomePct`),
 * from /proc/pressure (null where the kernel has no pressure stall information).
 */
export interface LoadEvent {
  t: 'load';
  at: number;
  load1: number;
  cpuSomePct: number | null;
  ioSomePct: number | null;
}

export function appendEvent(file: string, event: HistoryEvent): void {
  appendFileSync(file, `${JSON.stringify(event)}\n`);
}

/** Reads a history file; a torn last line (a writer killed mid-write) is skipped. */
export function readEvents(file: string): HistoryEvent[] {
  if (!existsSync(file)) return [];
  const events: HistoryEvent[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      events.push(JSON.parse(line) as HistoryEvent);
    } catch {
      // a torn line
    }
  }
  return events;
}
