// `npm run bench`: Kairos end to end on SQLite — drain throughput and enqueue→start latency.
// Method: the node runs in this process; workers are separate processes talking HTTP to it, as in
// production. Every run takes the full path: API enqueue → store → long poll → handler → durable report.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { KairosClient } from '@kairos/client';
import Database from 'better-sqlite3';
import { resolveConfig, startNode } from 'kairos';

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '20000' },
    workers: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '200' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    quick: { type: 'boolean', default: false },
  },
});
const RUNS = flags.quick ? 2000 : Number(flags.runs);
const WORKERS = Number(flags.workers);
const RATE = Number(flags.rate);
const SECONDS = flags.quick ? 3 : Number(flags.seconds);
const now = () => performance.timeOrigin + performance.now();

const dataDir = mkdtempSync(join(tmpdir(), 'kairos-bench-'));
const config = resolveConfig(
  { port: 0, dataDir, adminToken: 'bench-admin', workerToken: 'bench-worker', logLevel: 'warn' },
  {},
);
const node = await startNode(config);
const client = new KairosClient({ url: node.url, token: 'bench-admin' });
const db = new Database(join(dataDir, 'kairos.db'), { readonly: true });
const succeeded = db.prepare("SELECT count(*) AS n FROM runs WHERE status = 'succeeded' AND job_id = ?");

function startWorkers(group: string): Promise<ChildProcess[]> {
  return Promise.all(
    Array.from({ length: WORKERS }, () => {
      const child = fork(new URL('./worker-process.ts', import.meta.url), {
        execArgv: ['--import', 'tsx'],
        env: {
          ...process.env,
          KAIROS_URL: node.url,
          KAIROS_WORKER_TOKEN: 'bench-worker',
          BENCH_GROUP: group,
          BENCH_CONCURRENCY: flags.concurrency,
        },
      });
      return new Promise<ChildProcess>((resolve) => child.once('message', () => resolve(child)));
    }),
  );
}

async function stopWorkers(
  children: ChildProcess[],
): Promise<Array<{ started: number; latencies: number[] }>> {
  const reports = await Promise.all(
    children.map(
      (child) =>
        new Promise<{ started: number; latencies: number[] }>((resolve) => {
          child.once('message', (m) => resolve(m as { started: number; latencies: number[] }));
          child.send({ type: 'report' });
        }),
    ),
  );
  await Promise.all(
    children.map(
      (child) => new Promise((resolve) => (child.once('exit', resolve), child.send({ type: 'stop' }))),
    ),
  );
  return reports;
}

async function waitUntil(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 5));
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

// 1. Drain: RUNS queued no-op runs, then the workers start and process them.
const drainJob = await client.createJob({
  name: 'drain',
  group: 'drain',
  handler: 'noop',
  trigger: { kind: 'manual' },
});
const enqueueStart = now();
for (let i = 0; i < RUNS; i += 1000) {
  await client.triggerJobBatch(
    'drain',
    Array.from({ length: Math.min(1000, RUNS - i) }, () => ({})),
  );
}
const enqueueSeconds = (now() - enqueueStart) / 1000;
const drainStart = now();
const drainWorkers = await startWorkers('drain');
await waitUntil(() => (succeeded.get(drainJob.id) as { n: number }).n >= RUNS);
const drainSeconds = (now() - drainStart) / 1000;
const drained = await stopWorkers(drainWorkers);
const handled = drained.reduce((sum, r) => sum + r.started, 0);

// 2. Latency at a fixed rate: one API trigger every 1/RATE s, handler start measured in the worker.
const latJob = await client.createJob({
  name: 'latency',
  group: 'latency',
  handler: 'noop',
  trigger: { kind: 'manual' },
});
const latWorkers = await startWorkers('latency');
const total = RATE * SECONDS;
const latStart = now();
for (let i = 0; i < total; i++) {
  const due = latStart + (i * 1000) / RATE;
  const wait = due - now();
  if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
  void client.triggerJob('latency', { params: { t: now() } });
}
await waitUntil(() => (succeeded.get(latJob.id) as { n: number }).n >= total);
const latencies = (await stopWorkers(latWorkers)).flatMap((r) => r.latencies).sort((a, b) => a - b);

await node.stop();
db.close();
rmSync(dataDir, { recursive: true, force: true });

const result = {
  date: new Date().toISOString(),
  machine: {
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  },
  settings: {
    runs: RUNS,
    workers: WORKERS,
    concurrency: Number(flags.concurrency),
    rate: RATE,
    seconds: SECONDS,
    store: 'sqlite',
  },
  drain: {
    enqueuePerSecond: Math.round(RUNS / enqueueSeconds),
    processPerSecond: Math.round(RUNS / drainSeconds),
    seconds: Number(drainSeconds.toFixed(2)),
    handled,
    duplicates: handled - RUNS,
  },
  latency: {
    runs: latencies.length,
    p50: Number(percentile(latencies, 50).toFixed(2)),
    p95: Number(percentile(latencies, 95).toFixed(2)),
    p99: Number(percentile(latencies, 99).toFixed(2)),
    max: Number((latencies.at(-1) ?? Number.NaN).toFixed(2)),
  },
};
mkdirSync(new URL('../results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL(`../results/${flags.quick ? 'quick' : 'latest'}.json`, import.meta.url),
  JSON.stringify(result, null, 2) + '\n',
);
console.log(
  `Kairos on SQLite — ${result.machine.cpu}, ${result.machine.cores} cores, Node ${process.version}`,
);
console.log(`drain ${RUNS} runs, ${WORKERS} worker process(es) × ${flags.concurrency} slots:`);
console.log(`  enqueue  ${result.drain.enqueuePerSecond} runs/s (API, batches of 1000)`);
console.log(
  `  process  ${result.drain.processPerSecond} runs/s (${result.drain.seconds} s; handled ${handled}, duplicates ${result.drain.duplicates})`,
);
console.log(`latency at ${RATE} runs/s for ${SECONDS} s (enqueue → handler start, ms):`);
console.log(
  `  p50 ${result.latency.p50}  p95 ${result.latency.p95}  p99 ${result.latency.p99}  max ${result.latency.max}`,
);
