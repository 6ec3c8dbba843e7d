// Wall time per phase of a benchmark run (setup, each scenario, process starts and stops, teardown),
// printed with each run and written into the results, so that the time a whole comparison takes can
// be traced to the phases that take it.
import { round } from './stats.ts';
import { now } from './util.ts';

/** Seconds per phase, in the order the phases first ran; a phase that ran more than once adds up. */
export type Phases = Record<string, number>;

/** Adds up the wall time of named phases. */
export class Timings {
  private readonly ms = new Map<string, number>();

  /** Runs `work` and adds its wall time to `phase`, whether it succeeds or throws. */
  async time<T>(phase: string, work: () => Promise<T>): Promise<T> {
    const start = now();
    try {
      return await work();
    } finally {
      this.add(phase, now() - start);
    }
  }

  /** Adds `ms` milliseconds to `phase`. */
  add(phase: string, ms: number): void {
    this.ms.set(phase, (this.ms.get(phase) ?? 0) + ms);
  }

  /** The phases so far, in seconds (two decimals). */
  phases(): Phases {
    return Object.fromEntries([...this.ms].map(([phase, ms]) => [phase, round(ms / 1000)]));
  }
}

/** `setup 1.2 s · drain 4.0 s · …` */
export function describePhases(phases: Phases): string {
  return Object.entries(phases)
    .map(([phase, seconds]) => `${phase} ${seconds.toFixed(1)} s`)
    .join(' · ');
}
