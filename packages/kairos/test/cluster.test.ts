import { fileURLToPath } from 'node:url';
import { KairosClient } from '@kairos/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, TOKENS } from './cluster-harness.ts';
import { checkHistory, readHistory } from './history.ts';
import { type Child, spawnTs, waitFor } from './processes.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

// Multi-process cluster tests on the machine's PostgreSQL: nodes are `kairos server` processes
// killed with real signals; the verdict comes from the run history in the store.

const DATABASE = testDatabaseUrl();
const WORKER = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Default timings: worker lease 5 s. */
const WORKER_LEASE_MS = 5000;
/** How far two nodes' store clocks may disagree (each anchored to the database's every 10 s). */
const CLOCK_SKEW_MS = 100;

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
  }, 300_000);

  afterAll(() => cluster.stopAll());

  /**
   * The history of the every-second jobs over [from, to], once every fire of it has its run: a busy
   * machine fires late, and lateness is not what these tests judge (the trigger-loop tests bound it
   * on a fake clock). Gives up after a generous wait, and the caller's assertions show the gaps.
   */
  async function historyOf(from: number, to: number) {
    const seconds = Array.from({ length: (to - from) / 1000 + 1 }, (_, i) => from + i * 1000);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const history = await readHistory(DATABASE, schema);
      const report = checkHistory(
        history.filter((r) => r.job.startsWith('every-second-')),
        { from, to, expected: () => seconds, stuckBefore: 0 },
      );
      if (report.gaps.length === 0 || Date.now() > deadline) return report;
      await sleep(1000);
    }
  }

  it('kill -9 of partition owners, again and again for 60 s: no fire doubled, none missing', async () => {
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
    const to = Math.floor(Date.now() / 1000) * 1000;
    expect(to - from).toBeGreaterThanOrEqual(55_000);
    const report = await historyOf(from, to);
    expect(report.duplicates).toEqual([]);
    expect(report.gaps.slice(0, 10)).toEqual([]);
    expect(kills).toHaveLength(6);
  }, 900_000);

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
        120_000,
        'the other nodes to take over',
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}; the nodes last seen: ${JSON.stringify(seen)}`);
    } finally {
      paused.child.process.kill('SIGCONT');
    }
    await waitFor(
      async () => (paused.child.output().includes('partition leases lost') ? true : undefined),
      60_000,
      'the resumed node to notice',
    );
    await cluster.settled(16, 120_000);
    const to = Math.floor(Date.now() / 1000) * 1000;
    const report = await historyOf(from, to);
    expect(report.duplicates).toEqual([]);
    expect(report.gaps.slice(0, 10)).toEqual([]);
    // Pause the schedules: the next tests want a quiet cluster. Ten at a time: 200 requests at
    // once would queue past the client's timeout on a busy machine.
    const client = cluster.any().client;
    for (let i = 0; i < JOBS; i += 10)
      await Promise.all(
        Array.from({ length: Math.min(10, JOBS - i) }, (_, k) => client.pauseJob(`every-second-${i + k}`)),
      );
  }, 600_000);

  it('kill -9 of a worker with runs in flight: each is retried once on another worker after the dead one’s lease', async () => {
    const [n1, n2] = [...cluster.nodes.values()];
    const workers: Child[] = [];
    // A group of their own: the default group holds the backlog the schedules above left queued
    // (no worker ran them), which a worker there would have to work through first.
    const startWorker = (name: string, url: string) => {
      const child = spawnTs(WORKER, [], {
        ...TOKENS,
        KAIROS_URL: url,
        WORKER_NAME: name,
        WORKER_GROUP: 'rescue',
      });
      workers.push(child);
      return child;
    };
    const client = n2!.client;
    const active = (name: string) =>
      waitFor(
        async () => (await client.listWorkers()).items.find((w) => w.name === name && w.status === 'active'),
        60_000,
        `worker ${name} to be active`,
      );
    try {
      const doomed = startWorker('doomed', n1!.url);
      const doomedId = (await active('doomed')).id;
      await client.createJob({
        name: 'slow-pg',
        group: 'rescue',
        handler: 'hold-first',
        trigger: { kind: 'manual' },
        timeout: '5m',
      });
      const { runIds } = await client.triggerJobBatch(
        'slow-pg',
        Array.from({ length: 6 }, () => ({})),
      );
      // A first attempt holds its run until its worker dies: the six stay in flight however slow
      // the machine is, and nothing else in the group can take them.
      await waitFor(
        async () => {
          const runs = await Promise.all(runIds.map((id) => client.getRun(id)));
          return runs.every((r) => r.status === 'running' && r.workerId === doomedId) || undefined;
        },
        60_000,
        'six runs in flight on the doomed worker',
      );
      // The rescuer is up before the kill: what follows measures the cluster, not a process start.
      startWorker('rescuer', n2!.url);
      const rescuerId = (await active('rescuer')).id;
      doomed.process.kill('SIGKILL');
      await doomed.exited;
      const runs = await waitFor(
        async () => {
          const all = await Promise.all(runIds.map((id) => client.getRun(id)));
          return all.every((r) => r.status === 'succeeded') ? all : undefined;
        },
        60_000,
        'every run to succeed elsewhere',
      );
      const gone = (await client.listWorkers({ all: true })).items.find((w) => w.id === doomedId)!;
      for (const run of runs) {
        expect(run.attempts).toHaveLength(2);
        const [lost, retry] = run.attempts!;
        expect(lost).toMatchObject({ status: 'lost', workerId: doomedId });
        expect(retry).toMatchObject({ status: 'succeeded', workerId: rescuerId });
        // Declared lost only once the dead worker's lease had run out, and retried after that.
        expect(Date.parse(lost!.finishedAt!) - Date.parse(gone.lastHeartbeatAt)).toBeGreaterThanOrEqual(
          WORKER_LEASE_MS - CLOCK_SKEW_MS,
        );
        expect(Date.parse(retry!.startedAt)).toBeGreaterThanOrEqual(Date.parse(lost!.finishedAt!));
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
  }, 240_000);

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

  it('a clean shutdown releases its leases and its row before it exits; the others take its partitions', async () => {
    await cluster.settled(16, 120_000);
    const victim = await cluster.busiestOwner();
    const id = cluster.nodes.get(victim)!.id;
    await cluster.signal(victim, 'SIGTERM');
    // Read at once after the exit: leases left to expire would still be valid for up to a lease.
    const db = new pg.Client({ connectionString: DATABASE, options: `-c search_path="${schema}"` });
    await db.connect();
    try {
      const { rows: leases } = await db.query(
        `SELECT name FROM leases WHERE owner LIKE $1 || ':%' AND expires_at > 0`,
        [id],
      );
      expect(leases).toEqual([]);
      const { rows: nodes } = await db.query('SELECT id FROM nodes WHERE name = $1', [id]);
      expect(nodes).toEqual([]);
    } finally {
      await db.end();
    }
    await cluster.settled(16, 120_000);
  }, 300_000);
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
      // Each phase waits for what it needs to see, not for a time: a busy machine answers fewer
      // requests a second.
      await waitFor(async () => acknowledged.length >= 20 || undefined, 60_000, 'runs acknowledged before');
      postgres.stop();
      await waitFor(async () => refusals.length >= 3 || undefined, 60_000, 'refusals while it is down');
      postgres.start();
      const atRestart = acknowledged.length;
      await waitFor(
        async () => acknowledged.length >= atRestart + 20 || undefined,
        60_000,
        'runs acknowledged after the restart',
      );
      running = false;
      await load;

      for (const refusal of refusals)
        expect(refusal).toEqual({ status: 503, code: 'STORE_UNAVAILABLE', retryAfter: '2' });
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
  }, 300_000);
});
