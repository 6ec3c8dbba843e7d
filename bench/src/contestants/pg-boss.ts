// pg-boss on PostgreSQL. Its library runs only in the client and worker processes (on Node 22); the
// harness counts jobs with plain SQL.
import { type Contestant, FAST_RECOVERY_QUEUE } from '../contestant.ts';
import { createDatabase, type FreshDatabase } from '../pg.ts';
import { packageVersion } from '../util.ts';

/** `work()` options: batches of 100 and two fetch loops (200 jobs in flight, like Kairos's 200 slots and
 * BullMQ's concurrency 200; pg-boss's docs give no numbers), no idle wait while batches come back full.
 * The polling interval is the documented minimum; LISTEN/NOTIFY wakes the workers on new jobs anyway. */
const WORK = {
  batchSize: 100,
  localConcurrency: 2,
  pollingIntervalSeconds: 0.5,
  burstWhenBatchFull: true,
};

/** Fast recovery (the `crash-tuned` scenario): the queue expects a heartbeat every 10 s (the least
 * pg-boss accepts; workers send one every 5 s, half of it, by default); the worker processes'
 * instances look for jobs whose heartbeat stopped every second (supervise and monitor intervals; the
 * defaults are 60 s, and jobs without a heartbeat expire after 15 min); and their workers poll every
 * second: a job failed by its heartbeat goes back to `retry` without a NOTIFY, and with NOTIFY on,
 * a worker otherwise polls only every 30 s (`notifyPollingIntervalSeconds` default). */
const FAST_QUEUE = { heartbeatSeconds: 10 };
const FAST_INSTANCE = { superviseIntervalSeconds: 1, monitorIntervalSeconds: 1 };
const FAST_WORK = { notifyPollingIntervalSeconds: 1 };

/** pg-boss as a contestant. */
export function create(): Contestant {
  let db: FreshDatabase | undefined;
  const options = (env: Record<string, string>, queue?: string) => ({
    ...(queue === FAST_RECOVERY_QUEUE ? FAST_INSTANCE : {}),
    connectionString: env.DATABASE_URL!,
    useListenNotify: true,
    // The tightest cron settings the docs allow (defaults 30 s and 5 s), for the schedule scenario.
    cronMonitorIntervalSeconds: 1,
    cronWorkerIntervalSeconds: 1,
  });
  async function boss(env: Record<string, string>, queue?: string) {
    const { PgBoss } = await import('pg-boss');
    const instance = new PgBoss(options(env, queue));
    instance.on('error', (error) => console.error(`pg-boss: ${error.message}`));
    await instance.start();
    return instance;
  }
  return {
    name: 'pg-boss',
    label: 'pg-boss',
    runtime: 'peer',
    server: 'postgres',
    bulkSize: 1000,
    settings: {
      store: 'PostgreSQL (server defaults)',
      'constructor options':
        'useListenNotify: true, cronMonitorIntervalSeconds: 1, cronWorkerIntervalSeconds: 1 (the minimum; others default: pool max 10, maintenance on)',
      queue: 'createQueue(name, { notify: true }), policy standard',
      'work() options': `batchSize ${WORK.batchSize}, localConcurrency ${WORK.localConcurrency}, pollingIntervalSeconds ${WORK.pollingIntervalSeconds}, burstWhenBatchFull`,
      'jobs in flight per worker process': WORK.batchSize * WORK.localConcurrency,
      'bulk API': 'insert(name, jobs), 1,000 per call',
      'single API': 'send(name, data)',
    },
    schedules: {
      periodMs: 60_000,
      note: "schedule(queue, '* * * * *', { i }, { key }) per schedule; cron monitor every 30 s (default); the nominal minute is read off the start time",
    },
    recovery: 'active jobs expire after 15 min and are retried (expireInSeconds default)',
    recoverySeconds: 15 * 60, // expireInSeconds
    fastRecovery: {
      recovery: `queue heartbeatSeconds ${FAST_QUEUE.heartbeatSeconds}; worker instances superviseIntervalSeconds ${FAST_INSTANCE.superviseIntervalSeconds}, monitorIntervalSeconds ${FAST_INSTANCE.monitorIntervalSeconds}; work() notifyPollingIntervalSeconds ${FAST_WORK.notifyPollingIntervalSeconds}`,
      recoverySeconds: FAST_QUEUE.heartbeatSeconds + FAST_INSTANCE.superviseIntervalSeconds,
    },
    version: () => packageVersion('pg-boss'),

    async setup() {
      db = await createDatabase('pgboss');
      return { DATABASE_URL: db.url };
    },
    async unfinished(queue) {
      const { rows } = await db!.pool.query<{ n: string }>(
        "SELECT count(*) AS n FROM pgboss.job WHERE name = $1 AND state <> 'completed'",
        [queue],
      );
      return Number(rows[0]?.n);
    },
    async teardown() {
      await db?.drop();
    },

    async connect(env, queues) {
      const instance = await boss(env);
      for (const queue of queues)
        await instance.createQueue(queue, {
          notify: true,
          ...(queue === FAST_RECOVERY_QUEUE ? FAST_QUEUE : {}),
        });
      return {
        async enqueueBulk(queue, payloads) {
          await instance.insert(
            queue,
            payloads.map((data) => ({ data })),
          );
        },
        async enqueueOne(queue, payload) {
          await instance.send(queue, payload);
        },
        async schedule(queue, count) {
          for (let i = 0; i < count; i++)
            await instance.schedule(queue, '* * * * *', { i }, { key: `s${i}` });
        },
        async unschedule(queue, count) {
          for (let i = 0; i < count; i++) await instance.unschedule(queue, `s${i}`);
        },
        close: () => instance.stop({ graceful: true }),
      };
    },
    async consume(env, queue, handle) {
      const instance = await boss(env, queue);
      return {
        async start() {
          const work = queue === FAST_RECOVERY_QUEUE ? { ...WORK, ...FAST_WORK } : WORK;
          await instance.work<unknown>(queue, work, async (jobs) => {
            // A cron job carries no nominal instant: it is the minute the job started in (the cron
            // monitor sends each minute's jobs within that minute).
            const minute = queue === 'schedule' ? Math.floor(Date.now() / 60_000) * 60_000 : undefined;
            await Promise.all(jobs.map((job) => handle(job.data, minute)));
          });
        },
        stop: () => instance.stop({ graceful: true, timeout: 10_000 }),
      };
    },
  };
}
