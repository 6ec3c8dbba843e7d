// One contestant run: a fresh store, a client process, the chosen scenarios in order, teardown.
import { FAST_RECOVERY_QUEUE } from './contestant.ts';
import { loadContestant } from './contestants/index.ts';
import { serviceSettings } from './environment.ts';
import { spawnChild } from './processes.ts';
import { nodeFor } from './runtime.ts';
import { type CrashResult, crash } from './scenarios/crash.ts';
import { type DrainResult, drain } from './scenarios/drain.ts';
import { type LatencyResult, latency } from './scenarios/latency.ts';
import { type ScheduleResult, schedule } from './scenarios/schedule.ts';
import { type SteadyResult, steady } from './scenarios/steady.ts';
import { type Phases, Timings } from './timings.ts';
import { message } from './util.ts';
import type { RunContext } from './workers.ts';

/** The scenarios, in the order they run, each on a queue of its name. The schedule scenario comes last,
 * so that its 1,000 schedules need not be removed before a later scenario (the store is dropped after
 * the run). `crash-tuned` is the worker crash with each contestant's settings for fast recovery. */
export const SCENARIOS = [
  'drain',
  'large-drain',
  'steady',
  'latency',
  'crash',
  FAST_RECOVERY_QUEUE,
  'schedule',
] as const;
/** One of {@link SCENARIOS}. */
export type ScenarioName = (typeof SCENARIOS)[number];
/** Scenarios that a comparison runs in its first repetition only: each takes up to a minute. */
export const ONCE: readonly ScenarioName[] = ['schedule', 'crash', FAST_RECOVERY_QUEUE];

/** How big each scenario is. */
export interface Sizes {
  drainJobs: number;
  /** Jobs of the `large-drain` scenario (absent in older result files). */
  largeDrainJobs?: number;
  steadySeconds: number;
  latencyRate: number;
  latencySeconds: number;
  schedules: number;
  scheduleSeconds: number;
  crashJobs: number;
  /** How long the crash scenario waits for recovery before it reports "not within". */
  crashLimitSeconds: number;
}

/** What one contestant run produced. */
export interface ContestantRun {
  contestant: string;
  rep: number;
  drain?: DrainResult;
  largeDrain?: DrainResult;
  steady?: SteadyResult;
  latency?: LatencyResult;
  schedule?: ScheduleResult;
  crash?: CrashResult;
  /** The worker crash with the contestant's settings for fast recovery. */
  crashTuned?: CrashResult;
  /** Settings of the contestant's database server (PostgreSQL, Redis), read from the live service
   * before the run's teardown (absent for an embedded store and in older result files). */
  service?: Record<string, string>;
  /** Scenarios the contestant cannot run, with why. */
  unsupported?: Record<string, string>;
  errors: string[];
  /** Wall time per phase: setup, client start, each scenario (worker starts and stops included, and
   * also added up apart), teardown. */
  phases?: Phases;
}

/** Options that are the same for every run. */
export interface RunOptions {
  sizes: Sizes;
  scenarios: readonly ScenarioName[];
  /** Worker processes per scenario. */
  workers: number;
  /** Extra environment for the child processes. */
  extra: Record<string, string>;
}

/** Runs `options.scenarios` for contestant `name` on a fresh store; a failing scenario is recorded in
 * `errors` and the next one still runs. */
export async function runContestant(name: string, rep: number, options: RunOptions): Promise<ContestantRun> {
  const run: ContestantRun = { contestant: name, rep, errors: [] };
  const timings = new Timings();
  try {
    await scenarios(run, timings, options);
  } finally {
    run.phases = timings.phases();
  }
  return run;
}

async function scenarios(run: ContestantRun, timings: Timings, options: RunOptions): Promise<void> {
  const contestant = await loadContestant(run.contestant);
  const env = await timings.time('setup', () => contestant.setup([...SCENARIOS]));
  try {
    const execPath = nodeFor(contestant.runtime);
    const client = await timings.time('client start', () =>
      spawnChild({
        execPath,
        role: 'client',
        contestant: run.contestant,
        env,
        queues: [...SCENARIOS],
        extra: options.extra,
      }),
    );
    const ctx: RunContext = {
      contestant,
      env,
      client,
      execPath,
      workers: options.workers,
      extra: options.extra,
      spawned: [],
      timings,
    };
    const { sizes } = options;
    // The schedules are removed only where a scenario still runs on the store after theirs.
    const removeSchedules = options.scenarios.indexOf('schedule') < options.scenarios.length - 1;
    try {
      // Each scenario runs alone: no other measurement, and no idle wait of another, shares its time.
      for (const scenario of options.scenarios) {
        await timings.time(scenario, async () => {
          try {
            await runScenario(run, ctx, sizes, scenario, removeSchedules);
          } catch (error) {
            run.errors.push(`${scenario}: ${message(error)}`);
          } finally {
            // Worker processes a failed scenario left behind.
            await Promise.all(ctx.spawned.splice(0).map((child) => child.stop(5000)));
          }
        });
      }
    } finally {
      await timings.time('teardown', () => client.stop());
    }
  } finally {
    if (contestant.server) run.service = await serviceSettings(contestant.server);
    await timings.time('teardown', () => contestant.teardown());
  }
}

async function runScenario(
  run: ContestantRun,
  ctx: RunContext,
  sizes: Sizes,
  scenario: ScenarioName,
  removeSchedules: boolean,
): Promise<void> {
  const { contestant } = ctx;
  const unsupported = (why: string) => {
    run.unsupported = { ...run.unsupported, [scenario]: why };
  };
  switch (scenario) {
    case 'drain':
      run.drain = await drain(ctx, sizes.drainJobs);
      return;
    case 'large-drain':
      if (sizes.largeDrainJobs) run.largeDrain = await drain(ctx, sizes.largeDrainJobs, 'large-drain');
      return;
    case 'steady':
      run.steady = await steady(ctx, sizes.steadySeconds);
      return;
    case 'latency':
      run.latency = await latency(ctx, sizes.latencyRate, sizes.latencySeconds);
      return;
    case 'crash':
      run.crash = await crash(ctx, sizes.crashJobs, sizes.crashLimitSeconds);
      return;
    case FAST_RECOVERY_QUEUE:
      if ('unavailable' in contestant.fastRecovery) unsupported(contestant.fastRecovery.unavailable);
      else run.crashTuned = await crash(ctx, sizes.crashJobs, sizes.crashLimitSeconds, FAST_RECOVERY_QUEUE);
      return;
    case 'schedule':
      if (contestant.schedules)
        run.schedule = await schedule(ctx, sizes.schedules, sizes.scheduleSeconds, removeSchedules);
      else unsupported('no schedules finer than a minute');
      return;
  }
}
