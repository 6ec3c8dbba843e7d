import { KairosClient, type NodeInfo } from '@kairos/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKENS } from './cluster-harness.ts';
import { type Child, freePort, spawnKairos, waitFor } from './processes.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

// Node identity and membership in real processes on PostgreSQL (issue #13, defect 4): two
// `kairos server` processes started with the same KAIROS_NODE_ID, and a node killed with -9.

const DATABASE = testDatabaseUrl();
/** A short partition lease, so that a gone node is forgotten within seconds (5 leases after expiry). */
const LEASE_MS = 1000;
const FORGOTTEN_AFTER_MS = (1 + 5) * LEASE_MS;
/** Heartbeats are written on each node's store clock (anchored to the database's, 10 s apart). */
const CLOCK_SKEW_MS = 100;

afterAll(dropTestSchemas);

describe('two processes started with the same node id', () => {
  const url = `${DATABASE}?schema=${testSchema('kairos_twins')}`;
  const twins: Array<{ child: Child; client: KairosClient }> = [];

  async function start(): Promise<{ child: Child; client: KairosClient }> {
    const port = await freePort();
    const child = spawnKairos(['server', '--port', String(port)], {
      ...TOKENS,
      KAIROS_LOG_LEVEL: 'warn',
      KAIROS_DATABASE_URL: url,
      KAIROS_NODE_ID: 'twin',
      KAIROS_PARTITION_LEASE: String(LEASE_MS),
    });
    const client = new KairosClient({
      url: `http://127.0.0.1:${port}`,
      token: TOKENS.KAIROS_ADMIN_TOKEN,
      timeoutMs: 10_000,
    });
    await waitFor(() => client.health(), 60_000, `a node to answer\n${child.output()}`);
    const twin = { child, client };
    twins.push(twin);
    return twin;
  }

  beforeAll(async () => {
    await start();
    await start();
  }, 180_000);
  afterAll(async () => {
    for (const { child } of twins) {
      child.process.kill('SIGTERM');
      await child.exited;
    }
  });

  it('hold partitions apart, are listed apart, and each says loudly that another has its id', async () => {
    const nodes = await waitFor(
      async () => {
        const alive = (await twins[0]!.client.listNodes()).items.filter((n) => n.status === 'alive');
        const owned = alive.flatMap((n) => n.partitions);
        const fair = alive.every((n) => n.partitions.length === 8);
        return alive.length === 2 && fair && new Set(owned).size === 16 ? alive : undefined;
      },
      60_000,
      'the two nodes to hold 8 of the 16 partitions each',
    );
    expect(nodes.map((n) => n.id)).toEqual(['twin', 'twin']);
    expect(new Set(nodes.map((n) => n.instance)).size).toBe(2);
    for (const { child } of twins)
      await waitFor(
        async () => child.output().includes('other live node(s) have the node id'),
        30_000,
        `the warning in the log\n${child.output()}`,
      );
  }, 120_000);

  it('a node killed with -9 is listed as gone without partitions, then forgotten 5 leases after its row expired', async () => {
    const [survivor, doomed] = twins;
    const instances = new Set((await survivor!.client.listNodes()).items.map((n) => n.instance));
    doomed!.child.process.kill('SIGKILL');
    await doomed!.child.exited;
    twins.pop();
    let gone: NodeInfo | undefined;
    await waitFor(
      async () => {
        const items = (await survivor!.client.listNodes()).items;
        gone ??= items.find((n) => n.status === 'gone');
        return gone !== undefined && items.every((n) => n.status === 'alive') ? true : undefined;
      },
      60_000,
      'the dead node to be listed as gone, then forgotten',
    );
    expect(instances.has(gone!.instance)).toBe(true);
    expect(gone!.partitions).toEqual([]);
    // Not forgotten before its bound: it was still listed until at least then.
    expect(Date.now() - Date.parse(gone!.lastHeartbeatAt)).toBeGreaterThanOrEqual(
      FORGOTTEN_AFTER_MS - CLOCK_SKEW_MS,
    );
    // The survivor holds every partition alone.
    await waitFor(
      async () => {
        const items = (await survivor!.client.listNodes()).items;
        return items.length === 1 && items[0]!.partitions.length === 16 ? true : undefined;
      },
      30_000,
      'the survivor to hold every partition',
    );
  }, 120_000);
});
