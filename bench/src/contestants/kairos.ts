// Kairos on its embedded SQLite store (one machine) or on PostgreSQL (a cluster's store, here one node):
// the node runs in the harness process; workers are separate processes that talk HTTP to it (long
// poll, batched reports); the producer is a client process calling the HTTP API.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KairosClient } from '@kairos/client';
import { nodeTransport } from '@kairos/client/node';
import { Worker } from '@kairos/worker';
import type { Contestant } from '../contestant.ts';
import { createDatabase } from '../pg.ts';
import { packageVersion } from '../util.ts';

const ADMIN_TOKEN = 'bench-admin';
const WORKER_TOKEN = 'bench-worker';

/** Kairos's worker slots per process: `--concurrency` in the Kairos-only benchmark, else 200. */
function slots(): number {
  return Number(process.env.BENCH_CONCURRENCY ?? 200);
}

/** Calls `task(0 … count−1)`, 16 at a time. */
async function inParallel(count: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: 16 }, lane));
}

/** Where the node keeps its state, and how the harness counts what is unfinished there. */
interface StoreUnderTest {
  databaseUrl: string | undefined;
  unfinished(jobId: number): Promise<number>;
  drop(): Promise<void>;
}

/** Runs of a job not yet `succeeded`, in the dialect's table `table`. */
const unfinishedSql = (table: string, param: string) =>
  `SELECT count(*) AS n FROM ${table} WHERE job_id = ${param} AND status <> 'succeeded'`;

async function sqliteStore(): Promise<StoreUnderTest> {
  const { default: Database } = await import('better-sqlite3');
  const dataDir = mkdtempSync(join(tmpdir(), 'kairos-bench-'));
  const file = join(dataDir, 'kairos.db');
  let db: InstanceType<typeof Database> | undefined;
  return {
    databaseUrl: `sqlite:${file}`,
    async unfinished(jobId) {
      // Opened on first use: the node creates the file.
      db ??= new Database(file, { readonly: true });
      return (db.prepare(unfinishedSql('runs', '?')).get(jobId) as { n: number }).n;
    },
    async drop() {
      db?.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function postgresStore(): Promise<StoreUnderTest> {
  const database = await createDatabase('kairos');
  return {
    databaseUrl: `${database.url}?schema=kairos`,
    async unfinished(jobId) {
      const { rows } = await database.pool.query<{ n: string }>(unfinishedSql('kairos.runs', '$1'), [jobId]);
      return Number(rows[0]!.n);
    },
    drop: () => database.drop(),
  };
}

/** Kairos as a contestant, on SQLite (`kairos`) or PostgreSQL (`kairos-pg`). */
export function create(dialect: 'sqlite' | 'postgres' = 'sqlite'): Contestant {
  let stop: (() => Promise<void>) | undefined;
  let count: ((queue: string) => Promise<number>) | undefined;
  return {
    name: dialect === 'sqlite' ? 'kairos' : 'kairos-pg',
    label: dialect === 'sqlite' ? 'Kairos (SQLite)' : 'Kairos (PostgreSQL)',
    runtime: 'project',
    ...(dialect === 'postgres' ? { server: 'postgres' as const } : {}),
    nodeInHarness: true,
    bulkSize: 1000,
    settings: {
      store:
        dialect === 'sqlite'
          ? 'SQLite, WAL, synchronous=NORMAL (the defaults)'
          : 'PostgreSQL, server defaults (synchronous_commit=on), pool of 10 (the default)',
      'worker slots per process': slots(),
      'bulk API': 'POST /v1/jobs/:name/trigger-batch, 1,000 runs per request',
      'single API': 'POST /v1/jobs/:name/trigger',
      client: 'KairosClient with the Node.js transport (@kairos/client/node: kept-alive node:http)',
      'node timings': 'defaults (long poll 30 s, heartbeat 1 s)',
    },
    schedules: {
      periodMs: 1000,
      note: "jobs with trigger { kind: 'every', every: '1s' }, created through the API",
    },
    recovery: 'worker lease 5 s, reaper sweep 1 s (defaults)',
    recoverySeconds: 5, // the worker lease
    fastRecovery: {
      unavailable: 'its defaults are its fast-recovery settings (worker lease 5 s, reaper sweep 1 s)',
    },
    version: () => packageVersion('@kairos/server'),

    async setup(queues) {
      const { resolveConfig, startNode } = await import('@kairos/server');
      const store = dialect === 'sqlite' ? await sqliteStore() : await postgresStore();
      const node = await startNode(
        resolveConfig(
          {
            port: 0,
            databaseUrl: store.databaseUrl,
            adminToken: ADMIN_TOKEN,
            workerToken: WORKER_TOKEN,
            logLevel: 'warn',
          },
          {},
        ),
      );
      const client = new KairosClient({ url: node.url, token: ADMIN_TOKEN });
      const jobIds = new Map<string, number>();
      for (const queue of queues) {
        const job = await client.createJob({
          name: queue,
          group: queue,
          handler: 'noop',
          trigger: { kind: 'manual' },
        });
        jobIds.set(queue, job.id);
      }
      count = (queue) => store.unfinished(jobIds.get(queue)!);
      stop = async () => {
        await node.stop();
        await store.drop();
      };
      return { KAIROS_URL: node.url };
    },
    async unfinished(queue) {
      return count!(queue);
    },
    async teardown() {
      await stop?.();
    },

    async connect(env) {
      // The client's Node.js transport, as docs/workers.md recommends for producers in Node.js.
      const client = new KairosClient({
        url: env.KAIROS_URL!,
        token: ADMIN_TOKEN,
        transport: nodeTransport(),
      });
      return {
        async enqueueBulk(queue, payloads) {
          await client.triggerJobBatch(
            queue,
            payloads.map((p) => ({ params: { ...p } })),
          );
        },
        async enqueueOne(queue, payload) {
          await client.triggerJob(queue, { params: { ...payload } });
        },
        async schedule(queue, count, periodMs) {
          await inParallel(count, (i) =>
            client.createJob({
              name: `${queue}.${i}`,
              group: queue,
              handler: 'noop',
              params: { i },
              trigger: { kind: 'every', every: periodMs },
            }),
          );
        },
        async unschedule(queue, count) {
          await inParallel(count, (i) => client.deleteJob(`${queue}.${i}`));
        },
        async close() {},
      };
    },
    async consume(env, queue, handle) {
      const worker = new Worker({
        url: env.KAIROS_URL!,
        token: WORKER_TOKEN,
        group: queue,
        concurrency: slots(),
        handleSignals: false,
      }).handle('noop', async (ctx) => {
        await handle(ctx.params, ctx.fireTime?.getTime());
        return null;
      });
      return {
        start: () => worker.start(),
        stop: () => worker.stop(),
      };
    },
  };
}
