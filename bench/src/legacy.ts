// `npm run bench` without --all/--only: Kairos alone, drain and fixed-rate latency, printed and saved
// as before (bench/results/latest.json, or quick.json with --quick).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machine } from './environment.ts';
import { runContestant } from './run.ts';
import { BENCH_DIR } from './util.ts';

/** The Kairos-only benchmark's knobs. */
export interface KairosOnlyOptions {
  quick: boolean;
  runs: number;
  workers: number;
  concurrency: number;
  rate: number;
  seconds: number;
}

/** Runs the Kairos-only benchmark; throws if a scenario failed. */
export async function kairosOnly(options: KairosOnlyOptions): Promise<void> {
  const { workers, concurrency, rate, seconds, runs } = options;
  const run = await runContestant('kairos', 1, {
    sizes: { drainJobs: runs, steadySeconds: 0, latencyRate: rate, latencySeconds: seconds },
    scenarios: ['drain', 'latency'],
    workers,
    extra: { BENCH_CONCURRENCY: String(concurrency) },
  });
  const { drain, latency } = run;
  if (!drain || !latency || run.errors.length) throw new Error(`benchmark failed: ${run.errors.join('; ')}`);
  const { node, ...host } = machine();
  const result = {
    date: new Date().toISOString(),
    machine: { cpu: host.cpu, cores: host.cores, memoryGiB: host.memoryGiB, node },
    settings: { runs, workers, concurrency, rate, seconds, store: 'sqlite' },
    drain: {
      enqueuePerSecond: drain.enqueuePerSecond,
      processPerSecond: drain.processPerSecond,
      seconds: drain.seconds,
      handled: drain.handled,
      duplicates: drain.duplicates,
    },
    latency: { runs: latency.jobs, p50: latency.p50, p95: latency.p95, p99: latency.p99, max: latency.max },
  };
  mkdirSync(join(BENCH_DIR, 'results'), { recursive: true });
  const file = join(BENCH_DIR, 'results', options.quick ? 'quick.json' : 'latest.json');
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`Kairos on SQLite — ${host.cpu}, ${host.cores} cores, Node ${node}`);
  console.log(`drain ${runs} runs, ${workers} worker process(es) × ${concurrency} slots:`);
  console.log(`  enqueue  ${drain.enqueuePerSecond} runs/s (API, batches of 1000)`);
  console.log(
    `  process  ${drain.processPerSecond} runs/s (${drain.seconds} s; handled ${drain.handled}, duplicates ${drain.duplicates})`,
  );
  console.log(`latency at ${rate} runs/s for ${seconds} s (enqueue → handler start, ms):`);
  console.log(`  p50 ${latency.p50}  p95 ${latency.p95}  p99 ${latency.p99}  max ${latency.max}`);
}
