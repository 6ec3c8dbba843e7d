import { fileURLToPath } from 'node:url';
import { KairosClient, type Run } from '@kairos/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, TOKENS } from './cluster-harness.ts';
import { tempDir } from './helpers.ts';
import { type Child, freePort, spawnKairos, spawnTs, waitFor } from './processes.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

// Resource-based scheduling with real processes (docs/workers.md#resource-based-scheduling):
// workers of 1, 2 and 4 cores with 16 slots each; on PostgreSQL three nodes, each worker on its own.
const WORKER = fileURLToPath(new URL('./fixtures/resources-worker.ts', import.meta.url));
const FLEET = { one: 1, two: 2, four: 4 } as const;
const ENV = { ...TOKENS, KAIROS_LOG_LEVEL: 'warn', KAIROS_RESOURCE_RESERVE_AFTER: '1s' };

describe.each(['sqlite', 'postgres'] as const)('resource-based scheduling on %s', (dialect) => {
  let admin: KairosClient;
  let cluster: Cluster | null = null;
  let node: Child | null = null;
  const workers: Child[] = [];

  async function finished(id: number, timeoutMs = 60_000): Promise<Run> {
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
    const urls: string[] = [];
    if (dialect === 'postgres') {
      cluster = new Cluster(`${testDatabaseUrl()}?schema=${testSchema('kairos_resources')}`, ENV);
      for (const name of ['n1', 'n2', 'n3']) urls.push((await cluster.start(name)).url);
    } else {
      const port = await freePort();
      urls.push(`http://127.0.0.1:${port}`);
      node = spawnKairos(['start', '--port', String(port), '--data-dir', tempDir()], ENV);
    }
    admin = new KairosClient({ url: urls[0]!, token: TOKENS.KAIROS_ADMIN_TOKEN });
    await waitFor(() => admin.health(), 120_000, `a node on ${urls[0]}`);
    for (const [i, [name, cpu]] of Object.entries(FLEET).entries()) {
      workers.push(
        spawnTs(WORKER, [], {
          ...ENV,
          KAIROS_URL: urls[i % urls.length]!,
          WORKER_NAME: name,
          WORKER_CPU: String(cpu),
        }),
      );
    }
    await waitFor(
      async () =>
        (await admin.listWorkers()).items.filter((w) => w.status === 'active').length === 3
          ? true
          : undefined,
      60_000,
      'three workers',
    );
    for (const [name, cpu] of [
      ['small', 1],
      ['big', 4],
    ] as const)
      await admin.createJob({ name, handler: 'hold', trigger: { kind: 'manual' }, resources: { cpu } });
    await admin.createJob({
      name: 'gpu',
      handler: 'hold',
      trigger: { kind: 'manual' },
      resources: { gpu: 1 },
    });
  }, 300_000);

  afterAll(async () => {
    for (const w of workers) w.process.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.exited));
    if (node) {
      node.process.kill('SIGTERM');
      await node.exited;
    }
    if (cluster) await cluster.stopAll();
    await dropTestSchemas();
  }, 120_000);

  it('no worker ever runs more cores than it advertised, with claims from every node at once', async () => {
    const { runIds } = await admin.triggerJobBatch(
      'small',
      Array.from({ length: 60 }, () => ({ params: { cpu: 1, ms: 150 } })),
    );
    const runs = await Promise.all(runIds.map((id) => finished(id)));
    const peaks = new Map<string, number>();
    for (const run of runs) {
      expect(run.status).toBe('succeeded');
      const { worker, peak, capacity } = run.result as { worker: string; peak: number; capacity: number };
      expect(peak).toBeLessThanOrEqual(capacity);
      peaks.set(worker, Math.max(peaks.get(worker) ?? 0, peak));
    }
    // Each worker took runs (16 slots each: cores, not slots, were the bound).
    expect([...peaks.keys()].sort()).toEqual(['four', 'one', 'two']);
  }, 180_000);

  it('a run that needs a whole worker is not starved by a stream of small ones', async () => {
    await admin.triggerJobBatch(
      'small',
      Array.from({ length: 12 }, (_, i) => ({ params: { cpu: 1, ms: 2000 + i * 150 } })),
    );
    const big = await admin.triggerJob('big', { params: { cpu: 4, ms: 50 } });
    // Small runs keep coming, faster than the fleet's 7 cores run them, until the big one ran: without
    // a reservation the worker of 4 cores always has one running, and the big run never fits.
    let started: Run | undefined;
    for (let round = 0; round < 150 && !started; round++) {
      // Durations spread from 2 to 4 s, so that a worker's cores free up one at a time, each taken
      // again by the next claim (every new batch wakes the polls).
      await admin.triggerJobBatch(
        'small',
        Array.from({ length: 3 }, (_, i) => ({
          params: { cpu: 1, ms: 2000 + (((round * 3 + i) * 137) % 2000) },
        })),
      );
      const run = await admin.getRun(big.id);
      if (run.status !== 'queued') started = run;
      else await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(started, 'the big run was starved').toBeDefined();
    const done = await finished(big.id);
    expect(done.status).toBe('succeeded');
    expect((done.result as { worker: string }).worker).toBe('four');
  }, 300_000);

  it('a run that fits no live worker says so', async () => {
    const run = await admin.triggerJob('gpu', { params: {} });
    const waiting = await waitFor(
      async () => (await admin.getRun(run.id)).waiting,
      30_000,
      'the run to be queued',
    );
    expect(waiting).toMatchObject({
      reason: 'no_worker_with_resources',
      resources: { request: { gpu: 1 }, missing: { gpu: 1 } },
    });
    await admin.cancelRun(run.id);
  });
});
