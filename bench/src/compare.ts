// `--all` / `--only`: every scenario for every chosen contestant, repeated, contestants alternating.
import { performance } from 'node:perf_hooks';
import { ceiling } from './ceiling.ts';
import { loadContestant } from './contestants/index.ts';
import { describeContestants, machine, services } from './environment.ts';
import { failover } from './failover.ts';
import { summarise } from './figures.ts';
import { IdleWork } from './idle.ts';
import { type ComparisonResult, markdownTable, writeComparison } from './report.ts';
import { type ContestantRun, ONCE, runContestant, type ScenarioName, type Sizes } from './run.ts';
import { scale } from './scale.ts';
import { suitsWindow } from './scenarios/schedule.ts';
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
      `schedule p99 ${run.schedule.p99} ms missed ${run.schedule.missing} doubled ${run.schedule.duplicates}` +
        (run.schedule.offSchedule ? ` off-schedule ${run.schedule.offSchedule}` : ''),
    run.crash && `crash ${run.crash.complete ? `${run.crash.seconds} s` : `> ${run.crash.limitSeconds} s`}`,
    ...run.errors.map((e) => `ERROR ${e}`),
  ];
  return parts.filter(Boolean).join(' · ');
}

/** One contestant run: a fresh store and the scenarios run on it. */
interface Unit {
  name: string;
  rep: number;
  scenarios: ScenarioName[];
  /** For a deferred run: the run of the same contestant that comes first. */
  after?: Unit | undefined;
}

/** From a once-only run's start to the earliest opening of its schedule window: a fresh store and
 * client, the crash scenario up to its kill, the schedule workers, the schedules' creation and the
 * window's 3 s settling (6–8 s measured); the estimate may be off by {@link ONCE_LEAD_ERROR_MS}. */
const ONCE_LEAD_MS = 8000;
const ONCE_LEAD_ERROR_MS = 3000;
/** How long a once-only run may wait for its window's minute when another run could go first. */
const ONCE_MAX_WAIT_MS = 5000;
/** How long a per-minute contestant takes to run its minute's fires, at most (pg-boss: up to 11 s). */
const MINUTE_FIRES_S = 12;
/** Runs that must be left for a once-only run to wait for room after its minute as well. */
const ROOM_RUNS_LEFT = 6;

/** The runs in order: repetition r starts with the r-th contestant. In the first repetition a
 * contestant's once-only scenarios (schedule, crash) run on the same store after its other scenarios,
 * except where its schedules fire once a minute: those run on a fresh store of their own, deferred
 * until the clock suits their window. */
async function plan(options: CompareOptions): Promise<{ regular: Unit[]; deferred: Unit[] }> {
  const regular: Unit[] = [];
  const deferred: Unit[] = [];
  for (let rep = 1; rep <= options.reps; rep++) {
    const shift = (rep - 1) % options.contestants.length;
    const order = [...options.contestants.slice(shift), ...options.contestants.slice(0, shift)];
    for (const name of order) {
      const scenarios =
        rep === 1 ? [...options.scenarios] : options.scenarios.filter((s) => !ONCE.includes(s));
      // A contestant that does not load fails in its run, as before, recorded there.
      const period = await loadContestant(name).then(
        (contestant) => contestant.schedules?.periodMs ?? 0,
        () => 0,
      );
      const perMinute = period >= 60_000;
      if (rep === 1 && perMinute && scenarios.includes('schedule')) {
        const speed = scenarios.filter((s) => !ONCE.includes(s));
        const first = speed.length ? { name, rep, scenarios: speed } : undefined;
        if (first) regular.push(first);
        deferred.push({ name, rep, scenarios: scenarios.filter((s) => ONCE.includes(s)), after: first });
      } else if (scenarios.length) regular.push({ name, rep, scenarios });
    }
  }
  return { regular, deferred };
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
        // pgbench 10 s, redis-benchmark 5 s, the database's creation and initialisation: 16 s measured.
        seconds: 20,
        run: async () => {
          extras.ceiling = await section('ceiling', () => ceiling(timings));
        },
      },
    ].filter((task) => options.extras.includes(task.name)),
  );
  const runs: ContestantRun[] = [];
  const runUnit = async ({ name, rep, scenarios }: Unit) => {
    const t0 = performance.now();
    let run: ContestantRun;
    try {
      run = await runContestant(name, rep, {
        sizes: options.sizes,
        scenarios,
        workers: options.workers,
        extra: {},
        idle,
      });
    } catch (error) {
      run = { contestant: name, rep, errors: [`setup: ${message(error)}`] };
    }
    runs.push(run);
    const seconds = ((performance.now() - t0) / 1000).toFixed(0);
    const what = scenarios.join(', ');
    console.log(
      `rep ${rep}/${options.reps} ${name.padEnd(16)} ${seconds.padStart(3)} s  [${what}]  ${line(run)}`,
    );
    if (run.phases) console.log(`    ${describePhases(run.phases)}`);
  };
  const { regular, deferred } = await plan(options);
  // A per-minute contestant's once-only run (fresh store: crash and schedule scenarios) starts when its
  // window would open without waiting long for its minute; until then the regular runs go on (each
  // moves the clock on by about half a minute), and it waits only when none is left.
  const ran = new Set<Unit>();
  // While once-only sections wait for idle time, and enough runs are left to wait for the clock, the
  // window is also to leave the largest of them room after its minute's fires.
  const suits = () =>
    suitsWindow(Date.now() + ONCE_LEAD_MS, 60_000, options.sizes.scheduleSeconds * 1000, {
      maxWaitMs: ONCE_MAX_WAIT_MS,
      errorMs: ONCE_LEAD_ERROR_MS,
      roomMs:
        regular.length >= ROOM_RUNS_LEFT && idle.largestPending()
          ? (idle.largestPending() + MINUTE_FIRES_S) * 1000
          : 0,
    });
  while (regular.length || deferred.length) {
    const eligible = deferred.filter((unit) => !unit.after || ran.has(unit.after));
    let unit: Unit | undefined;
    if (eligible.length && (regular.length === 0 || suits())) unit = eligible[0]!;
    else {
      for (const waiting of eligible)
        console.log(
          `    ${waiting.name}'s once-only run waits for its window's time of the minute: another run goes first`,
        );
      unit = regular[0];
    }
    if (!unit) break;
    const from = deferred.includes(unit) ? deferred : regular;
    from.splice(from.indexOf(unit), 1);
    await runUnit(unit);
    ran.add(unit);
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
