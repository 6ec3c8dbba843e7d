// `--all` / `--only`: every scenario for every chosen contestant, repeated, contestants alternating.
import { performance } from 'node:perf_hooks';
import { ceiling } from './ceiling.ts';
import { loadContestant } from './contestants/index.ts';
import { describeContestants, machine } from './environment.ts';
import { failover } from './failover.ts';
import { summarise } from './figures.ts';
import { IdleWork } from './idle.ts';
import { contestantOrders } from './order.ts';
import { type ComparisonResult, markdownTable, writeComparison } from './report.ts';
import { source } from './results.ts';
import { type ContestantRun, ONCE, runContestant, type ScenarioName, type Sizes } from './run.ts';
import { scale } from './scale.ts';
import { waitToSuit } from './scenarios/schedule.ts';
import { describePhases, Timings } from './timings.ts';
import { message } from './util.ts';

/** Each contestant's service settings, as its first run read them before its teardown. */
function firstServices(runs: ContestantRun[]): Record<string, Record<string, string>> {
  const found: Record<string, Record<string, string>> = {};
  for (const run of runs) if (run.service && !found[run.contestant]) found[run.contestant] = run.service;
  return found;
}

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
  /** Seed of the contestants' order in each repetition (see order.ts). */
  seed: number;
}

function line(run: ContestantRun): string {
  const parts = [
    run.drain &&
      `drain ${run.drain.enqueuePerSecond}/${run.drain.processPerSecond} jobs/s (10–90 % ${run.drain.steadyPerSecond})`,
    run.largeDrain &&
      `large drain ${run.largeDrain.enqueuePerSecond}/${run.largeDrain.processPerSecond} jobs/s (10–90 % ${run.largeDrain.steadyPerSecond})`,
    run.steady &&
      `steady ${run.steady.completedPerSecond} jobs/s p50 ${run.steady.p50} p99 ${run.steady.p99} ms`,
    run.latency && `latency p50 ${run.latency.p50} p99 ${run.latency.p99} ms`,
    run.schedule &&
      `schedule p99 ${run.schedule.p99} ms missed ${run.schedule.missing} doubled ${run.schedule.duplicates}` +
        (run.schedule.offSchedule ? ` off-schedule ${run.schedule.offSchedule}` : ''),
    run.crash && `crash ${run.crash.complete ? `${run.crash.seconds} s` : `> ${run.crash.limitSeconds} s`}`,
    run.crashTuned &&
      `crash, tuned ${run.crashTuned.complete ? `${run.crashTuned.seconds} s` : `> ${run.crashTuned.limitSeconds} s`}`,
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

/** From a per-minute contestant's schedule run's start to the earliest opening of its window: a fresh
 * store and client, the schedule workers, the schedules' creation and the window's 3 s settling. An
 * estimate: 6–8 s were measured when such a run also held the crash scenario up to its kill (2–3 s of
 * it), which it no longer does; it may be off by {@link ONCE_LEAD_ERROR_MS}. */
const ONCE_LEAD_MS = 6000;
const ONCE_LEAD_ERROR_MS = 3000;
/** How long a schedule run may wait for its window's minute when another run could go first. */
const ONCE_MAX_WAIT_MS = 5000;
/** A schedule run waits this long at most, between two other runs, for the clock to suit it. */
const SUIT_WAIT_MS = 15_000;

/** The runs in order: repetition r runs the contestants in `orders[r − 1]`. In the first repetition
 * a contestant's once-only scenarios (crash, crash-tuned, schedule) run on the same store after its
 * other scenarios, except where its schedules fire once a minute: its schedule scenario runs on a
 * fresh store of its own, deferred until the clock suits its window. */
async function plan(
  options: CompareOptions,
  orders: string[][],
): Promise<{ regular: Unit[]; deferred: Unit[] }> {
  const regular: Unit[] = [];
  const deferred: Unit[] = [];
  for (const [index, order] of orders.entries()) {
    const rep = index + 1;
    for (const name of order) {
      const scenarios =
        rep === 1 ? [...options.scenarios] : options.scenarios.filter((s) => !ONCE.includes(s));
      // A contestant that does not load fails in its run, as before, recorded there.
      const period = await loadContestant(name).then(
        (contestant) => contestant.schedules?.periodMs ?? 0,
        () => 0,
      );
      if (period >= 60_000 && scenarios.includes('schedule')) {
        const rest = scenarios.filter((s) => s !== 'schedule');
        const first = rest.length ? { name, rep, scenarios: rest } : undefined;
        if (first) regular.push(first);
        deferred.push({ name, rep, scenarios: ['schedule'], after: first });
      } else if (scenarios.length) regular.push({ name, rep, scenarios });
    }
  }
  return { regular, deferred };
}

/** Runs the comparison, writes its results and prints the table. The contestants' order in each
 * repetition is a row of a random Latin square drawn from `options.seed` (see order.ts), so that no
 * contestant always runs first (on a cold machine) or right after the same one. */
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
  // The failover and ceiling sections run in the scale section's wait for its storm, where they fit
  // (see idle.ts), else at the end; never while a contestant's scenario runs.
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
  const orders = contestantOrders(options.contestants, options.reps, options.seed);
  console.log(`contestant order (seed ${options.seed}): ${orders.map((o) => o.join(' ')).join(' | ')}`);
  const { regular, deferred } = await plan(options, orders);
  // A per-minute contestant's schedule run (fresh store) starts when its window would open without
  // waiting long for its minute; until then the regular runs go on (each moves the clock on by about
  // half a minute), and it waits only when none is left.
  const ran = new Set<Unit>();
  // The wait until the clock suits a schedule run, when it is short: a minute has 13 s that suit a
  // 30-s window, and a check only between runs (about half a minute apart) missed them all in a
  // run of 2026-12-06, which then waited for its minutes at the end.
  const suitIn = () =>
    waitToSuit(
      Date.now(),
      ONCE_LEAD_MS,
      60_000,
      options.sizes.scheduleSeconds * 1000,
      { maxWaitMs: ONCE_MAX_WAIT_MS, errorMs: ONCE_LEAD_ERROR_MS },
      SUIT_WAIT_MS,
    );
  while (regular.length || deferred.length) {
    const eligible = deferred.filter((unit) => !unit.after || ran.has(unit.after));
    let unit: Unit | undefined;
    const wait = eligible.length ? (regular.length === 0 ? 0 : suitIn()) : null;
    if (wait !== null) {
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      unit = eligible[0]!;
    } else {
      for (const waiting of eligible)
        console.log(
          `    ${waiting.name}'s schedule run waits for its window's time of the minute: another run goes first`,
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
    order: { seed: options.seed, reps: orders },
    source: source(),
    machine: machine(),
    services: firstServices(runs),
    contestants,
    runs,
    summary: summarise(runs, options.sizes.latencyRate, options.sizes.largeDrainJobs),
    extras,
    seconds: (performance.now() - started) / 1000,
  };
  const paths = writeComparison(result);
  console.log(`\n${markdownTable(result)}\n\nwrote ${paths.json}\n  and ${paths.md}`);
  return result;
}
