import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import type { Store } from '../store/store.ts';
import { FakeClock } from './clock.ts';
import { JobService } from './job-service.ts';
import { TriggerLoop, type TriggerLoopOptions } from './trigger-loop.ts';

const dir = tempDir();
const logger = pino({ level: 'silent' });
let n = 0;
const stores: Store[] = [];

async function twoStoresOnOneFile(): Promise<[Store, Store]> {
  const path = join(dir, `loop-${n++}.db`);
  const a = new SqliteStore(path);
  await a.migrate();
  const b = new SqliteStore(path);
  stores.push(a, b);
  return [a, b];
}

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

function loop(
  store: Store,
  clock: FakeClock,
  owner: string,
  useLeases = true,
  extra: Partial<TriggerLoopOptions> = {},
): TriggerLoop {
  return new TriggerLoop({
    store,
    clock,
    owner,
    logger,
    partitions: 4,
    partitionLeaseMs: 3000,
    misfireGraceMs: 60_000,
    useLeases,
    ...extra,
  });
}

/** Every fire time of every job, counted from the store's run history. */
async function fireCounts(store: Store): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const run of await store.listRuns({ limit: 100_000 })) {
    const key = `${run.jobName}@${run.fireTime}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** The store, with `ms` of the clock passing in each fire: a storm that takes a while. */
function slowFires(store: Store, clock: FakeClock, ms: number): Store {
  return new Proxy(store, {
    get(target, key) {
      if (key === 'fire') {
        return async (...args: Parameters<Store['fire']>) => {
          const result = await target.fire(...args);
          await clock.advance(ms);
          return result;
        };
      }
      const value = Reflect.get(target, key);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('TriggerLoop', () => {
  it('two loops with leases on one store fire every fire time exactly once', async () => {
    const [storeA, storeB] = await twoStoresOnOneFile();
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 0, 0, 0, 0));
    const jobs = new JobService(storeA, clock);
    for (let i = 0; i < 20; i++)
      await jobs.create({ name: `job-${i}`, handler: 'h', trigger: { kind: 'every', every: '1s' } });
    const a = loop(storeA, clock, 'node-a');
    const b = loop(storeB, clock, 'node-b');
    const start = clock.now();
    for (let step = 0; step < 120; step++) {
      await clock.advance(500);
      await (step % 2 ? a : b).tick();
      await (step % 2 ? b : a).tick();
    }
    const counts = await fireCounts(storeA);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    // Every nominal second of the 60 s window, for every job: no gap.
    expect(counts.size).toBe(20 * 60);
    for (let t = start + 1000; t <= clock.now(); t += 1000) expect(counts.get(`job-7@${t}`)).toBe(1);
  });

  it('without leases, two loops that both fire every partition still create each run once', async () => {
    const [storeA, storeB] = await twoStoresOnOneFile();
    const clock = new FakeClock();
    const jobs = new JobService(storeA, clock);
    for (let i = 0; i < 10; i++)
      await jobs.create({ name: `job-${i}`, handler: 'h', trigger: { kind: 'cron', cron: '* * * * * *' } });
    const a = loop(storeA, clock, 'a', false);
    const b = loop(storeB, clock, 'b', false);
    for (let step = 0; step < 30; step++) {
      await clock.advance(1000);
      await Promise.all([a.tick(), b.tick()]);
    }
    const counts = await fireCounts(storeA);
    expect(counts.size).toBe(10 * 30);
    expect(Math.max(...counts.values())).toBe(1);
  });

  it('a paused owner whose lease expired is fenced out: its late tick writes nothing', async () => {
    const [storeA, storeB] = await twoStoresOnOneFile();
    const clock = new FakeClock();
    await new JobService(storeA, clock).create({
      name: 'j',
      handler: 'h',
      trigger: { kind: 'every', every: '1s' },
    });
    const a = loop(storeA, clock, 'a');
    const b = loop(storeB, clock, 'b');
    await a.tick();
    expect(a.owned).toHaveLength(4);
    await b.tick();
    expect(b.owned).toHaveLength(0);
    // a is frozen (SIGSTOP) for 10 s: its leases expire and b takes every partition.
    await clock.advance(10_000);
    await b.tick();
    expect(b.owned).toHaveLength(4);
    await clock.advance(1000);
    const before = (await fireCounts(storeA)).size;
    // a wakes up still believing it owns the partitions (it skips its renewal); its write is rejected.
    (a as unknown as { leasesRenewedAt: number }).leasesRenewedAt = clock.now();
    await a.tick();
    expect(a.owned).toHaveLength(0);
    expect((await fireCounts(storeA)).size).toBe(before);
    await b.tick();
    const counts = await fireCounts(storeA);
    expect(counts.size).toBe(before + 1);
    expect(Math.max(...counts.values())).toBe(1);
  });

  it('three running loops share the partitions fairly, and take a stopped node’s share at once', async () => {
    // One store: its events (a node released its leases) reach every loop, as NOTIFY does across nodes.
    const [store] = await twoStoresOnOneFile();
    const clock = new FakeClock();
    const make = (owner: string) =>
      new TriggerLoop({
        store,
        clock,
        owner,
        logger,
        partitions: 16,
        partitionLeaseMs: 3000,
        misfireGraceMs: 60_000,
      });
    const loops = [make('a'), make('b'), make('c')];
    for (const l of loops) l.start();
    try {
      const balanced = () => {
        const counts = loops.map((l) => l.owned.length);
        return counts.reduce((a, b) => a + b) === 16 && Math.max(...counts) <= 6;
      };
      // The first loop alone takes all 16; as the others show up it hands over its surplus.
      for (let round = 0; round < 20 && !balanced(); round++) await clock.advance(1000);
      const owned = loops.map((l) => l.owned);
      // Each at most its share, ceil(16 / 3) = 6; together every partition, none twice.
      expect(Math.max(...owned.map((o) => o.length))).toBe(6);
      expect(new Set(owned.flat()).size).toBe(16);
      // A clean stop releases the leases; the others take them without waiting for expiry (no clock advance).
      await loops[0]!.stop();
      await vi.waitFor(() => expect(loops.slice(1).map((l) => l.owned.length)).toEqual([8, 8]));
    } finally {
      for (const l of loops) await l.stop();
    }
  });

  it('two loops with the same node id and their own instances hold partitions apart, and each logs an error', async () => {
    const [store] = await twoStoresOnOneFile();
    const clock = new FakeClock();
    const errors: string[] = [];
    const loud = pino({ level: 'error' }, { write: (line: string) => errors.push(line) });
    const make = (instance: string) =>
      new TriggerLoop({
        store,
        clock,
        owner: instance,
        nodeId: 'twin',
        logger: loud,
        partitions: 16,
        partitionLeaseMs: 3000,
        misfireGraceMs: 60_000,
      });
    const loops = [make('twin:a'), make('twin:b')];
    for (const l of loops) l.start();
    try {
      const apart = () => loops.every((l) => l.owned.length === 8);
      for (let round = 0; round < 20 && !apart(); round++) await clock.advance(1000);
      expect(new Set(loops.flatMap((l) => l.owned)).size).toBe(16);
      expect(loops.map((l) => l.owned.length)).toEqual([8, 8]);
      const instances = errors.map((line) => JSON.parse(line)).filter((e) => e.nodeId === 'twin');
      expect(new Set(instances.map((e) => e.instance))).toEqual(new Set(['twin:a', 'twin:b']));
      // Once per minute at most while it lasts, not at every renewal.
      const before = errors.length;
      await clock.advance(30_000);
      expect(errors.length).toBe(before);
    } finally {
      for (const l of loops) await l.stop();
    }
  });

  it('a storm over several batches fires exactly the due jobs, each once, and keeps its leases throughout', async () => {
    const [store] = await twoStoresOnOneFile();
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 0, 0, 30));
    const jobs = new JobService(store, clock);
    // Ten jobs due at 00:01:00 and two at 00:02:00.
    for (let i = 0; i < 10; i++)
      await jobs.create({ name: `due-${i}`, handler: 'h', trigger: { kind: 'every', every: '1m' } });
    for (let i = 0; i < 2; i++)
      await jobs.create({ name: `later-${i}`, handler: 'h', trigger: { kind: 'every', every: '2m' } });
    let fenced = 0;
    // Batches of 3, each taking a second: the storm lasts 4 s, longer than the 3 s lease.
    const l = loop(slowFires(store, clock, 1000), clock, 'a', true, {
      batchSize: 3,
      onFenced: () => fenced++,
    });
    const minute = Date.UTC(2026, 0, 1, 0, 1, 0);
    await clock.setTime(minute);
    expect(await l.tick()).toBe(minute + 60_000);
    expect(fenced).toBe(0);
    expect(l.owned).toHaveLength(4);
    const counts = await fireCounts(store);
    expect([...counts.keys()].sort()).toEqual(
      Array.from({ length: 10 }, (_, i) => `due-${i}@${minute}`).sort(),
    );
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    // Every run was created at the start of its batch; the last batch four seconds in.
    const created = (await store.listRuns({ limit: 100 })).map((r) => r.createdAt - minute);
    expect(created.sort((a, b) => a - b)).toEqual([0, 0, 0, 1000, 1000, 1000, 2000, 2000, 2000, 3000]);
  });

  it('stops between batches while behind: a stop does not wait for the loop to catch up', async () => {
    const [store] = await twoStoresOnOneFile();
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 0, 0, 30));
    const jobs = new JobService(store, clock);
    for (let i = 0; i < 12; i++)
      await jobs.create({ name: `due-${i}`, handler: 'h', trigger: { kind: 'every', every: '1m' } });
    const minute = Date.UTC(2026, 0, 1, 0, 1, 0);
    await clock.setTime(minute);
    // Batches of 3: the stop comes while the first batch's runs are written, 9 jobs still due.
    let stopped: Promise<void> | undefined;
    let batches = 0;
    const l = loop(store, clock, 'a', true, {
      batchSize: 3,
      onFired: () => {
        batches++;
        stopped ??= l.stop();
      },
    });
    l.start();
    await vi.waitFor(() => expect(stopped).toBeDefined());
    await stopped;
    expect(batches).toBe(1);
    expect((await fireCounts(store)).size).toBe(3);
    // Its partitions are handed over: another loop fires the rest at once.
    const other = loop(store, clock, 'b');
    await other.tick();
    const counts = await fireCounts(store);
    expect(counts.size).toBe(12);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
  });

  it('sizes each batch to take its budget from the last one’s time per job; none on PostgreSQL', async () => {
    const [store] = await twoStoresOnOneFile();
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 0, 0, 30));
    const jobs = new JobService(store, clock);
    for (let i = 0; i < 600; i++)
      await jobs.create({ name: `due-${i}`, handler: 'h', trigger: { kind: 'every', every: '1m' } });
    // A fire transaction takes 30 ms plus 1 ms per job: 70 jobs fit a budget of 100 ms. Halving
    // and doubling stayed at 50 jobs (80 ms: over a quarter of the budget, under all of it).
    const sizing = (dialect: 'sqlite' | 'postgres') => {
      let elapsed = 0;
      const limits: number[] = [];
      const timed = new Proxy(store, {
        get(target, key) {
          if (key === 'dialect') return dialect;
          if (key === 'dueJobs')
            return (...args: Parameters<Store['dueJobs']>) => {
              limits.push(args[2]);
              return target.dueJobs(...args);
            };
          if (key === 'fire')
            return async (...args: Parameters<Store['fire']>) => {
              elapsed += 30 + args[0].length;
              return target.fire(...args);
            };
          const value = Reflect.get(target, key);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      return {
        loop: loop(timed, clock, dialect, false, { batchSize: 200, stopwatch: () => elapsed }),
        limits,
      };
    };
    await clock.setTime(Date.UTC(2026, 0, 1, 0, 1, 0));
    const onSqlite = sizing('sqlite');
    await onSqlite.loop.tick();
    expect(onSqlite.limits.slice(0, 3)).toEqual([200, 86, 74]);
    expect(onSqlite.limits.slice(3, -1).every((n) => n >= 69 && n <= 71)).toBe(true);
    expect((await fireCounts(store)).size).toBe(600);

    await clock.setTime(Date.UTC(2026, 0, 1, 0, 2, 0));
    const onPostgres = sizing('postgres');
    await onPostgres.loop.tick();
    expect(onPostgres.limits).toEqual([200, 200, 200, 200]);
  });

  it('skips fires older than the misfire grace without enumerating them', async () => {
    const [store] = await twoStoresOnOneFile();
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    await new JobService(store, clock).create({
      name: 's',
      handler: 'h',
      trigger: { kind: 'every', every: '1s' },
    });
    const l = loop(store, clock, 'a');
    await clock.advance(24 * 3600_000); // a day down: 86 400 missed fires
    await l.tick();
    const runs = await store.listRuns({ limit: 100_000 });
    // Only the fires within the 60 s grace run, each once.
    expect(runs).toHaveLength(61);
    expect(Math.min(...runs.map((r) => r.fireTime!))).toBe(clock.now() - 60_000);
  });

  describe('fire ahead', () => {
    it('fires allow jobs fireAheadMs before their instant, available from it; other overlap policies at the instant', async () => {
      const [store] = await twoStoresOnOneFile();
      const clock = new FakeClock(Date.UTC(2026, 0, 1, 0, 0, 0, 200));
      const jobs = new JobService(store, clock);
      const every = { kind: 'every', every: '1s' } as const;
      const allow = await jobs.create({ name: 'allow', handler: 'h', trigger: every });
      const skip = await jobs.create({
        name: 'skip',
        handler: 'h',
        trigger: every,
        schedule: { overlap: 'skip' },
      });
      const F = allow.nextFireAt!;
      expect(skip.nextFireAt).toBe(F);
      const lateness: number[] = [];
      const l = loop(store, clock, 'a', true, {
        fireAheadMs: 500,
        onFired: (fired) => lateness.push(...fired.lateness),
      });
      const runsOf = async (name: string) =>
        (await store.listRuns({ limit: 100 }))
          .filter((r) => r.jobName === name)
          .map((r) => [r.fireTime, r.availableAt, r.createdAt]);

      await clock.setTime(F - 501);
      // Nothing in the window yet: look again fireAheadMs before the next fire.
      expect(await l.tick()).toBe(F - 500);
      expect(await store.listRuns({ limit: 10 })).toEqual([]);

      await clock.setTime(F - 500);
      // allow fired ahead; skip waits for its instant, which is when the loop looks again.
      expect(await l.tick()).toBe(F);
      expect(await runsOf('allow')).toEqual([[F, F, F - 500]]);
      expect(await runsOf('skip')).toEqual([]);
      // Not claimable before the instant by a poll that does not hold runs ahead.
      await store.registerWorker(
        {
          id: 'w',
          name: 'w',
          group: 'default',
          handlers: ['h'],
          capacity: 1,
          labels: {},
          version: '',
          host: '',
        },
        5000,
        clock.now(),
      );
      expect(await store.dispatchRuns('w', 10, F - 1, 0)).toEqual([]);

      await clock.setTime(F);
      expect(await l.tick()).toBe(F + 1000 - 500);
      expect(await runsOf('skip')).toEqual([[F, F, F]]);
      // A fire made ahead of its time is not late.
      expect(lateness).toEqual([0, 0]);
    });

    it('two loops with leases firing ahead still fire every fire time exactly once', async () => {
      const [storeA, storeB] = await twoStoresOnOneFile();
      const clock = new FakeClock(Date.UTC(2026, 0, 1, 0, 0, 0, 0));
      const jobs = new JobService(storeA, clock);
      for (let i = 0; i < 10; i++)
        await jobs.create({ name: `job-${i}`, handler: 'h', trigger: { kind: 'every', every: '1s' } });
      const a = loop(storeA, clock, 'node-a', true, { fireAheadMs: 700 });
      const b = loop(storeB, clock, 'node-b', true, { fireAheadMs: 700 });
      const start = clock.now();
      for (let step = 0; step < 60; step++) {
        await clock.advance(500);
        await (step % 2 ? a : b).tick();
        await (step % 2 ? b : a).tick();
      }
      const runs = await storeA.listRuns({ limit: 100_000 });
      const counts = await fireCounts(storeA);
      expect([...counts.values()].every((c) => c === 1)).toBe(true);
      // Every nominal second up to now + 700 ms, for every job, created no more than 700 ms early.
      expect(counts.size).toBe(10 * 30);
      for (let t = start + 1000; t <= clock.now() + 700; t += 1000) expect(counts.get(`job-3@${t}`)).toBe(1);
      for (const run of runs) {
        expect(run.availableAt).toBe(run.fireTime);
        expect(run.fireTime! - run.createdAt).toBeLessThanOrEqual(700);
      }
    });
  });
  it('sheds for overload only past its threshold, accounts for every fire, and recovers when caught up', async () => {
    const [store] = await twoStoresOnOneFile();
    const start = Date.UTC(2026, 0, 1);
    const clock = new FakeClock(start);
    const jobs = new JobService(store, clock);
    const names = Array.from({ length: 40 }, (_, i) => `every-${i}`);
    for (const name of names)
      await jobs.create({ name, handler: 'h', trigger: { kind: 'every', every: '1s' } });
    // 30 s behind; the first 8 fire transactions take a second each, later ones no time: the loop
    // falls behind past the 2 s threshold, then catches up.
    let slow = 8;
    const slowStore = new Proxy(store, {
      get(target, key) {
        if (key === 'fire') {
          return async (...args: Parameters<Store['fire']>) => {
            const result = await target.fire(...args);
            if (slow-- > 0) await clock.advance(1000);
            return result;
          };
        }
        const value = Reflect.get(target, key);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const states: boolean[] = [];
    let shed = 0;
    const l = loop(slowStore, clock, 'a', false, {
      batchSize: 10,
      batchBudgetMs: Number.POSITIVE_INFINITY,
      overloadAfterMs: 2000,
      onBacklog: (state) => {
        states.push(state.overloaded);
        shed += state.shed;
      },
    });
    await clock.setTime(start + 30_000);
    await l.tick();
    // Overloaded from the fourth batch (3 s into the tick) until the tick caught up.
    expect(states.slice(0, 3)).toEqual([false, false, false]);
    expect(states).toContain(true);
    expect(states.at(-1)).toBe(false);
    expect(l.isOverloaded).toBe(false);
    expect(shed).toBeGreaterThan(0);

    let ledger = 0;
    for (const name of names) {
      const job = (await store.getJob(name))!;
      const runs = (await store.listRuns({ jobId: job.id, limit: 1000 })).map((r) => r.fireTime!);
      const skipped = await store.listSkipped(job.id, { limit: 1000 });
      expect(skipped.every((s) => s.reason === 'overloaded' && s.count !== null)).toBe(true);
      ledger += skipped.reduce((sum, s) => sum + s.count!, 0);
      // Every fire from the first (1 s after creation) up to the next one ran or was shed, not both.
      const due = Array.from(
        { length: (job.nextFireAt! - start) / 1000 - 1 },
        (_, i) => start + 1000 * (i + 1),
      );
      const shedTimes = due.filter((t) => skipped.some((s) => t >= s.first && t <= s.last));
      expect(new Set(runs).size).toBe(runs.length);
      expect([...runs, ...shedTimes].sort((a, b) => a - b)).toEqual(due);
    }
    expect(ledger).toBe(shed);
  });
});
