// `npm run bench:workflows -- [--dialect sqlite|postgres] [--reps 3] [--chains 20] [--chain 100] [--items 10000]`: steps a second
// through workflows, Kairos beside BullMQ's FlowProducer with the same shape, in one run.
//
// Shapes (each repetition runs every shape on both contestants, in an order that alternates):
// - `chain`: one instance of a 100-step chain (each step after the one before): how fast one
//   instance advances, a step's end to its child's start, 100 times.
// - `chains`: `--chains` such instances at once: steps/s when instances advance side by side.
// - `dag` (Kairos only: a BullMQ flow is a tree, it has no joins): one 1,000-step DAG, 10 layers of
//   100 steps where each step waits for 3 steps of the layer before; its time and the node's peak
//   memory.
// - `map`: a step returns a list of `--items` numbers (10,000), a map step runs one run per item,
//   64 at once, and a reduce step after it receives every result; BullMQ: a flow whose parent has
//   10,000 children (it runs once they all completed). Items/s, and the node's peak memory.
// BullMQ's chain is a flow nested 100 deep (a parent runs after its child), on Redis with AOF
// (`appendfsync everysec`, as the BullMQ contestant of `npm run bench` sets it).
// Kairos: a `kairos server` node (embedded SQLite or a fresh PostgreSQL database) and an SDK worker
// in this process; BullMQ: a Worker in this process. Both workers run 64 handlers at once and
// return a small result. Writes bench/results/workflows-<dialect>-<time>.{json,md}.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker as KairosWorker } from '@kairos/worker';
import { machine } from './environment.ts';
import { ADMIN_TOKEN, memoryOf, type NodeProcess, startNodeProcess } from './kairos-process.ts';
import { createDatabase, type FreshDatabase } from './pg.ts';
import { spread } from './stats.ts';
import { now, packageVersion, sleep } from './util.ts';

const { values } = parseArgs({
  options: {
    dialect: { type: 'string', default: 'sqlite' },
    reps: { type: 'string', default: '3' },
    chains: { type: 'string', default: '20' },
    chain: { type: 'string', default: '100' },
    items: { type: 'string', default: '10000' },
  },
});
const dialect = values.dialect === 'postgres' ? 'postgres' : 'sqlite';
const REPS = Number(values.reps);
const CHAINS = Number(values.chains);
const CHAIN = Number(values.chain);
const CONCURRENCY = 64;
const MAP_ITEMS = Number(values.items);
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/15';

interface Measured {
  shape: string;
  contestant: 'kairos' | 'bullmq';
  steps: number;
  ms: number;
  stepsPerSecond: number;
  /** Kairos: the node's peak resident memory after the shape, MiB. */
  nodePeakMiB?: number;
}

type StepSpec = {
  id: string;
  handler: string;
  after?: string[];
  map?: { from: string; path: string; maxParallel: number };
};

function chainSteps(length: number): StepSpec[] {
  return Array.from({ length }, (_, i) => ({
    id: `s${i}`,
    handler: 'step',
    ...(i > 0 ? { after: [`s${i - 1}`] } : {}),
  }));
}

/** A list of MAP_ITEMS numbers, a map over it (CONCURRENCY items at once), and a reduce. */
function mapSteps(): StepSpec[] {
  return [
    { id: 'list', handler: 'list' },
    {
      id: 'each',
      handler: 'step',
      after: ['list'],
      map: { from: 'list', path: 'items', maxParallel: CONCURRENCY },
    },
    { id: 'reduce', handler: 'step', after: ['each'] },
  ];
}

/** 10 layers of 100; each step after 3 steps of the layer before (a join of 3). */
function dagSteps(): StepSpec[] {
  const steps: StepSpec[] = [];
  for (let layer = 0; layer < 10; layer++) {
    for (let i = 0; i < 100; i++) {
      steps.push({
        id: `l${layer}-${i}`,
        handler: 'step',
        ...(layer > 0 ? { after: [0, 1, 2].map((k) => `l${layer - 1}-${(i + k * 37) % 100}`) } : {}),
      });
    }
  }
  return steps;
}

