// The figures of the comparison, how to read each from a run, and their spread over the repetitions.
import type { ContestantRun, ScenarioName } from './run.ts';
import type { DrainResult } from './scenarios/drain.ts';
import { round, type Spread, spread } from './stats.ts';

/** One reported figure. */
export interface Figure {
  key: string;
  /** The scenario it comes from. */
  scenario: ScenarioName;
  label: string;
  unit: 'jobs/s' | 'ms' | 's' | 'count';
  better: 'higher' | 'lower';
  read(run: ContestantRun): number | undefined;
}

/** Every figure, in table order. `rate` is the fixed rate of the latency scenario; `large` the jobs of
 * the large drain (100,000). */
export function figures(rate: number, large = 100_000): Figure[] {
  const make =
    (unit: Figure['unit'], better: Figure['better']) =>
    (key: string, label: string, read: Figure['read']): Figure => ({
      key,
      scenario: scenarioOf(key),
      label,
      unit,
      better,
      read,
    });
  const jobs = make('jobs/s', 'higher');
  const ms = make('ms', 'lower');
  const count = make('count', 'lower');
  const seconds = make('s', 'lower');
  const n = large.toLocaleString('en-US');
  return [
    jobs('drain.enqueuePerSecond', 'drain: enqueue, bulk API (jobs/s)', (r) => r.drain?.enqueuePerSecond),
    jobs('drain.processPerSecond', 'drain: process (jobs/s)', (r) => r.drain?.processPerSecond),
    jobs(
      'drain.steadyPerSecond',
      'drain: process, 10 %→90 % of starts (jobs/s)',
      (r) => r.drain?.steadyPerSecond,
    ),
    ms('drain.nodeCpuMsPer1k', `drain: node CPU per 1,000 jobs (ms)`, (r) => r.drain?.nodeCpuMsPer1k),
    ms(
      'drain.workersCpuMsPer1k',
      `drain: worker processes CPU per 1,000 jobs (ms)`,
      (r) => r.drain?.workersCpuMsPer1k,
    ),
    ms(
      'drain.serverCpuMsPer1k',
      'drain: database server CPU per 1,000 jobs (ms)',
      (r) => r.drain?.serverCpuMsPer1k,
    ),
    ms('drain.totalCpuMsPer1k', `drain: CPU per 1,000 jobs, all of it (ms)`, (r) => totalCpu(r.drain)),
    jobs(
      'largeDrain.enqueuePerSecond',
      `drain ${n}: enqueue, bulk API (jobs/s)`,
      (r) => r.largeDrain?.enqueuePerSecond,
    ),
    jobs(
      'largeDrain.processPerSecond',
      `drain ${n}: process (jobs/s)`,
      (r) => r.largeDrain?.processPerSecond,
    ),
    jobs(
      'largeDrain.steadyPerSecond',
      `drain ${n}: process, 10 %→90 % of starts (jobs/s)`,
      (r) => r.largeDrain?.steadyPerSecond,
    ),
    ms(
      'largeDrain.nodeCpuMsPer1k',
      `drain ${n}: node CPU per 1,000 jobs (ms)`,
      (r) => r.largeDrain?.nodeCpuMsPer1k,
    ),
    ms(
      'largeDrain.workersCpuMsPer1k',
      `drain ${n}: worker processes CPU per 1,000 jobs (ms)`,
      (r) => r.largeDrain?.workersCpuMsPer1k,
    ),
    ms(
      'largeDrain.serverCpuMsPer1k',
      `drain ${n}: database server CPU per 1,000 jobs (ms)`,
      (r) => r.largeDrain?.serverCpuMsPer1k,
    ),
    ms('largeDrain.totalCpuMsPer1k', `drain ${n}: CPU per 1,000 jobs, all of it (ms)`, (r) =>
      totalCpu(r.largeDrain),
    ),
    jobs(
      'steady.enqueuePerSecond',
      'steady: enqueued one by one (jobs/s)',
      (r) => r.steady?.enqueuePerSecond,
    ),
    jobs('steady.completedPerSecond', 'steady: completed (jobs/s)', (r) => r.steady?.completedPerSecond),
    ms('steady.nodeCpuMsPer1k', 'steady: node CPU per 1,000 jobs (ms)', (r) => r.steady?.nodeCpuMsPer1k),
    ms(
      'steady.workersCpuMsPer1k',
      'steady: worker processes CPU per 1,000 jobs (ms)',
      (r) => r.steady?.workersCpuMsPer1k,
    ),
    ms('steady.p50', 'steady: enqueue → start p50 (ms)', (r) => r.steady?.p50),
    ms('steady.p99', 'steady: enqueue → start p99 (ms)', (r) => r.steady?.p99),
    ms('latency.p50', `${rate} jobs/s: enqueue → start p50 (ms)`, (r) => r.latency?.p50),
    ms('latency.p95', `${rate} jobs/s: enqueue → start p95 (ms)`, (r) => r.latency?.p95),
    ms('latency.p99', `${rate} jobs/s: enqueue → start p99 (ms)`, (r) => r.latency?.p99),
    ms('latency.max', `${rate} jobs/s: enqueue → start max (ms)`, (r) => r.latency?.max),
    ms('schedule.p50', 'schedules: fire → start lateness p50 (ms)', (r) => r.schedule?.p50),
    ms('schedule.p99', 'schedules: fire → start lateness p99 (ms)', (r) => r.schedule?.p99),
    ms('schedule.max', 'schedules: fire → start lateness max (ms)', (r) => r.schedule?.max),
    count('schedule.missing', 'schedules: fires missed', (r) => r.schedule?.missing),
    count('schedule.duplicates', 'schedules: fires doubled', (r) => r.schedule?.duplicates),
    seconds(
      'crash.seconds',
      'worker kill -9, defaults: its jobs done elsewhere after (s)',
      (r) => r.crash?.seconds,
    ),
    seconds(
      'crashTuned.seconds',
      'worker kill -9, fast-recovery settings: its jobs done elsewhere after (s)',
      (r) => r.crashTuned?.seconds,
    ),
  ];
}

