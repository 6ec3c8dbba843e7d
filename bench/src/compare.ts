// `--all` / `--only`: every scenario for every chosen contestant, repeated, contestants alternating.
import { performance } from 'node:perf_hooks';
import { ceiling } from './ceiling.ts';
import { describeContestants, machine, services } from './environment.ts';
import { failover } from './failover.ts';
import { summarise } from './figures.ts';
import { IdleWork } from './idle.ts';
import { type ComparisonResult, markdownTable, writeComparison } from './report.ts';
import { type ContestantRun, ONCE, runContestant, type ScenarioName, type Sizes } from './run.ts';
import { scale } from './scale.ts';
import { describePhases, Timings } from './timings.ts';
import { message } from './util.ts';

/** The Kairos-only and machine sections that run once after the contestants. */
export const EXTRAS = ['failover', 'scale', 'ceiling'] as const;
export type ExtraName = (typeof EXTRAS)[number];

/** How a comparison is run. */
export interface CompareOptions {
  contestants: string[];
  scenarios: readonly ScenarioName[];
  reps: number;
  quick: boolean;
  workers: number;
  sizes: Sizes;
  extras: readonly ExtraName[];
}

function line(run: ContestantRun): string {
  const parts = [
    run.drain && `drain ${run.drain.enqueuePerSecond}/${run.drain.processPerSecond} jobs/s`,
    run.steady &&
      `steady ${run.steady.completedPerSecond} jobs/s p50 ${run.steady.p50} p99 ${run.steady.p99} ms`,
    run.latency && `latency p50 ${run.latency.p50} p99 ${run.latency.p99} ms`,
    run.schedule &&
      `schedule p99 ${run.schedule.p99} ms missed ${run.schedule.missing} doubled ${run.schedule.duplicates}`,
    run.crash && `crash ${run.crash.complete ? `${run.crash.seconds} s` : `> ${run.crash.limitSeconds} s`}`,
    ...run.errors.map((e) => `ERROR ${e}`),
  ];
  return parts.filter(Boolean).join(' · ');
}

/** Runs the comparison, writes its results and prints the table. Repetition r starts with the r-th
 * contestant, so that no contestant always runs first (on a cold machine) or right after the same one. */
export async function compare(options: CompareOptions): Promise<ComparisonResult> {
  const started = performance.now();
  const contestants = await describeContestants(options.contestants);
  const extras: ComparisonResult['extras'] = {};
  const errors: string[] = [];
  const timings = new Timings();
  const section = async <T>(name: ExtraName, work: () => Promise<T>): Promise<T | undefined> => {
    const t0 = performance.now();
    try {
      return await timings.time(name, work);
    } catch (error) {
      errors.push(`${name}: ${message(error)}`);
      return undefined;
    } finally {
      console.log(`${name.padEnd(24)} ${((performance.now() - t0) / 1000).toFixed(0).padStart(3)} s`);
    }
  };
  // The failover and ceiling sections run in the idle part of a per-minute schedule window, or in the
  // scale section's wait for its storm, where they fit (see idle.ts), else at the end.
  const idle = new IdleWork(
    [
      {
        name: 'failover' as const,
        seconds: options.quick ? 20 : 35,
        run: async () => {
          extras.failover = await section('failover', () => failover(options.quick ? 1 : 3, timings));
        },
      },
      {
        name: 'ceiling' as const,
        seconds: 25,
        run: async () => {
          extras.ceiling = await section('ceiling', () => ceiling(timings));
        },
      },
    ].filter((task) => options.extras.includes(task.name)),
  );
  const runs: ContestantRun[] = [];
  for (let rep = 1; rep <= options.reps; rep++) {
    const shift = (rep - 1) % options.contestants.length;
    const order = [...options.contestants.slice(shift), ...options.contestants.slice(0, shift)];
    for (const name of order) {
      const t0 = performance.now();
      let run: ContestantRun;
      try {
        run = await runContestant(name, rep, {
          sizes: options.sizes,
          scenarios: rep === 1 ? options.scenarios : options.scenarios.filter((s) => !ONCE.includes(s)),
          workers: options.workers,
          extra: {},
          idle,
        });
      } catch (error) {
        run = { contestant: name, rep, errors: [`setup: ${message(error)}`] };
      }
      runs.push(run);
      const seconds = ((performance.now() - t0) / 1000).toFixed(0);
      console.log(`rep ${rep}/${options.reps} ${name.padEnd(16)} ${seconds.padStart(3)} s  ${line(run)}`);
      if (run.phases) console.log(`    ${describePhases(run.phases)}`);
    }
  }
  if (options.extras.includes('scale'))
    extras.scale = await section('scale', () => scale(options.quick ? 10_000 : 100_000, timings, idle));
  await idle.drain();
  if (errors.length) extras.errors = errors;
  extras.phases = timings.phases();
  if (Object.keys(extras.phases).length) console.log(`    ${describePhases(extras.phases)}`);
  const result: ComparisonResult = {
    date: new Date().toISOString(),
    quick: options.quick,
    reps: options.reps,
    workers: options.workers,
    sizes: options.sizes,
    machine: machine(),
    services: await services(options.contestants),
    contestants,
    runs,
    summary: summarise(runs, options.sizes.latencyRate),
    extras,
    seconds: (performance.now() - started) / 1000,
  };
  const paths = writeComparison(result);
  console.log(`\n${markdownTable(result)}\n\nwrote ${paths.json}\n  and ${paths.md}`);
  return result;
}