/** Kairos: a node with its store and a worker; runs workflows through the REST API. */
async function kairosStack() {
  let db: FreshDatabase | undefined;
  let dir = '';
  let url: string;
  if (dialect === 'postgres') {
    db = await createDatabase('workflows');
    url = db.url;
  } else {
    dir = mkdtempSync(join(tmpdir(), 'kairos-wf-bench-'));
    url = `sqlite:${join(dir, 'kairos.db')}`;
  }
  const node: NodeProcess = await startNodeProcess('workflows', url);
  let handled = 0;
  const worker = new KairosWorker({
    url: node.url,
    token: 'bench-worker',
    group: 'default',
    concurrency: CONCURRENCY,
    handleSignals: false,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  })
    .handle('step', async () => {
      handled++;
      return { ok: 1 };
    })
    .handle('list', async () => {
      handled++;
      return { items: Array.from({ length: MAP_ITEMS }, (_, i) => i) };
    });
  await worker.start();
  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${node.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${ADMIN_TOKEN}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const answer = (await response.json()) as Record<string, unknown>;
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(answer)}`);
    return answer;
  };
  return {
    /** Defines `name`, starts `instances` of it at once and waits until every one ended. */
    async run(name: string, steps: StepSpec[], instances: number, calls = steps.length): Promise<number> {
      await api('PUT', `/v1/workflows/${name}`, { steps });
      const before = handled;
      const started = now();
      const ids = await Promise.all(
        Array.from(
          { length: instances },
          async () => (await api('POST', `/v1/workflows/${name}/instances`, {})).id,
        ),
      );
      for (const id of ids) {
        for (;;) {
          const instance = await api('GET', `/v1/workflow-instances/${id}`);
          if (instance.state !== 'running') {
            if (instance.state !== 'succeeded') throw new Error(`instance ${id} ended ${instance.state}`);
            break;
          }
          await sleep(25);
        }
      }
      const ms = now() - started;
      if (handled - before !== calls * instances)
        throw new Error(`kairos ran ${handled - before} handler calls, expected ${calls * instances}`);
      return ms;
    },
    peakMiB: () => memoryOf(node.child.pid!).peakMiB,
    async close() {
      await worker.stop();
      node.child.kill('SIGTERM');
      await new Promise((resolve) => node.child.once('exit', resolve));
      await db?.drop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** BullMQ: a FlowProducer and a Worker on Redis with AOF every second. */
async function bullmqStack() {
  const { Redis } = await import('ioredis');
  const { FlowProducer, Worker } = await import('bullmq');
  const redisUrl = new URL(REDIS_URL);
  const connection = {
    host: redisUrl.hostname,
    port: Number(redisUrl.port || 6379),
    db: Number(redisUrl.pathname.slice(1) || 0),
  };
  const redis = new Redis(REDIS_URL);
  const aof = ((await redis.config('GET', 'appendonly')) as string[])[1] ?? 'no';
  await redis.flushdb();
  await redis.config('SET', 'appendonly', 'yes', 'appendfsync', 'everysec');
  while (/aof_rewrite_(in_progress|scheduled):1/.test(await redis.info('persistence'))) await sleep(20);
  const settings = { appendonly: 'yes', appendfsync: 'everysec' };
  const flows = new FlowProducer({ connection });
  let handled = 0;
  const roots = new Map<string, () => void>();
  const worker = new Worker(
    'wf',
    async () => {
      handled++;
      return { ok: 1 };
    },
    { connection: { ...connection, maxRetriesPerRequest: null }, concurrency: CONCURRENCY },
  );
  worker.on('completed', (job) => roots.get(job.id!)?.());
  worker.on('error', (error) => console.error(`bullmq worker: ${error.message}`));
  await worker.waitUntilReady();
  let flowsMade = 0;
  return {
    settings,
    /** Adds `instances` flows nested `length` deep at once and waits until each root completed. */
    async chain(length: number, instances: number): Promise<number> {
      const before = handled;
      const started = now();
      const done: Promise<void>[] = [];
      await Promise.all(
        Array.from({ length: instances }, async () => {
          const tag = `f${flowsMade++}`;
          // The root is the chain's last step: it runs once its child (the step before) completed.
          type Node = { name: string; queueName: string; data: object; opts?: object; children?: Node[] };
          let tree: Node | undefined;
          for (let i = 0; i < length; i++) {
            tree = { name: 'step', queueName: 'wf', data: { i }, ...(tree ? { children: [tree] } : {}) };
          }
          const rootId = `${tag}-root`;
          tree!.opts = { jobId: rootId };
          done.push(new Promise<void>((resolve) => roots.set(rootId, resolve)));
          await flows.add(tree! as never);
        }),
      );
      await Promise.all(done);
      const ms = now() - started;
      if (handled - before !== length * instances)
        throw new Error(`bullmq ran ${handled - before} steps, expected ${length * instances}`);
      return ms;
    },
    /** One parent with `items` children (the map) that runs once they all completed (the reduce). */
    async fanOut(items: number): Promise<number> {
      const before = handled;
      const started = now();
      const rootId = `f${flowsMade++}-reduce`;
      const done = new Promise<void>((resolve) => roots.set(rootId, resolve));
      await flows.add({
        name: 'step',
        queueName: 'wf',
        data: {},
        opts: { jobId: rootId },
        children: Array.from({ length: items }, (_, i) => ({ name: 'step', queueName: 'wf', data: { i } })),
      });
      await done;
      const ms = now() - started;
      if (handled - before !== items + 1)
        throw new Error(`bullmq ran ${handled - before} jobs, expected ${items + 1}`);
      return ms;
    },
    async close() {
      await worker.close();
      await flows.close();
      await redis.flushdb();
      await redis.config('SET', 'appendonly', aof);
      redis.disconnect();
    },
  };
}

async function main(): Promise<void> {
  const results: Measured[] = [];
  const record = (m: Omit<Measured, 'stepsPerSecond'>) => {
    const full = { ...m, stepsPerSecond: (m.steps / m.ms) * 1000 };
    results.push(full);
    console.log(
      `${m.contestant.padEnd(6)} ${m.shape.padEnd(7)} ${m.steps} steps in ${m.ms.toFixed(0)} ms: ${full.stepsPerSecond.toFixed(0)} steps/s${m.nodePeakMiB ? `, node peak ${m.nodePeakMiB.toFixed(0)} MiB` : ''}`,
    );
  };
  const kairos = await kairosStack();
  const bullmq = await bullmqStack();
  try {
    for (let rep = 0; rep < REPS; rep++) {
      const order = rep % 2 === 0 ? (['kairos', 'bullmq'] as const) : (['bullmq', 'kairos'] as const);
      for (const contestant of order) {
        if (contestant === 'kairos') {
          record({
            shape: 'chain',
            contestant,
            steps: CHAIN,
            ms: await kairos.run('chain', chainSteps(CHAIN), 1),
          });
          record({
            shape: 'chains',
            contestant,
            steps: CHAIN * CHAINS,
            ms: await kairos.run('chain', chainSteps(CHAIN), CHAINS),
          });
          const ms = await kairos.run('dag', dagSteps(), 1);
          record({ shape: 'dag', contestant, steps: 1000, ms, nodePeakMiB: kairos.peakMiB() });
          const mapMs = await kairos.run('map', mapSteps(), 1, MAP_ITEMS + 2);
          record({ shape: 'map', contestant, steps: MAP_ITEMS, ms: mapMs, nodePeakMiB: kairos.peakMiB() });
        } else {
          record({ shape: 'chain', contestant, steps: CHAIN, ms: await bullmq.chain(CHAIN, 1) });
          record({
            shape: 'chains',
            contestant,
            steps: CHAIN * CHAINS,
            ms: await bullmq.chain(CHAIN, CHAINS),
          });
          record({ shape: 'map', contestant, steps: MAP_ITEMS, ms: await bullmq.fanOut(MAP_ITEMS) });
        }
      }
    }
  } finally {
    await kairos.close();
    await bullmq.close();
  }

  const m = machine();
  const summary = ['chain', 'chains', 'dag', 'map'].flatMap((shape) =>
    (['kairos', 'bullmq'] as const).flatMap((contestant) => {
      const runs = results.filter((r) => r.shape === shape && r.contestant === contestant);
      if (runs.length === 0) return [];
      return [{ shape, contestant, medianStepsPerSecond: spread(runs.map((r) => r.stepsPerSecond))!.median }];
    }),
  );
  const versions = { bullmq: packageVersion('bullmq'), redis: 'machine server', kairosStore: dialect };
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const name = `workflows-${dialect}-${stamp}`;
  const dir = new URL('../results/', import.meta.url);
  writeFileSync(
    new URL(`${name}.json`, dir),
    `${JSON.stringify({ benchmark: 'workflows', dialect, reps: REPS, chains: CHAINS, concurrency: CONCURRENCY, machine: m, versions, bullmq: bullmq.settings ?? null, summary, results }, null, 2)}\n`,
  );
  const md = [
    `# Workflows, Kairos (${dialect}) beside BullMQ ${versions.bullmq} FlowProducer`,
    '',
    `${m.cpu} × ${m.cores}, ${m.memoryGiB} GiB, ${m.os}, Node.js ${m.node}. ${REPS} repetitions, the order alternating; workers run ${CONCURRENCY} handlers at once.`,
    '',
    '| shape | contestant | median steps/s | runs (steps/s) |',
    '|---|---|---|---|',
    ...summary.map(
      (s) =>
        `| ${s.shape} | ${s.contestant} | ${s.medianStepsPerSecond.toFixed(0)} | ${results
          .filter((r) => r.shape === s.shape && r.contestant === s.contestant)
          .map(
            (r) =>
              `${r.stepsPerSecond.toFixed(0)}${r.nodePeakMiB ? ` (node peak ${r.nodePeakMiB.toFixed(0)} MiB)` : ''}`,
          )
          .join(', ')} |`,
    ),
    '',
  ].join('\n');
  writeFileSync(new URL(`${name}.md`, dir), md);
  console.log(md);
  console.log(`wrote bench/results/${name}.md`);
}

await main();
