import { fileURLToPath } from 'node:url';
import { KairosClient } from '@kairos/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../src/store/postgres/test-database.ts';
import { Cluster, TOKENS } from './cluster-harness.ts';
import { checkHistory, readHistory } from './history.ts';
import { type Child, spawnTs, waitFor } from './processes.ts';

// Multi-process cluster tests on the machine's PostgreSQL: nodes are `kairos server` processes
// killed with real signals; the verdict comes from the run history in the store.

const DATABASE = testDatabaseUrl();
const WORKER = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Default timings: partition lease 3 s renewed every second; worker lease 5 s; reaper sweep 1 s. */
const PARTITION_LEASE_MS = 3000;
const WORKER_LEASE_MS = 5000;
const SWEEP_MS = 1000;
/** Two noisy cores run three nodes, workers and PostgreSQL: bounds get this much slack. */
const SLACK_MS = 3000;

afterAll(dropTestSchemas);

describe('a cluster of three nodes on PostgreSQL', () => {
  const schema = testSchema('kairos_cluster');
  const cluster = new Cluster(`${DATABASE}?schema=${schema}`);
  const JOBS = 200;

  beforeAll(async () => {
    await cluster.start('n1');
    await Promise.all([cluster.start('n2'), cluster.start('n3')]);
    await cluster.settled();
    const client = cluster.any().client;
    for (let i = 0; i < JOBS; i++) {
      await client.createJob({
        name: `every-second-${i}`,
        handler: 'echo',
        trigger: { kind: 'every', every: '1s' },
      });
    }
  }, 120_000);

  afterAll(() => cluster.stopAll());

  it('kill -9 of partition owners, again and again for 60 s: no fire doubled, none missing, firing resumes within the lease', async () => {
    const from = Math.ceil(Date.now() / 1000) * 1000 + 1000;
    const kills: number[] = [];
    for (let round = 0; round < 6; round++) {
      await sleep(7000);
      const victim = await cluster.busiestOwner();
      kills.push(Date.now());
      await cluster.signal(victim, 'SIGKILL');
      await sleep(3000);
      await cluster.start(victim);
    }
    await sleep(8000);
    const to = Math.floor(Date.now() / 1000) * 1000 - 6000;
    expect(to - from).toBeGreaterThanOrEqual(55_000);

    const history = await readHistory(DATABASE, schema);
    const seconds = (a: number, b: number) =>
      Array.from({ length: (b - a) / 1000 + 1 }, (_, i) => a + i * 1000);
    const report = checkHistory(
      history.filter((r) => r.job.startsWith('every-second-')),
      { from, to, expected: () => seconds(from, to), stuckBefore: 0 },
    );
    expect(report.duplicates).toEqual([]);
    expect(report.gaps.slice(0, 10)).toEqual([]);
    expect(kills).toHaveLength(6);
    // A fire due while its owner was dead waits for the lease to expire and a survivor's next
    // renewal: at most lease + renewal interval (1 s) late.
    expect(report.maxLatenessMs).toBeLessThanOrEqual(PARTITION_LEASE_MS + 1000 + SLACK_MS);
  }, 180_000);

  it('a paused owner (SIGSTOP past its lease) is fenced out and rejoins; nothing doubled or missed', async () => {
    await cluster.settled();
    const from = Math.ceil(Date.now() / 1000) * 1000 + 1000;
    const victim = await cluster.busiestOwner();
    const paused = cluster.nodes.get(victim)!;
    paused.child.process.kill('SIGSTOP');
    // The others take its partitions once its lease expires.
    let seen: unknown;
    try {
      await waitFor(
        async () => {
          const infos = await cluster.clusterNodes(victim);
          seen = infos.map(({ id, status, partitions }) => ({ id, status, partitions }));
          const others = infos
            .filter((n) => n.id !== paused.id && n.status === 'alive')
            .flatMap((n) => n.partitions);
          return new Set(others).size === 16 || undefined;
        },
        PARTITION_LEASE_MS + 1000 + SLACK_MS + 5000,
        'the other nodes to take over',
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}; the nodes last seen: ${JSON.stringify(seen)}`);
    } finally {
      paused.child.process.kill('SIGCONT');
    }
    await waitFor(
      async () => (paused.child.output().includes('partition leases lost') ? true : undefined),
      10_000,
      'the resumed node to notice',
    );
    await cluster.settled();
    await sleep(3000);
    const to = Math.floor(Date.now() / 1000) * 1000 - 3000;
    const history = await readHistory(DATABASE, schema);
    const seconds = (a: number, b: number) =>
      Array.from({ length: (b - a) / 1000 + 1 }, (_, i) => a + i * 1000);
    const report = checkHistory(
      history.filter((r) => r.job.startsWith('every-second-')),
      { from, to, expected: () => seconds(from, to), stuckBefore: 0 },
    );
    expect(report.duplicates).toEqual([]);
    expect(report.gaps.slice(0, 10)).toEqual([]);
    // Pause the schedules: the next tests want a quiet cluster.
    const client = cluster.any().client;
    await Promise.all(Array.from({ length: JOBS }, (_, i) => client.pauseJob(`every-second-${i}`)));
  }, 120_000);

  it('kill -9 of a worker with runs in flight: each is retried on another worker within lease + sweep + 1 s', async () => {
    const [n1, n2] = [...cluster.nodes.values()];
    const workers: Child[] = [];
    const startWorker = (name: string, url: string) => {
      const child = spawnTs(WORKER, [], { ...TOKENS, KAIROS_URL: url, WORKER_NAME: name });
      workers.push(child);
      return child;
    };
    try {
      const doomed = startWorker('doomed', n1!.url);
      const client = n2!.client;
      await waitFor(
        async () =>
          (await client.listWorkers()).items.some((w) => w.name === 'doomed' && w.status === 'active'),
        30_000,
        'worker',
      );
      await client.createJob({
        name: 'slow-pg',
        handler: 'sleep',
        trigger: { kind: 'manual' },
        timeout: '2m',
      });
      const { runIds } = await client.triggerJobBatch(
        'slow-pg',
        Array.from({ length: 6 }, () => ({ params: { ms: 4000 } })),
      );
      await waitFor(
        async () =>
          (await client.listRuns({ job: 'slow-pg', status: 'running' })).items.length === 6 || undefined,
        30_000,
        'six runs in flight on the doomed worker',
      );
      const killedAt = Date.now();
      doomed.process.kill('SIGKILL');
      await doomed.exited;
      startWorker('rescuer', n2!.url);
      const runs = await waitFor(
        async () => {
          const all = await Promise.all(runIds.map((id) => client.getRun(id)));
          return all.every((r) => r.status === 'succeeded') ? all : undefined;
        },
        60_000,
        'every run to succeed elsewhere',
      );
      for (const run of runs) {
        const [lost, retry] = run.attempts!;
        expect(lost?.status).toBe('lost');
        expect(Date.parse(retry!.startedAt) - killedAt).toBeLessThanOrEqual(
          WORKER_LEASE_MS + SWEEP_MS + 1000 + SLACK_MS,
        );
      }
      const history = await readHistory(DATABASE, schema);
      const report = checkHistory(history, {
        from: 0,
        to: 0,
        expected: () => [],
        stuckBefore: Date.now() - 60_000,
      });
      expect(report.stuck).toEqual([]);
      expect(report.unexplainedReruns).toEqual([]);
    } finally {
      for (const w of workers) w.process.kill('SIGKILL');
    }
  }, 120_000);

  it('a run created on one node reaches a worker long-polling another node at once (LISTEN/NOTIFY)', async () => {
    const [a, b] = [...cluster.nodes.values()];
    const worker = new KairosClient({ url: a!.url, token: TOKENS.KAIROS_WORKER_TOKEN });
    await b!.client.createJob({ name: 'cross-node', handler: 'cross', trigger: { kind: 'manual' } });
    const { workerId } = await worker.register({ group: 'default', handlers: ['cross'], capacity: 1 });
    const polling = worker.poll(workerId, { max: 1, waitMs: 20_000 });
    await sleep(200);
    const triggeredAt = Date.now();
    const run = await b!.client.triggerJob('cross-node');
    const { runs } = await polling;
    expect(runs.map((r) => r.runId)).toEqual([run.id]);
    // Well under the 2 s backstop sweep of a waiting poll: the notification woke it.
    expect(Date.now() - triggeredAt).toBeLessThan(1500);
  });

  it('a clean shutdown hands the partitions over in under a second', async () => {
    await cluster.settled();
    const victim = await cluster.busiestOwner();
    const stoppedAt = Date.now();
    await cluster.signal(victim, 'SIGTERM');
    await cluster.settled(16, 10_000);
    const handover = Date.now() - stoppedAt;
    expect(handover).toBeLessThan(1000 + SLACK_MS);
  }, 60_000);
});

describe('a PostgreSQL restart under load', () => {
  it('answers 503 with Retry-After while the database is down, loses no acknowledged run, and recovers by itself', async () => {
    const { startPrivatePostgres } = await import('./private-postgres.ts');
    const postgres = await startPrivatePostgres();
    const cluster = new Cluster(postgres.url);
    const workers: Child[] = [];
    try {
      const node = await cluster.start('solo');
      workers.push(spawnTs(WORKER, [], { ...TOKENS, KAIROS_URL: node.url, WORKER_NAME: 'w' }));
      const client = new KairosClient({ url: node.url, token: TOKENS.KAIROS_ADMIN_TOKEN, timeoutMs: 10_000 });
      await client.createJob({ name: 'load', handler: 'echo', trigger: { kind: 'manual' } });
      const acknowledged: number[] = [];
      const refusals: Array<{ status: number; code: string; retryAfter: string | null }> = [];
      let running = true;
      const load = (async () => {
        while (running) {
          const response = await fetch(`${node.url}/v1/jobs/load/trigger`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${TOKENS.KAIROS_ADMIN_TOKEN}`,
              'content-type': 'application/json',
            },
            body: '{}',
          }).catch(() => undefined);
          if (response?.ok) acknowledged.push(((await response.json()) as { id: number }).id);
          else if (response) {
            const body = (await response.json()) as { error: { code: string } };
            refusals.push({
              status: response.status,
              code: body.error.code,
              retryAfter: response.headers.get('retry-after'),
            });
          }
          await sleep(10);
        }
      })();
      await sleep(2000);
      postgres.stop();
      await sleep(1500);
      postgres.start();
      await sleep(3000);
      running = false;
      await load;

      expect(refusals.length).toBeGreaterThan(0);
      for (const refusal of refusals)
        expect(refusal).toEqual({ status: 503, code: 'STORE_UNAVAILABLE', retryAfter: '2' });
      expect(acknowledged.length).toBeGreaterThan(100);
      // Every acknowledged run exists and completes once the database is back.
      await waitFor(
        async () => {
          const page = await client.listRuns({ job: 'load', status: 'succeeded', limit: 500 });
          let count = page.items.length;
          let cursor = page.nextCursor;
          while (cursor) {
            const next = await client.listRuns({ job: 'load', status: 'succeeded', limit: 500, cursor });
            count += next.items.length;
            cursor = next.nextCursor;
          }
          return count >= acknowledged.length || undefined;
        },
        60_000,
        'every acknowledged run to succeed',
      );
      for (const id of acknowledged.slice(-20)) expect((await client.getRun(id)).status).toBe('succeeded');
    } finally {
      for (const w of workers) w.process.kill('SIGKILL');
      await cluster.stopAll();
      postgres.remove();
    }
  }, 120_000);
});
