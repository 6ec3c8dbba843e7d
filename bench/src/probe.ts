// The benchmark's handler, inside a worker process: counts every call, remembers which jobs ran, and
// records enqueue → handler start for jobs that carry their enqueue instant.
import type { Payload } from './contestant.ts';
import { now } from './util.ts';

/** What a worker process saw. */
export interface ProbeReport {
  /** Handler calls, duplicates included. */
  calls: number;
  /** Job numbers that ran at least once. */
  ids: number[];
  /** Enqueue → handler start, in milliseconds, one per call that carried `t`. */
  latencies: number[];
  /** Scheduled jobs: `[schedule number, nominal fire time, handler start − fire time]`, one per call. */
  fires: [number, number, number][];
  /** The instant (epoch ms) each distinct job first started, where the probe records them. */
  starts: number[];
}

function isPayload(value: unknown): value is Payload {
  return typeof value === 'object' && value !== null && typeof (value as { i?: unknown }).i === 'number';
}

/** Records handler calls; `handle` is the no-op handler given to the contestant's consumer. */
export class Probe {
  private calls = 0;
  private readonly seen = new Set<number>();
  private readonly latencies: number[] = [];
  private readonly fires: [number, number, number][] = [];
  private readonly starts: number[] = [];
  private malformed = 0;

  /** `hang`: every handler call stays in flight forever (the doomed worker of the crash scenario).
   * `recordStarts`: remember when each distinct job first started (the drain's steady-state rate). */
  constructor(
    private readonly hang = false,
    private readonly recordStarts = false,
  ) {}

  /** The handler body: one call per job run. */
  readonly handle = (payload: unknown, fireTime?: number): void | Promise<void> => {
    const start = now();
    this.calls++;
    if (!isPayload(payload)) {
      this.malformed++;
      return;
    }
    if (this.recordStarts && !this.seen.has(payload.i)) this.starts.push(start);
    this.seen.add(payload.i);
    if (typeof payload.t === 'number') this.latencies.push(start - payload.t);
    if (fireTime !== undefined) this.fires.push([payload.i, fireTime, start - fireTime]);
    if (this.hang) return new Promise<void>(() => {});
  };

  /** Distinct jobs that ran so far. */
  distinct(): number {
    return this.seen.size;
  }

  /** The schedule numbers that fired at a nominal instant at or after `since` (epoch ms). */
  firedSince(since: number): number[] {
    return [...new Set(this.fires.filter(([, fireTime]) => fireTime >= since).map(([i]) => i))];
  }

  /** Everything seen so far. */
  report(): ProbeReport & { malformed: number } {
    return {
      calls: this.calls,
      ids: [...this.seen],
      latencies: this.latencies,
      fires: this.fires,
      starts: this.starts,
      malformed: this.malformed,
    };
  }
}
