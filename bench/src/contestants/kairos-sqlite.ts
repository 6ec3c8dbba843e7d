// Kairos on its embedded SQLite store, as in production on one machine: the node runs in the harness
// process; workers are separate processes that talk HTTP to it (long poll, batched reports).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KairosClient } from '@kairos/client';
import { Worker } from '@kairos/worker';
import type { Contestant } from '../contestant.ts';
import { packageVersion } from '../util.ts';

const ADMIN_TOKEN = 'bench-admin';
const WORKER_TOKEN = 'bench-worker';

/** Kairos's worker slots per process: `--concurrency` in the Kairos-only benchmark, else 200. */
function slots(): number {
  return Number(process.env.BENCH_CONCURRENCY ?? 200);
}

/** Kairos (SQLite) as a contestant. */
export function create(): Contestant {
  let stop: (() => Promise<void>) | undefined;
  let count: ((queue: string) => number) | undefined;
  return {
    name: 'kairos',
    label: 'Kairos (SQLite)',
    runtime: 'project',
    bulkSize: 1000,
    settings: {
      store: 'SQLite, WAL, synchronous=NORMAL (the defaults)',
      'worker slots per process': slots(),
      'bulk API': 'POST /v1/jobs/:name/trigger-batch, 1,000 runs per request',
      'single API': 'POST /v1/jobs/:name/trigger',
      'node timings': 'defaults (long poll 30 s, heartbeat 1 s)',
    },
    version: () => packageVersion('kairos'),

    async setup(queues) {
      const { resolveConfig, startNode } = await import('kairos');
      const { default: Database } = await import('better-sqlite3');
      const dataDir = mkdtempSync(join(tmpdir(), 'kairos-bench-'));
      const node = await startNode(
        resolveConfig(
          { port: 0, dataDir, adminToken: ADMIN_TOKEN, workerToken: WORKER_TOKEN, logLevel: 'warn' },
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
      const db = new Database(join(dataDir, 'kairos.db'), { readonly: true });
      const unfinished = db.prepare(
        "SELECT count(*) AS n FROM runs WHERE job_id = ? AND status <> 'succeeded'",
      );
      count = (queue) => (unfinished.get(jobIds.get(queue)) as { n: number }).n;
      stop = async () => {
        await node.stop();
        db.close();
        rmSync(dataDir, { recursive: true, force: true });
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
      const client = new KairosClient({ url: env.KAIROS_URL!, token: ADMIN_TOKEN });
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
      }).handle('noop', (ctx) => {
        handle(ctx.params);
        return null;
      });
      return {
        start: () => worker.start(),
        stop: () => worker.stop(),
      };
    },
  };
}
