// `npm run bench` without --all/--only: Kairos alone, drains of 20,000 and 100,000 runs and fixed-rate
// latency, on SQLite and on PostgreSQL (`--store sqlite|postgres` for one of them), printed and saved in
// bench/results/kairos-<timestamp>.json (`-quick`, git-ignored, with --quick), once every store
// has run: a run that fails writes nothing.
import { machine } from './environment.ts';
import { source, stamp, writeResult } from './results.ts';
import { type ContestantRun, runContestant, type ScenarioName } from './run.ts';

/** The Kairos-only benchmark's knobs. */
export interface KairosOnlyOptions {
  quick: boolean;
  stores: readonly ('sqlite' | 'postgres')[];
  runs: number;
  /** Runs of the large drain; 0 for none. */
  largeRuns: number;
  workers: number;
  concurrency: number;
  rate: number;
  seconds: number;
}

const CONTESTANT = { sqlite: 'kairos', postgres: 'kairos-pg' } as const;
const LABEL = { sqlite: 'SQLite', postgres: 'PostgreSQL' } as const;

type DrainResult = NonNullable<ContestantRun['drain']>;

/** What the result file keeps of a drain. */
function drainFigures(drain: DrainResult) {
  return {
    runs: drain.jobs,
    enqueuePerSecond: drain.enqueuePerSecond,
    processPerSecond: drain.processPerSecond,
    steadyPerSecond: drain.steadyPerSecond ?? null,
    tenthAtMs: drain.tenthAtMs ?? null,
    ninetiethAtMs: drain.ninetiethAtMs ?? null,
    seconds: drain.seconds,
    handled: drain.handled,
    duplicates: drain.duplicates,
    nodeCpuMsPer1k: drain.harnessCpuMsPer1k,
    serverCpuMsPer1k: drain.serverCpuMsPer1k ?? null,
  };
}

function printDrain(label: string, drain: DrainResult, workers: number, concurrency: number): void {
  console.log(`${label}: drain ${drain.jobs} runs, ${workers} worker process(es) × ${concurrency} slots:`);
  console.log(`  enqueue  ${drain.enqueuePerSecond} runs/s (API, batches of 1000)`);
  console.log(
    `  process  ${drain.processPerSecond} runs/s (${drain.seconds} s; handled ${drain.handled}, duplicates ${drain.duplicates})`,
  );
  console.log(
    `  steady   ${drain.steadyPerSecond} runs/s between 10 % and 90 % of the runs' starts (${drain.tenthAtMs}–${drain.ninetiethAtMs} ms)`,
  );
  console.log(
    `  node CPU ${drain.harnessCpuMsPer1k} ms per 1,000 runs (user + system of the node's process)`,
  );
  if (drain.serverCpuMsPer1k !== undefined)
    console.log(
      `  database CPU ${drain.serverCpuMsPer1k} ms per 1,000 runs (the PostgreSQL server's processes)`,
    );
}

/** Runs the Kairos-only benchmark and writes its result file; throws, writing nothing, if a scenario
 * failed. */
export async function kairosOnly(options: KairosOnlyOptions): Promise<void> {
  const { workers, concurrency, rate, seconds, runs, largeRuns } = options;
  const host = machine();
  console.log(`Kairos — ${host.cpu}, ${host.cores} cores, Node ${host.node}`);
  const results: Record<string, unknown> = {};
  const scenarios: ScenarioName[] = largeRuns ? ['drain', 'large-drain', 'latency'] : ['drain', 'latency'];
  for (const store of options.stores) {
    const run = await runContestant(CONTESTANT[store], 1, {
      sizes: {
        drainJobs: runs,
        largeDrainJobs: largeRuns,
        steadySeconds: 0,
        latencyRate: rate,
        latencySeconds: seconds,
        schedules: 0,
        scheduleSeconds: 0,
        crashJobs: 0,
        crashLimitSeconds: 0,
      },
      scenarios,
      workers,
      extra: { BENCH_CONCURRENCY: String(concurrency) },
    });
    const { drain, largeDrain, latency } = run;
    if (!drain || !latency || (largeRuns && !largeDrain) || run.errors.length)
      throw new Error(`benchmark on ${store} failed: ${run.errors.join('; ')}`);
    results[store] = {
      drain: drainFigures(drain),
      ...(largeDrain ? { largeDrain: drainFigures(largeDrain) } : {}),
      latency: { runs: latency.jobs, p50: latency.p50, p95: latency.p95, p99: latency.p99, max: latency.max },
      service: run.service ?? null,
      phases: run.phases,
    };
    printDrain(LABEL[store], drain, workers, concurrency);
    if (largeDrain) printDrain(LABEL[store], largeDrain, workers, concurrency);
    console.log(`${LABEL[store]}: latency at ${rate} runs/s for ${seconds} s (enqueue → handler start, ms):`);
    console.log(`  p50 ${latency.p50}  p95 ${latency.p95}  p99 ${latency.p99}  max ${latency.max}`);
  }
  const date = new Date().toISOString();
  const result = {
    benchmark: 'kairos',
    date,
    quick: options.quick,
    source: source(),
    machine: host,
    settings: { runs, largeRuns, workers, concurrency, rate, seconds },
    ...results,
  };
  const name = `kairos-${stamp(date)}${options.quick ? '-quick' : ''}`;
  const written = writeResult(name, result);
  console.log(`wrote ${written.json}`);
}