/** A drain's CPU per 1,000 jobs in every process that serves it: the node (where there is one),
 * the workers and the database server (where it is one); undefined without the workers' figure. */
function totalCpu(drain: DrainResult | undefined): number | undefined {
  if (drain?.workersCpuMsPer1k === undefined) return undefined;
  const sum = (drain.nodeCpuMsPer1k ?? 0) + drain.workersCpuMsPer1k + (drain.serverCpuMsPer1k ?? 0);
  return round(sum, 1);
}

/** The scenario of a figure's key (`largeDrain.…` → `large-drain`). */
function scenarioOf(key: string): ScenarioName {
  const field = key.split('.')[0]!;
  if (field === 'largeDrain') return 'large-drain';
  if (field === 'crashTuned') return 'crash-tuned';
  return field as ScenarioName;
}

/** Jobs lost and run twice, summed over every scenario and repetition of one contestant. */
export interface Integrity {
  missing: number;
  duplicates: number;
  incomplete: number;
  errors: number;
}

/** The summary of one contestant: each figure's spread, and its integrity counts. */
export interface Summary {
  figures: Record<string, Spread | undefined>;
  integrity: Integrity;
}

/** Summarises the runs of each contestant. */
export function summarise(runs: ContestantRun[], rate: number, large?: number): Record<string, Summary> {
  const summary: Record<string, Summary> = {};
  for (const name of new Set(runs.map((r) => r.contestant))) {
    const mine = runs.filter((r) => r.contestant === name);
    // The crash scenario's lost jobs are its measurement (recovery not within the limit), not a fault.
    const parts = mine
      .flatMap((r) => [r.drain, r.largeDrain, r.steady, r.latency, r.schedule])
      .filter((p) => p !== undefined);
    summary[name] = {
      figures: Object.fromEntries(
        figures(rate, large).map((f) => [f.key, spread(mine.map((r) => f.read(r) ?? Number.NaN))]),
      ),
      integrity: {
        missing: parts.reduce((sum, p) => sum + p.missing, 0),
        duplicates: parts.reduce((sum, p) => sum + p.duplicates, 0),
        incomplete: parts.filter((p) => !p.complete).length,
        errors: mine.reduce((sum, r) => sum + r.errors.length, 0),
      },
    };
  }
  return summary;
}
