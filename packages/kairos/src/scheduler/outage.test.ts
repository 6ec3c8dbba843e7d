import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { compileJob } from '../core/job.ts';
import * as trigger from '../core/trigger.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import type { Store } from '../store/store.ts';
import { FakeClock } from './clock.ts';
import { TriggerLoop } from './trigger-loop.ts';

// Every evaluation of the trigger math, counted wherever the core makes it.
vi.mock('../core/trigger.ts', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../core/trigger.ts')>();
  return { ...actual, nextFireAfter: vi.fn(actual.nextFireAfter) };
});

const JOBS = 10_000;
const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;
const OUTAGE = 3 * 3_600_000;

/** The store with every call counted by operation name. */
function counting(store: Store): { store: Store; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const proxy = new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.set(String(key), (calls.get(String(key)) ?? 0) + 1);
        return value.apply(target, args);
      };
    },
  });
  return { store: proxy, calls };
}

const stores: Store[] = [];
afterAll(async () => {
  for (const store of stores) await store.close();
});

describe('restart after a 3-hour outage with 10,000 per-minute jobs', () => {
  it('plans every job with bounded work: no enumeration of the 1.8 million missed fires', async () => {
    const raw = new SqliteStore(join(tempDir(), 'outage.db'));
    stores.push(raw);
    await raw.migrate();
    const definition = (i: number) =>
      compileJob({ name: `job-${i}`, handler: 'h', trigger: { kind: 'cron', cron: '* * * * *' } });
    for (let i = 0; i < JOBS; i++) await raw.createJob(definition(i), T0 + MIN, T0);

    // Every node was down from T0 on; one comes back 3 h 30 s later.
    const clock = new FakeClock(T0 + OUTAGE + 30_000);
    const { store, calls } = counting(raw);
    const loop = new TriggerLoop({
      store,
      clock,
      owner: 'node',
      logger: pino({ level: 'silent' }),
      partitions: 4,
      partitionLeaseMs: 3000,
      misfireGraceMs: MIN,
      // Batches of a fixed size: the store calls are counted (a slow machine would shrink them).
      batchBudgetMs: Number.POSITIVE_INFINITY,
    });
    const evaluations = vi.mocked(trigger.nextFireAfter);
    evaluations.mockClear();
    await loop.tick();

    // Each job ran its one fire within the grace and recorded its misses as one ledger row.
    const runs = await raw.listRuns({ limit: JOBS * 2 });
    expect(runs).toHaveLength(JOBS);
    expect(new Set(runs.map((r) => r.fireTime))).toEqual(new Set([T0 + OUTAGE]));
    const ledger = await raw.listSkipped(runs[0]!.jobId, { limit: 10 });
    expect(ledger).toEqual([
      expect.objectContaining({ reason: 'misfire', first: T0 + MIN, last: T0 + OUTAGE - MIN, count: null }),
    ]);

    // 180 missed fires per job; planning costs a bounded number of evaluations per job, whatever the outage.
    const perJob = evaluations.mock.calls.length / JOBS;
    expect(perJob).toBeLessThan(30);
    // Store work: one due-jobs read and one fire transaction per batch of 500, plus the leases.
    const batches = Math.ceil(JOBS / 500);
    expect(calls.get('dueJobs')).toBeLessThanOrEqual(batches + 1);
    expect(calls.get('fire')).toBe(batches);
    const total = [...calls.values()].reduce((a, b) => a + b, 0);
    expect(total).toBeLessThanOrEqual(2 * batches + 5);
    // What it asserts is counted work, not time: 10,000 jobs created and fired take 5–10 s alone
    // and several times that beside other test files on a busy 2-core machine.
  }, 180_000);
});
