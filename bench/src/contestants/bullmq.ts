// BullMQ on Redis, with the settings of its "going to production" guide: AOF persistence with fsync every
// second (switched on for BullMQ's runs, and back off after), auto-removal of finished jobs, a worker
// connection that retries forever, a producer connection that fails fast.
import { type Contestant, type Env, FAST_RECOVERY_QUEUE } from '../contestant.ts';
import { packageVersion, sleep } from '../util.ts';

const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/15';
const CONCURRENCY = 200;
const JOB_OPTIONS = { removeOnComplete: { count: 1000 }, removeOnFail: { count: 5000 } };
/** Worker options for fast recovery (the `crash-tuned` scenario): a lock of 5 s (renewed every 2.5 s,
 * half of it, by default) and a stalled-job check every second, like Kairos's lease of 5 s and reaper
 * sweep of 1 s. Defaults: lockDuration 30,000, stalledInterval 30,000. */
const FAST_RECOVERY = { lockDuration: 5000, stalledInterval: 1000 };
const UNFINISHED = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed'] as const;

function connection(env: Env) {
  const url = new URL(env.REDIS_URL!);
  return { host: url.hostname, port: Number(url.port || 6379), db: Number(url.pathname.slice(1) || 0) };
}

/** BullMQ as a contestant. */
export function create(): Contestant {
  let cleanup: (() => Promise<void>) | undefined;
  let counts: ((queue: string) => Promise<number>) | undefined;
  return {
    name: 'bullmq',
    label: 'BullMQ',
    runtime: 'project',
    server: 'redis',
    bulkSize: 1000,
    settings: {
      store: 'Redis, appendonly yes, appendfsync everysec, maxmemory-policy noeviction',
      'worker concurrency': CONCURRENCY,
      'job options': 'removeOnComplete { count: 1000 }, removeOnFail { count: 5000 }',
      connections: 'worker: maxRetriesPerRequest null; producer: enableOfflineQueue false',
      'bulk API': 'Queue.addBulk(jobs), 1,000 per call',
      'single API': 'Queue.add(name, data)',
    },
    schedules: {
      periodMs: 1000,
      note: 'Queue.upsertJobScheduler(id, { every: 1000 }), one scheduler per schedule',
    },
    recovery: 'stalled-job check every 30 s, lock 30 s (defaults)',
    recoverySeconds: 30, // the stalled-job check interval: a job comes back at a check after its lock expired
    fastRecovery: {
      recovery: `worker lockDuration ${FAST_RECOVERY.lockDuration} ms, stalledInterval ${FAST_RECOVERY.stalledInterval} ms`,
      recoverySeconds: (FAST_RECOVERY.lockDuration + FAST_RECOVERY.stalledInterval) / 1000,
    },
    version: () => packageVersion('bullmq'),

    async setup(queues) {
      const { Redis } = await import('ioredis');
      const { Queue } = await import('bullmq');
      const redis = new Redis(REDIS_URL);
      const aof = ((await redis.config('GET', 'appendonly')) as string[])[1] ?? 'no';
      await redis.flushdb();
      await redis.config('SET', 'appendonly', 'yes', 'appendfsync', 'everysec');
      // Switching AOF on rewrites the file in the background; wait for that to end.
      while (/aof_rewrite_(in_progress|scheduled):1/.test(await redis.info('persistence'))) await sleep(20);
      const env = { REDIS_URL };
      const admin = new Map(queues.map((name) => [name, new Queue(name, { connection: connection(env) })]));
      counts = async (queue) => {
        const found = await admin.get(queue)!.getJobCounts(...UNFINISHED);
        return Object.values(found).reduce((sum, n) => sum + n, 0);
      };
      cleanup = async () => {
        for (const queue of admin.values()) await queue.close();
        await redis.flushdb();
        await redis.config('SET', 'appendonly', aof);
        redis.disconnect();
      };
      return env;
    },
    unfinished: (queue) => counts!(queue),
    async teardown() {
      await cleanup?.();
    },

    async connect(env, queues) {
      const { Queue } = await import('bullmq');
      const open = new Map(
        queues.map((name) => [
          name,
          new Queue(name, {
            connection: { ...connection(env), enableOfflineQueue: false },
            defaultJobOptions: JOB_OPTIONS,
          }),
        ]),
      );
      for (const queue of open.values()) await queue.waitUntilReady();
      return {
        async enqueueBulk(queue, payloads) {
          await open.get(queue)!.addBulk(payloads.map((data) => ({ name: 'noop', data })));
        },
        async enqueueOne(queue, payload) {
          await open.get(queue)!.add('noop', payload);
        },
        async schedule(queue, count, periodMs) {
          for (let i = 0; i < count; i++) {
            await open
              .get(queue)!
              .upsertJobScheduler(`s${i}`, { every: periodMs }, { name: 'noop', data: { i } });
          }
        },
        async unschedule(queue, count) {
          for (let i = 0; i < count; i++) await open.get(queue)!.removeJobScheduler(`s${i}`);
        },
        async close() {
          for (const queue of open.values()) await queue.close();
        },
      };
    },
    async consume(env, queue, handle) {
      const { Worker } = await import('bullmq');
      const worker = new Worker(
        queue,
        async (job) => {
          // A scheduler's job id is `repeat:<scheduler>:<nominal instant>`.
          const nominal = job.repeatJobKey ? Number(job.id!.slice(job.id!.lastIndexOf(':') + 1)) : undefined;
          await handle(job.data, nominal);
        },
        {
          connection: { ...connection(env), maxRetriesPerRequest: null },
          concurrency: CONCURRENCY,
          autorun: false,
          removeOnComplete: JOB_OPTIONS.removeOnComplete,
          removeOnFail: JOB_OPTIONS.removeOnFail,
          ...(queue === FAST_RECOVERY_QUEUE ? FAST_RECOVERY : {}),
        },
      );
      worker.on('error', (error) => console.error(`bullmq worker: ${error.message}`));
      await worker.waitUntilReady();
      return {
        async start() {
          void worker.run().catch((error: unknown) => console.error('bullmq worker run:', error));
        },
        stop: () => worker.close(),
      };
    },
  };
}
