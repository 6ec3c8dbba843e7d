import { fileURLToPath } from 'node:url';
import { KairosClient, type Run } from '@kairos/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.ts';
import { type Child, freePort, spawnKairos, spawnTs, waitFor } from './processes.ts';

const WORKER = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url));
const env = { KAIROS_ADMIN_TOKEN: 'e2e-admin', KAIROS_WORKER_TOKEN: 'e2e-worker', KAIROS_LOG_LEVEL: 'warn' };

let url: string;
let node: Child;
let admin: KairosClient;

function startWorker(name: string): Child {
  return spawnTs(WORKER, [], { ...env, KAIROS_URL: url, WORKER_NAME: name });
}

async function finished(id: number, timeoutMs = 20_000): Promise<Run> {
  return waitFor(
    async () => {
      const run = await admin.getRun(id);
      return ['succeeded', 'failed', 'timed_out', 'cancelled'].includes(run.status) ? run : undefined;
    },
    timeoutMs,
    `run ${id} to finish`,
  );
}

beforeAll(async () => {
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  node = spawnKairos(['start', '--port', String(port), '--data-dir', tempDir()], env);
  admin = new KairosClient({ url, token: env.KAIROS_ADMIN_TOKEN });
  await waitFor(() => admin.health(), 120_000, `kairos start on ${url}\n${node.output()}`);
});

afterAll(async () => {
  node.process.kill('SIGTERM');
  expect(await node.exited).toBe(0);
});

describe('kairos start, a job from the API, workers in their own processes', () => {
  let worker: Child;

  beforeAll(async () => {
    worker = startWorker('w-main');
    await waitFor(
      async () => (await admin.listWorkers()).items.some((w) => w.name === 'w-main' && w.status === 'active'),
      20_000,
      'worker',
    );
  });
  afterAll(async () => {
    worker.process.kill('SIGTERM');
    await worker.exited;
  });

  it('fires a per-second cron job in a time zone and its runs succeed', async () => {
    await admin.createJob({
      name: 'tick',
      handler: 'echo',
      trigger: { kind: 'cron', cron: '* * * * * *', timezone: 'Asia/Shanghai' },
    });
    const runs = await waitFor(
      async () => {
        const page = await admin.listRuns({ job: 'tick', status: 'succeeded' });
        return page.items.length >= 3 ? page.items : undefined;
      },
      20_000,
      'three scheduled runs to succeed',
    );
    for (const run of runs) {
      expect(run).toMatchObject({ cause: 'schedule', attempt: 1 });
      expect(Date.parse(run.fireTime!) % 1000).toBe(0);
    }
    const fireTimes = runs.map((r) => r.fireTime);
    expect(new Set(fireTimes).size).toBe(fireTimes.length);
    await admin.pauseJob('tick');
  });

  it('runs a manual trigger with params, retries a flaky handler, fails a broken one, honours non-retryable errors', async () => {
    await admin.createJob({ name: 'echo', handler: 'echo', trigger: { kind: 'manual' } });
    const echo = await finished((await admin.triggerJob('echo', { params: { hello: 'world' } })).id);
    expect(echo).toMatchObject({ status: 'succeeded', result: { echo: { hello: 'world' }, attempt: 1 } });
    expect(echo.workerId).not.toBeNull();

    await admin.createJob({
      name: 'flaky',
      handler: 'flaky',
      trigger: { kind: 'manual' },
      retry: { delay: '200ms' },
    });
    const flaky = await finished((await admin.triggerJob('flaky')).id);
    expect(flaky).toMatchObject({ status: 'succeeded', attempt: 2 });
    expect(flaky.attempts?.map((a) => a.status)).toEqual(['failed', 'succeeded']);

    await admin.createJob({
      name: 'fail',
      handler: 'fail',
      trigger: { kind: 'manual' },
      retry: { maxAttempts: 2, delay: '100ms' },
    });
    const failed = await finished((await admin.triggerJob('fail')).id);
    expect(failed).toMatchObject({ status: 'failed', attempt: 2, error: { message: 'always fails' } });

    await admin.createJob({ name: 'fatal', handler: 'fatal', trigger: { kind: 'manual' } });
    const fatal = await finished((await admin.triggerJob('fatal')).id);
    expect(fatal).toMatchObject({ status: 'failed', attempt: 1, error: { name: 'NonRetryableError' } });
  });

  it('times out a handler at its time limit', async () => {
    await admin.createJob({
      name: 'slow',
      handler: 'sleep',
      trigger: { kind: 'manual' },
      timeout: '1s',
      retry: { maxAttempts: 1 },
    });
    const run = await finished((await admin.triggerJob('slow', { params: { ms: 30_000 } })).id);
    expect(run).toMatchObject({ status: 'timed_out', attempt: 1 });
  });
});

describe('a worker killed mid-run', () => {
  it('is declared lost after its lease and the run is retried on another worker', async () => {
    const doomed = startWorker('w-doomed');
    await waitFor(
      async () =>
        (await admin.listWorkers()).items.some((w) => w.name === 'w-doomed' && w.status === 'active'),
      20_000,
      'doomed worker',
    );
    await admin.createJob({ name: 'long', handler: 'sleep', trigger: { kind: 'manual' }, timeout: '1m' });
    const { id } = await admin.triggerJob('long', { params: { ms: 2000 } });
    const running = await waitFor(
      async () => {
        const run = await admin.getRun(id);
        return run.status === 'running' ? run : undefined;
      },
      20_000,
      'the run to start',
    );
    const doomedId = (await admin.listWorkers()).items.find((w) => w.name === 'w-doomed')!.id;
    expect(running.workerId).toBe(doomedId);
    doomed.process.kill('SIGKILL');
    await doomed.exited;

    const rescuer = startWorker('w-rescuer');
    try {
      const run = await finished(id, 30_000);
      expect(run.status).toBe('succeeded');
      expect(run.attempts?.map((a) => [a.status, a.workerId === doomedId])).toEqual([
        ['lost', true],
        ['succeeded', false],
      ]);
      // A lost worker is listed only when asked for all.
      expect((await admin.listWorkers()).items.find((w) => w.id === doomedId)).toBeUndefined();
      const workers = (await admin.listWorkers({ all: true })).items;
      expect(workers.find((w) => w.id === doomedId)?.status).toBe('lost');
    } finally {
      rescuer.process.kill('SIGTERM');
      await rescuer.exited;
    }
  });
});
