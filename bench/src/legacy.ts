// `npm run bench` without --all/--only: Kairos alone, drain and fixed-rate latency, on SQLite and on
// PostgreSQL (`--store sqlite|postgres` for one of them), printed and saved in bench/results/latest.json
// (quick.json with --quick).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machine } from './environment.ts';
import { postgresInfo } from './pg.ts';
import { runContestant } from './run.ts';
import { BENCH_DIR } from './util.ts';

/** The Kairos-only benchmark's knobs. */
export interface KairosOnlyOptions {
  quick: boolean;
  stores: readonly ('sqlite' | 'postgres')[];
  runs: number;
  workers: number;
  concurrency: number;
  rate: number;
  seconds: number;
}

const CONTESTANT = { sqlite: 'kairos', postgres: 'kairos-pg' } as const;
const LABEL = { sqlite: 'SQLite', postgres: 'PostgreSQL' } as const;

/** Runs the Kairos-only benchmark; throws if a scenario failed. */
export async function kairosOnly(options: KairosOnlyOptions): Promise<void> {
  const { workers, concurrency, rate, seconds, runs } = options;
  const { node, ...host } = machine();
  const postgres = options.stores.includes('postgres') ? await postgresInfo() : undefined;
  console.log(`Kairos — ${host.cpu}, ${host.cores} cores, Node ${node}`);
  const results: Record<string, unknown> = {};
  for (const store of options.stores) {
    const run = await runContestant(CONTESTANT[store], 1, {
      sizes: {
        drainJobs: runs,
        steadySeconds: 0,
        latencyRate: rate,
        latencySeconds: seconds,
        schedules: 0,
        scheduleSeconds: 0,
        crashJobs: 0,
        crashLimitSeconds: 0,
      },
      scenarios: ['drain', 'latency'],
      workers,
      extra: { BENCH_CONCURRENCY: String(concurrency) },
    });
    const { drain, latency } = run;
    if (!drain || !latency || run.errors.length)
      throw new Error(`benchmark on ${store} failed: ${run.errors.join('; ')}`);
    results[store] = {
      drain: {
        enqueuePerSecond: drain.enqueuePerSecond,
        processPerSecond: drain.processPerSecond,
        seconds: drain.seconds,
        handled: drain.handled,
        duplicates: drain.duplicates,
        nodeCpuMsPer1k: drain.harnessCpuMsPer1k,
        serverCpuMsPer1k: drain.serverCpuMsPer1k ?? null,
      },
      latency: { runs: latency.jobs, p50: latency.p50, p95: latency.p95, p99: latency.p99, max: latency.max },
    };
    console.log(`${LABEL[store]}: drain ${runs} runs, ${workers} worker process(es) × ${concurrency} slots:`);
    console.log(`  enqueue  ${drain.enqueuePerSecond} runs/s (API, batches of 1000)`);
    console.log(
      `  process  ${drain.processPerSecond} runs/s (${drain.seconds} s; handled ${drain.handled}, duplicates ${drain.duplicates})`,
    );
    console.log(
      `  node CPU ${drain.harnessCpuMsPer1k} ms per 1,000 runs (user + system of the node's process)`,
    );
    if (drain.serverCpuMsPer1k !== undefined)
      console.log(
        `  database CPU ${drain.serverCpuMsPer1k} ms per 1,000 runs (the PostgreSQL server's processes)`,
      );
    console.log(`${LABEL[store]}: latency at ${rate} runs/s for ${seconds} s (enqueue → handler start, ms):`);
    console.log(`  p50 ${latency.p50}  p95 ${latency.p95}  p99 ${latency.p99}  max ${latency.max}`);
  }
  const result = {
    date: new Date().toISOString(),
    machine: { cpu: host.cpu, cores: host.cores, memoryGiB: host.memoryGiB, node, postgres },
    settings: { runs, workers, concurrency, rate, seconds },
    ...results,
  };
  mkdirSync(join(BENCH_DIR, 'results'), { recursive: true });
  const file = join(BENCH_DIR, 'results', options.quick ? 'quick.json' : 'latest.json');
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
}
