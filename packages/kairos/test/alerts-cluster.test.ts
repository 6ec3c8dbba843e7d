import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Receiver, verifyKairosWebhook } from './alert-receiver.ts';
import { Cluster, TOKENS } from './cluster-harness.ts';
import { type Child, spawnTs, waitFor } from './processes.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

/**
 * Alerts end to end with real processes: two `kairos server` nodes on one PostgreSQL, a worker
 * process, a local webhook receiver. The node that delivers is killed (SIGKILL) while its request
 * hangs at the receiver; the other delivers the alert with the same event id.
 */
const DATABASE = testDatabaseUrl();
const WORKER = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url));

afterAll(dropTestSchemas);

describe('alerts on a two-node cluster', () => {
  const schema = testSchema('kairos_alerts_e2e');
  const cluster = new Cluster(`${DATABASE}?schema=${schema}`);
  let receiver: Receiver;
  let worker: Child;

  beforeAll(async () => {
    receiver = await new Receiver().start();
    await cluster.start('n1');
    await cluster.start('n2');
    worker = spawnTs(WORKER, [], {
      ...TOKENS,
      KAIROS_URL: cluster.nodes.get('n1')!.url,
      WORKER_NAME: 'alerts-worker',
      KAIROS_LOG_LEVEL: 'warn',
    });
    const client = cluster.any().client;
    await waitFor(
      async () => ((await client.listWorkers()).items.some((w) => w.status === 'active') ? true : undefined),
      60_000,
      'the worker',
    );
    await client.createAlertChannel({
      name: 'hook',
      type: 'webhook',
      url: `${receiver.url}/hook`,
      secret: 'e2e-key',
    });
  }, 300_000);

  afterAll(async () => {
    await receiver.stop();
    worker?.process.kill('SIGTERM');
    await worker?.exited;
    await cluster.stopAll();
  });

  /** The node whose instance holds the `alerts` lease now. */
  async function deliveringNode(): Promise<string> {
    const db = new pg.Client({ connectionString: DATABASE, options: `-c search_path="${schema}"` });
    await db.connect();
    try {
      return await waitFor(
        async () => {
          const { rows } = await db.query<{ owner: string }>(
            `SELECT owner FROM leases WHERE name = 'alerts' AND expires_at > (extract(epoch FROM clock_timestamp()) * 1000)`,
          );
          const owner = rows[0]?.owner;
          return [...cluster.nodes.values()].find((n) => owner?.startsWith(`${n.id}:`))?.name;
        },
        30_000,
        'a node to hold the alerts lease',
      );
    } finally {
      await db.end();
    }
  }

  it('a job that fails its last attempt is alerted once, even when the delivering node is killed mid-delivery', async () => {
    const client = cluster.any().client;
    await client.createJob({
      name: 'e2e-fail',
      handler: 'fail',
      trigger: { kind: 'manual' },
      retry: { maxAttempts: 1 },
    });
    await client.createAlertRule({ name: 'fail', kind: 'run-failed', job: 'e2e-fail', channels: ['hook'] });
    const victim = await deliveringNode();
    receiver.hold = 1;
    await client.triggerJob('e2e-fail');
    const [held] = await receiver.until(1, 60_000);
    expect(held).toBeDefined();
    await cluster.signal(victim, 'SIGKILL');
    const survivor = cluster.any().client;
    // The survivor takes the lease over (5 s) and sends the pending delivery again.
    const received = await receiver.until(2, 60_000);
    expect(received).toHaveLength(2);
    const ids = received.map((r) => r.headers['kairos-event-id']);
    expect(ids[1]).toBe(ids[0]);
    for (const request of received) expect(verifyKairosWebhook(request, 'e2e-key')).toBe(true);
    expect(JSON.parse(received[1]!.body)).toMatchObject({ state: 'firing', subject: 'job:e2e-fail' });
    await waitFor(
      async () =>
        (await survivor.listAlertDeliveries({ rule: 'fail' })).items[0]?.status === 'sent' ? true : undefined,
      30_000,
      'the delivery to be recorded as sent',
    );
    expect((await survivor.listAlertDeliveries({ rule: 'fail' })).items).toHaveLength(1);
  });

  it('a run that no live worker can take raises the queued alert within its threshold', async () => {
    const client = cluster.any().client;
    await client.createAlertRule({
      name: 'stuck',
      kind: 'run-queued',
      group: 'nobody-here',
      threshold: '2s',
      unroutableOnly: true,
      channels: ['hook'],
    });
    await client.createJob({
      name: 'orphan',
      handler: 'echo',
      group: 'nobody-here',
      trigger: { kind: 'manual' },
    });
    const before = receiver.received.length;
    await client.triggerJob('orphan');
    const received = await receiver.until(before + 1, 60_000);
    const alert = JSON.parse(received[before]!.body);
    expect(alert).toMatchObject({
      state: 'firing',
      rule: 'stuck',
      subject: 'job:orphan',
      details: { noLiveWorker: 'No live worker in group nobody-here' },
    });
  });
});
