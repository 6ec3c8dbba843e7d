import { type KairosApiError, KairosClient } from '@kairos/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KairosNode } from '../src/node.ts';
import { startTestNode, tempDir } from './helpers.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

/**
 * Namespace quotas are hard limits under concurrency (docs/tenancy.md#quotas), through the HTTP API
 * of a real node on each dialect: many requests sent at once, each checked in its write's
 * transaction under the namespace's lock, and the stored state never past the quota.
 */

afterAll(() => dropTestSchemas());

const manual = (name: string) => ({ name, handler: 'h', trigger: { kind: 'manual' as const } });
const everySecond = { kind: 'every' as const, every: '1s' };

/** The outcomes of calls made at once: how many succeeded, and the codes of the others. */
async function atOnce<T>(calls: Array<() => Promise<T>>) {
  const outcomes = await Promise.allSettled(calls.map((call) => call()));
  const codes = outcomes.flatMap((o) => (o.status === 'rejected' ? [(o.reason as KairosApiError).code] : []));
  return { succeeded: outcomes.length - codes.length, codes, outcomes };
}

describe.each(['sqlite', 'postgres'] as const)('namespace quotas under concurrency: %s', (dialect) => {
  let node: KairosNode;
  let admin: KairosClient;

  beforeAll(async () => {
    const dataDir = tempDir('kairos-quota-races-');
    ({ node, admin } = await startTestNode(
      {},
      dialect === 'postgres'
        ? { dataDir, databaseUrl: `${testDatabaseUrl()}?schema=${testSchema('kairos_quota_races')}` }
        : { dataDir },
    ));
  });

  async function namespaceWith(name: string, quotas: Parameters<KairosClient['putNamespaceQuotas']>[1]) {
    await admin.createNamespace({ name });
    await admin.putNamespaceQuotas(name, quotas);
    return new KairosClient({ url: node.url, token: 'admin-t', namespace: name });
  }

  async function queuedRuns(client: KairosClient, job: string): Promise<number> {
    return (await client.listRuns({ job, status: 'queued', limit: 500 })).items.length;
  }

  it('maxFiresPerSecond holds under 40 concurrent edits (PATCH and PUT)', async () => {
    const client = await namespaceWith('race-edit', { maxFiresPerSecond: 5 });
    for (let i = 0; i < 40; i++) await client.createJob(manual(`e-${i}`));
    const { succeeded, codes } = await atOnce(
      Array.from({ length: 40 }, (_, i) =>
        i % 2 === 0
          ? () => client.updateJob(`e-${i}`, { trigger: everySecond })
          : () => client.putJob({ ...manual(`e-${i}`), trigger: everySecond }),
      ),
    );
    const jobs = (await client.listJobs({ limit: 100 })).items;
    const firing = jobs.filter((j) => j.trigger.kind === 'every');
    expect(firing).toHaveLength(5);
    expect(succeeded).toBe(5);
    expect(codes.every((c) => c === 'QUOTA_EXCEEDED')).toBe(true);
  });

  it('maxFiresPerSecond holds when edits race creates, and a paused job resuming with a new schedule', async () => {
    const client = await namespaceWith('race-mixed', { maxFiresPerSecond: 3 });
    for (let i = 0; i < 6; i++) await client.createJob({ ...manual(`m-${i}`), paused: true });
    const { succeeded } = await atOnce([
      ...Array.from(
        { length: 6 },
        (_, i) => () =>
          // A paused job resumed with a faster trigger in the same edit.
          client.updateJob(`m-${i}`, { trigger: everySecond, paused: false }),
      ),
      ...Array.from(
        { length: 6 },
        (_, i) => () => client.createJob({ ...manual(`n-${i}`), trigger: everySecond }),
      ),
    ]);
    const firing = (await client.listJobs({ limit: 100 })).items.filter((j) => j.trigger.kind === 'every');
    expect(firing).toHaveLength(3);
    expect(succeeded).toBe(3);
  });

  it('maxQueuedRuns holds under 50 concurrent triggers', async () => {
    const client = await namespaceWith('race-trigger', { maxQueuedRuns: 10 });
    await client.createJob(manual('t'));
    const { succeeded, codes } = await atOnce(Array.from({ length: 50 }, () => () => client.triggerJob('t')));
    expect(await queuedRuns(client, 't')).toBe(10);
    expect(succeeded).toBe(10);
    expect(codes.every((c) => c === 'QUOTA_EXCEEDED')).toBe(true);
  });

  it('maxQueuedRuns holds under concurrent trigger batches and triggers together', async () => {
    const client = await namespaceWith('race-batch', { maxQueuedRuns: 10 });
    await client.createJob(manual('b'));
    await client.createJob(manual('b2'));
    await atOnce<unknown>([
      ...Array.from({ length: 15 }, () => () => client.triggerJobBatch('b', [{}, {}, {}])),
      ...Array.from({ length: 15 }, () => () => client.triggerJob('b2')),
    ]);
    const queued = (await queuedRuns(client, 'b')) + (await queuedRuns(client, 'b2'));
    expect(queued).toBeLessThanOrEqual(10);
    // Each refusal came only when the runs would pass the quota: at least 8 are queued.
    expect(queued).toBeGreaterThanOrEqual(8);
  });

  it('a repeated trigger with an idempotency key answers its run, also once the quota is reached', async () => {
    const client = await namespaceWith('race-keys', { maxQueuedRuns: 3 });
    await client.createJob(manual('k'));
    const { succeeded, outcomes } = await atOnce(
      Array.from({ length: 20 }, (_, i) => () => client.triggerJob('k', { idempotencyKey: `key-${i}` })),
    );
    expect(succeeded).toBe(3);
    const held = outcomes.flatMap((o, i) =>
      o.status === 'fulfilled' ? [{ key: `key-${i}`, id: o.value.id }] : [],
    );
    expect(await queuedRuns(client, 'k')).toBe(3);
    // The same requests again, at once: each kept key answers its run; no new run, no refusal.
    const repeated = await Promise.all(
      held.map(({ key }) => client.triggerJob('k', { idempotencyKey: key })),
    );
    expect(repeated.map((r) => r.id)).toEqual(held.map((h) => h.id));
    const batch = await client.triggerJobBatch(
      'k',
      held.map(({ key }) => ({ idempotencyKey: key })),
    );
    expect(batch.runIds).toEqual(held.map((h) => h.id));
    expect((await atOnce([() => client.triggerJob('k', { idempotencyKey: 'new' })])).codes).toEqual([
      'QUOTA_EXCEEDED',
    ]);
    expect(await queuedRuns(client, 'k')).toBe(3);
  });

  it('maxQueuedRuns bounds backfills too; a repeated backfill answers the runs it made', async () => {
    const client = await namespaceWith('race-backfill', { maxQueuedRuns: 10 });
    // Paused: its schedule queues nothing while the test runs; a backfill still runs its past fires.
    await client.createJob({ ...manual('f'), trigger: { kind: 'every', every: '1m' }, paused: true });
    const to = Math.floor(Date.now() / 60_000) * 60_000;
    const range = (k: number) => ({
      from: new Date(to - (k * 4 + 3) * 60_000).toISOString(),
      to: new Date(to - k * 4 * 60_000).toISOString(),
      overlap: 'allow' as const,
    });
    // Eight backfills of 4 fires each, at once: two fit.
    const { succeeded, codes } = await atOnce(
      Array.from({ length: 8 }, (_, k) => () => client.backfill('f', range(k))),
    );
    expect(await queuedRuns(client, 'f')).toBeLessThanOrEqual(10);
    expect(succeeded).toBe(2);
    expect(codes.every((c) => c === 'QUOTA_EXCEEDED')).toBe(true);
    const done = (await client.listRuns({ job: 'f', limit: 20 })).items.map((r) => r.fireTime);
    const first = Date.parse(done[0]!);
    const k = Math.floor((to - first) / 240_000);
    const again = await client.backfill('f', range(k));
    expect(again.runs).toEqual([]);
    expect(again.existing.length).toBeGreaterThan(0);
  });
});
