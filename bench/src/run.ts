// One contestant run: a fresh store, a client process, the chosen scenarios in order, teardown.
import { loadContestant } from './contestants/index.ts';
import type { IdleWork } from './idle.ts';
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

/** The scenarios, in the order they run. The schedule scenario comes last, so that its 1,000 schedules
 * need not be removed before a later scenario (the store is dropped after the run). */
export const SCENARIOS = ['drain', 'steady', 'latency', 'crash', 'schedule'] as const;
/** One of {@link SCENARIOS}. */
export type ScenarioName = (typeof SCENARIOS)[number];
/** Scenarios that a comparison runs in its first repetition only: each takes a minute. */
export const ONCE: readonly ScenarioName[] = ['schedule', 'crash'];

/** How big each scenario is. */
export interface Sizes {
  drainJobs: number;
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
  steady?: SteadyResult;
  latency?: LatencyResult;
  schedule?: ScheduleResult;
  crash?: CrashResult;
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
  /** Once-only sections that may run in the idle part of a per-minute schedule window. */
  idle?: IdleWork;
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
      idle: options.idle,
    };
    const { sizes } = options;
    // A contestant that cannot recover a dead worker's jobs within the crash scenario's limit leaves
    // that wait idle: the schedule scenario runs in it instead of after it.
    const alongside =
      options.scenarios.includes('crash') &&
      options.scenarios.includes('schedule') &&
      contestant.recoverySeconds > sizes.crashLimitSeconds;
    const phases = options.scenarios.filter((s) => !(alongside && s === 'schedule'));
    // The schedules are removed only where a scenario still runs on the store after theirs.
    const home = alongside ? 'crash' : 'schedule';
    const removeSchedules = phases.indexOf(home) < phases.length - 1;
    const runSchedule = async () => {
      if (contestant.schedules)
        run.schedule = await schedule(ctx, sizes.schedules, sizes.scheduleSeconds, removeSchedules);
      else run.unsupported = { ...run.unsupported, schedule: 'no schedules finer than a minute' };
    };
    try {
      for (const scenario of phases) {
        const phase = alongside && scenario === 'crash' ? 'crash + schedule' : scenario;
        await timings.time(phase, async () => {
          try {
            if (scenario === 'drain') run.drain = await drain(ctx, sizes.drainJobs);
            if (scenario === 'steady') run.steady = await steady(ctx, sizes.steadySeconds);
            if (scenario === 'latency')
              run.latency = await latency(ctx, sizes.latencyRate, sizes.latencySeconds);
            if (scenario === 'schedule') await runSchedule();
            if (scenario === 'crash') {
              let scheduled = false;
              const meanwhile = async () => {
                scheduled = true;
                await runSchedule().catch((error: unknown) => {
                  run.errors.push(`schedule: ${message(error)}`);
                });
              };
              try {
                run.crash = await crash(
                  ctx,
                  sizes.crashJobs,
                  sizes.crashLimitSeconds,
                  alongside ? meanwhile : undefined,
                );
              } finally {
                // A crash scenario that failed before its kill did not start the schedule scenario.
                if (alongside && !scheduled) await meanwhile();
              }
            }
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
    await timings.time('teardown', () => contestant.teardown());
  }
}
