// Graphile Worker on PostgreSQL, with the batching settings of its performance documentation. Its
// library runs only in the client and worker processes (on Node 22); the harness counts jobs with SQL.
import type { Contestant } from '../contestant.ts';
import { createDatabase, type FreshDatabase } from '../pg.ts';
import { packageVersion } from '../util.ts';

/** The configuration of Graphile Worker's own performance test ("with batching"). */
const CONCURRENCY = 24;
const POOL_SIZE = 25;
const PRESET = { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } };

/** Graphile Worker as a contestant. */
export function create(): Contestant {
  let db: FreshDatabase | undefined;
  return {
    name: 'graphile-worker',
    label: 'Graphile Worker',
    runtime: 'peer',
    server: 'postgres',
    bulkSize: 1000,
    settings: {
      store: 'PostgreSQL (server defaults)',
      concurrency: CONCURRENCY,
      maxPoolSize: POOL_SIZE,
      'localQueue.size': PRESET.worker.localQueue.size,
      completeJobBatchDelay: PRESET.worker.completeJobBatchDelay,
      failJobBatchDelay: PRESET.worker.failJobBatchDelay,
      pollInterval: '2000 ms (default; LISTEN/NOTIFY wakes workers)',
      'bulk API': 'addJobs(specs), 1,000 per call',
      'single API': 'addJob(identifier, payload)',
    },
    schedules: {
      periodMs: 60_000,
      note: "crontab lines '* * * * * schedule ?id=sN {i:N}' in the worker (cron has no seconds field)",
    },
    recovery: 'jobs locked by a dead worker are unlocked after 4 h (fixed)',
    recoverySeconds: 4 * 60 * 60, // the fixed unlock delay
    fastRecovery: {
      unavailable:
        "no option shortens the fixed 4-h expiry of a dead worker's locks (forceUnlockWorkers needs the dead worker's id from outside)",
    },
    version: () => packageVersion('graphile-worker'),

    async setup() {
      db = await createDatabase('graphile');
      return { DATABASE_URL: db.url };
    },
    async unfinished(queue) {
      const { rows } = await db!.pool.query<{ n: string }>(
        `SELECT count(*) AS n FROM graphile_worker._private_jobs j
           JOIN graphile_worker._private_tasks t ON t.id = j.task_id WHERE t.identifier = $1`,
        [queue],
      );
      return Number(rows[0]?.n);
    },
    async teardown() {
      await db?.drop();
    },

    async connect(env) {
      const { makeWorkerUtils } = await import('graphile-worker');
      const utils = await makeWorkerUtils({ connectionString: env.DATABASE_URL! });
      await utils.migrate();
      return {
        async enqueueBulk(queue, payloads) {
          await utils.addJobs(payloads.map((payload) => ({ identifier: queue, payload })));
        },
        async enqueueOne(queue, payload) {
          await utils.addJob(queue, payload);
        },
        // The crontab lives in the worker (see consume); nothing to do on the client's side.
        async schedule() {},
        async close() {
          await utils.release();
        },
      };
    },
    async consume(env, queue, handle) {
      const { Logger, run } = await import('graphile-worker');
      const { default: pg } = await import('pg');
      const pgPool = new pg.Pool({ connectionString: env.DATABASE_URL!, max: POOL_SIZE });
      // What graphile-worker installs on a pool of its own: errors of idle and checked-out clients.
      const report = (error: Error) => console.error(`graphile-worker pool: ${error.message}`);
      pgPool.on('error', report);
      pgPool.on('connect', (client) => client.on('error', report));
      // Warm the pool so that start() measures job processing, not connecting.
      const warm = await Promise.all([pgPool.connect(), pgPool.connect()]);
      for (const client of warm) client.release();
      let runner: Awaited<ReturnType<typeof run>> | undefined;
      // The schedule scenario's worker runs the crontab; each job's payload carries `_cron.ts`.
      const schedules = Number(process.env.BENCH_SCHEDULES ?? 0);
      const crontab = Array.from(
        { length: schedules },
        (_, i) => `* * * * * ${queue} ?id=s${i} {i:${i}}`,
      ).join('\n');
      return {
        async start() {
          runner = await run({
            pgPool,
            concurrency: CONCURRENCY,
            noHandleSignals: true,
            logger: new Logger(() => () => {}),
            preset: PRESET,
            ...(schedules ? { crontab } : {}),
            taskList: {
              [queue]: async (payload) => {
                const cron = (payload as { _cron?: { ts: string } })._cron;
                await handle(payload, cron ? Date.parse(cron.ts) : undefined);
              },
            },
          });
        },
        async stop() {
          await runner?.stop();
          await pgPool.end();
        },
      };
    },
  };
}
