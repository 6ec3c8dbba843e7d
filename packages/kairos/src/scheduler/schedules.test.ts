import { join } from 'node:path';
import type { JobSpec } from '@kairos/client';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { compileCalendar } from '../core/calendar.ts';
import { decideOutcome } from '../core/outcome.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import type { Store } from '../store/store.ts';
import { FakeClock } from './clock.ts';
import { JobService } from './job-service.ts';
import { TriggerLoop, type TriggerLoopOptions } from './trigger-loop.ts';

const dir = tempDir();
const logger = pino({ level: 'silent' });
const stores: Store[] = [];
let n = 0;
const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;
const HOUR = 60 * MIN;

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

/** A store, a fake clock at T0, a job service and a trigger loop: a node without HTTP. */
async function setup(loopOptions: Partial<TriggerLoopOptions> = {}) {
  const store = new SqliteStore(join(dir, `schedules-${n++}.db`));
  await store.migrate();
  stores.push(store);
  const clock = new FakeClock(T0);
  const jobs = new JobService(store, clock);
  const skipped: Array<{ job: string; reason: string; count: number | null }> = [];
  const loop = new TriggerLoop({
    store,
    clock,
    owner: 'node',
    logger,
    partitions: 1,
    partitionLeaseMs: 3_600_000,
    misfireGraceMs: MIN,
    onSkipped: (s) => skipped.push(...s),
    ...loopOptions,
  });
  const create = (spec: Omit<JobSpec, 'handler'>) => jobs.create({ handler: 'h', ...spec });
  const runs = async (name: string) =>
    (await store.listRuns({ jobId: (await jobs.get(name)).id, limit: 100_000 })).sort((a, b) => a.id - b.id);
  const ledger = async (name: string) =>
    (await store.listSkipped((await jobs.get(name)).id, { limit: 1000 })).reverse();
  /** Advances the clock in steps, ticking the loop after each, as a running node would. */
  const run = async (ms: number, step = 1000) => {
    for (let t = 0; t < ms; t += step) {
      await clock.advance(Math.min(step, ms - t));
      await loop.tick();
    }
  };
  return { store, clock, jobs, loop, create, runs, ledger, run, skipped };
}

/** Ends a run's attempt as succeeded (a worker claimed and reported it). */
async function finish(store: Store, runId: number, now: number) {
  await store.registerWorker(
    {
      id: 'w',
      name: 'w',
      group: 'default',
      handlers: ['h'],
      capacity: 100,
      labels: {},
      version: 't',
      host: 'h',
    },
    HOUR,
    now,
  );
  const claimed = await store.claimRuns('w', 100, now);
  await succeed(store, runId, claimed.find((c) => c.runId === runId)!.attempt, now);
}

/** Ends a claimed attempt as succeeded. */
async function succeed(store: Store, runId: number, attempt: number, now: number) {
  const decision = decideOutcome(
    { maxAttempts: 1, backoff: 'fixed', delay: 0, maxDelay: 0, jitter: false, nonRetryable: [] },
    attempt,
    { kind: 'succeeded', result: null },
    now,
    0,
  );
  await store.finishAttempts([{ ...decision, runId, attempt, group: 'default' }], now);
}

describe('misfire policies after a 3-hour outage (fake clock)', () => {
  it('skip: the misses become one ledger row; the schedule goes on from now', async () => {
    const s = await setup();
    await s.create({ name: 'm', trigger: { kind: 'cron', cron: '* * * * *' } });
    await s.clock.advance(3 * HOUR + 30_000);
    await s.loop.tick();
    expect((await s.runs('m')).map((r) => r.fireTime)).toEqual([T0 + 3 * HOUR]);
    expect(await s.ledger('m')).toEqual([
      expect.objectContaining({ reason: 'misfire', first: T0 + MIN, last: T0 + 3 * HOUR - MIN, count: null }),
    ]);
    expect(s.skipped).toEqual([{ job: 'm', reason: 'misfire', count: null }]);
    await s.run(MIN);
    expect((await s.runs('m')).map((r) => r.fireTime)).toEqual([T0 + 3 * HOUR, T0 + 3 * HOUR + MIN]);
  });

  it('run-once: one run for the latest missed fire', async () => {
    const s = await setup();
    await s.create({
      name: 'o',
      trigger: { kind: 'every', every: '1m' },
      schedule: { misfire: { policy: 'run-once' } },
    });
    await s.clock.advance(3 * HOUR + 30_000);
    await s.loop.tick();
    expect((await s.runs('o')).map((r) => r.fireTime)).toEqual([T0 + 3 * HOUR]);
    expect(await s.ledger('o')).toEqual([
      expect.objectContaining({ reason: 'misfire', first: T0 + MIN, last: T0 + 3 * HOUR - MIN, count: 179 }),
    ]);
  });

  it('catch-up: the most recent missed fires within the window, oldest first, capped', async () => {
    const s = await setup();
    await s.create({
      name: 'c',
      trigger: { kind: 'every', every: '1m' },
      schedule: { misfire: { policy: 'catch-up', maxCatchUp: 30, catchUpWindow: '20m' } },
    });
    await s.clock.advance(3 * HOUR + 30_000);
    await s.loop.tick();
    const fires = (await s.runs('c')).map((r) => r.fireTime);
    // The window holds 20 fires (3h−19m … 3h): fewer than the cap, so all of them, oldest first.
    expect(fires).toEqual(Array.from({ length: 20 }, (_, i) => T0 + 3 * HOUR - (19 - i) * MIN));
    expect(await s.ledger('c')).toEqual([
      expect.objectContaining({
        reason: 'misfire',
        first: T0 + MIN,
        last: T0 + 3 * HOUR - 20 * MIN,
        count: 160,
      }),
    ]);
  });
});

describe('overlap policies, decided in the fire transaction', () => {
  it('allow (default): a run per fire, however many are active', async () => {
    const s = await setup();
    await s.create({ name: 'a', trigger: { kind: 'every', every: '1s' } });
    await s.run(5000);
    expect(await s.runs('a')).toHaveLength(5);
  });

  it('skip: no run while the previous one is queued or running; each skipped fire is in the ledger', async () => {
    const s = await setup();
    await s.create({ name: 's', trigger: { kind: 'every', every: '1s' }, schedule: { overlap: 'skip' } });
    await s.run(5000);
    const [first, ...rest] = await s.runs('s');
    expect(rest).toHaveLength(0);
    // One fire skipped per tick, all in one ledger row: each range continues the one before.
    expect((await s.ledger('s')).map((r) => [r.reason, r.first, r.last, r.count])).toEqual([
      ['overlap', T0 + 2000, T0 + 5000, 4],
    ]);
    await finish(s.store, first!.id, s.clock.now());
    await s.run(1000);
    expect((await s.runs('s')).map((r) => r.fireTime)).toEqual([T0 + 1000, T0 + 6000]);
  });

  it('cancel-previous: the active run is cancelled and the new fire runs', async () => {
    const s = await setup();
    await s.create({
      name: 'c',
      trigger: { kind: 'every', every: '1s' },
      schedule: { overlap: 'cancel-previous' },
    });
    await s.run(3000);
    const runs = await s.runs('c');
    expect(runs.map((r) => [r.fireTime, r.status])).toEqual([
      [T0 + 1000, 'cancelled'],
      [T0 + 2000, 'cancelled'],
      [T0 + 3000, 'queued'],
    ]);
    expect(runs[0]!.error).toMatchObject({ name: 'Cancelled' });
    expect(await s.ledger('c')).toEqual([]);
  });
});

describe('pause and resume', () => {
  it('fires nothing while paused and records the paused fires as one counted range', async () => {
    const s = await setup();
    await s.create({ name: 'p', trigger: { kind: 'every', every: '1s' } });
    await s.run(2000);
    await s.jobs.pause('p');
    await s.run(10 * MIN, 10_000);
    expect(await s.runs('p')).toHaveLength(2);
    await s.jobs.resume('p');
    // Resuming twice records nothing twice.
    await s.jobs.resume('p');
    expect(await s.ledger('p')).toEqual([
      expect.objectContaining({ reason: 'paused', first: T0 + 3000, last: T0 + 2000 + 10 * MIN, count: 600 }),
    ]);
    await s.run(1000);
    expect((await s.runs('p')).map((r) => r.fireTime)).toEqual([
      T0 + 1000,
      T0 + 2000,
      T0 + 2000 + 10 * MIN + 1000,
    ]);
  });

  it('a pause takes back a fire made ahead of its instant: it counts among the paused fires', async () => {
    const s = await setup({ fireAheadMs: 500 });
    await s.create({ name: 'p', trigger: { kind: 'every', every: '1s' } });
    await s.run(2000);
    await s.run(600, 600); // at T0 + 2.6 s the fire of T0 + 3 s is made ahead
    const fires = async () => (await s.runs('p')).map((r) => r.fireTime);
    expect(await fires()).toEqual([T0 + 1000, T0 + 2000, T0 + 3000]);
    await s.jobs.pause('p');
    expect(await fires()).toEqual([T0 + 1000, T0 + 2000]);
    expect((await s.jobs.get('p')).nextFireAt).toBe(T0 + 3000);
    await s.run(10 * MIN, 10_000);
    await s.jobs.resume('p');
    expect(await s.ledger('p')).toEqual([expect.objectContaining({ reason: 'paused', first: T0 + 3000 })]);
  });
});

describe('pause with a run a worker holds ahead of its instant', () => {
  /** A per-second job fired 2.5 s ahead; at T0 + 2.6 s a worker holds the run of T0 + 3 s. */
  async function holding() {
    const s = await setup({ fireAheadMs: 2500 });
    await s.create({ name: 'p', trigger: { kind: 'every', every: '1s' } });
    await s.run(2000);
    await s.run(600, 600);
    await s.store.registerWorker(
      {
        id: 'w',
        name: 'w',
        group: 'default',
        handlers: ['h'],
        capacity: 10,
        labels: {},
        version: 't',
        host: 'h',
      },
      HOUR,
      s.clock.now(),
    );
    const [held] = await s.store.dispatchAhead('w', 1, T0 + 3000, s.clock.now());
    expect(held).toMatchObject({ fireTime: T0 + 3000 });
    const fires = async () => (await s.runs('p')).map((r) => r.fireTime);
    expect(await fires()).toEqual([T0 + 1000, T0 + 2000, T0 + 3000, T0 + 4000, T0 + 5000]);
    return { ...s, held: held!, fires };
  }

  it('the pause keeps the held run and withdraws the queued ones; a resume before the instant fires no instant twice', async () => {
    const s = await holding();
    await s.jobs.pause('p');
    // Kept, still the worker's; the queued fires after it are taken back.
    expect(await s.fires()).toEqual([T0 + 1000, T0 + 2000, T0 + 3000]);
    expect(await s.store.getRun(s.held.runId)).toMatchObject({ status: 'running', workerId: 'w' });
    expect((await s.jobs.get('p')).nextFireAt).toBe(T0 + 4000);
    expect(
      (await s.store.heartbeat('w', [{ runId: s.held.runId, attempt: 1 }], HOUR, s.clock.now()))?.cancel,
    ).toEqual([]);
    // Resumed 100 ms later, well within the misfire grace and before the held run's instant.
    await s.clock.advance(100);
    await s.jobs.resume('p');
    await s.run(4000);
    const fires = await s.fires();
    expect(fires).toEqual([...new Set(fires)]);
    expect(fires).toEqual([
      T0 + 1000,
      T0 + 2000,
      T0 + 3000,
      T0 + 4000,
      T0 + 5000,
      T0 + 6000,
      T0 + 7000,
      T0 + 8000,
      T0 + 9000,
    ]);
    expect(await s.ledger('p')).toEqual([]);
  });

  it('a resume after the instants records only the withdrawn fires as paused, never the held one that ran', async () => {
    const s = await holding();
    await s.jobs.pause('p');
    await s.clock.advance(400); // T0 + 3 s: the worker starts the held run at its instant
    await succeed(s.store, s.held.runId, s.held.attempt, s.clock.now());
    await s.run(10_000);
    await s.jobs.resume('p');
    expect(await s.store.getRun(s.held.runId)).toMatchObject({ status: 'succeeded' });
    expect(await s.ledger('p')).toEqual([
      expect.objectContaining({ reason: 'paused', first: T0 + 4000, last: T0 + 13_000, count: 10 }),
    ]);
    await s.run(1000);
    const fires = await s.fires();
    expect(fires).toEqual([...new Set(fires)]);
    expect(fires.filter((f) => f! > T0 + 3000 && f! <= T0 + 13_000)).toEqual([]);
  });
});

describe('window, cap, jitter, fixed delay', () => {
  it('fires only inside the window and records the first fire past its end', async () => {
    const s = await setup();
    await s.create({
      name: 'w',
      trigger: { kind: 'every', every: '1s' },
      schedule: { startAt: new Date(T0 + 3000).toISOString(), endAt: new Date(T0 + 5000).toISOString() },
    });
    await s.run(10_000);
    expect((await s.runs('w')).map((r) => r.fireTime)).toEqual([T0 + 3000, T0 + 4000, T0 + 5000]);
    expect((await s.ledger('w')).map((r) => [r.reason, r.first])).toEqual([['outside-window', T0 + 6000]]);
    expect((await s.jobs.get('w')).nextFireAt).toBeNull();
  });

  it('stops after maxRuns and says so in the ledger', async () => {
    const s = await setup();
    await s.create({ name: 'x', trigger: { kind: 'every', every: '1s' }, schedule: { maxRuns: 3 } });
    await s.run(10_000);
    expect(await s.runs('x')).toHaveLength(3);
    expect((await s.jobs.get('x')).runsFired).toBe(3);
    expect((await s.ledger('x')).map((r) => [r.reason, r.first])).toEqual([['max-runs', T0 + 4000]]);
  });

  it('delays each run by its reproducible jitter', async () => {
    const s = await setup();
    await s.create({ name: 'j', trigger: { kind: 'every', every: '1m' }, schedule: { jitter: '30s' } });
    await s.run(3 * MIN, MIN);
    const runs = await s.runs('j');
    const delays = runs.map((r) => r.availableAt - r.fireTime!);
    expect(delays.every((d) => d >= 0 && d <= 30_000)).toBe(true);
    expect(new Set(delays).size).toBe(3);
  });

  it('fixed delay: the next fire comes `delay` after the previous run ended', async () => {
    const s = await setup();
    await s.create({ name: 'd', trigger: { kind: 'delay', delay: '10s' } });
    await s.loop.tick();
    const [first] = await s.runs('d');
    expect(first!.fireTime).toBe(T0);
    expect((await s.jobs.get('d')).nextFireAt).toBeNull();
    await s.clock.advance(42_000); // the run takes 42 s
    await finish(s.store, first!.id, s.clock.now());
    expect((await s.jobs.get('d')).nextFireAt).toBe(T0 + 52_000);
    await s.run(10_000);
    expect((await s.runs('d')).map((r) => r.fireTime)).toEqual([T0, T0 + 52_000]);
  });
});

describe('buffering, dependencies and backfill on the fake clock', () => {
  it('buffer-one: one fire waits for the running run, the next ones are skipped, and it runs when the first ends', async () => {
    const s = await setup();
    await s.create({
      name: 'b',
      trigger: { kind: 'every', every: '1s' },
      schedule: { overlap: 'buffer-one' },
    });
    await s.run(4000);
    const runs = await s.runs('b');
    expect(runs.map((r) => r.fireTime)).toEqual([T0 + 1000, T0 + 2000]);
    expect((await s.ledger('b')).map((r) => [r.first, r.last, r.count])).toEqual([[T0 + 3000, T0 + 4000, 2]]);
    await finish(s.store, runs[0]!.id, s.clock.now());
    expect((await s.store.getRun(runs[1]!.id))?.availableAt).toBe(s.clock.now());
  });

  it('buffer-all: every fire queues behind the previous run; they run one at a time, in order', async () => {
    const s = await setup();
    await s.create({
      name: 'q',
      trigger: { kind: 'every', every: '1s' },
      schedule: { overlap: 'buffer-all' },
    });
    await s.run(3000);
    const order: number[] = [];
    for (let i = 0; i < 3; i++) {
      const claimable = (await s.runs('q')).filter(
        (r) => r.status === 'queued' && r.availableAt <= s.clock.now(),
      );
      expect(claimable).toHaveLength(1);
      order.push(claimable[0]!.fireTime!);
      await finish(s.store, claimable[0]!.id, s.clock.now());
    }
    expect(order).toEqual([T0 + 1000, T0 + 2000, T0 + 3000]);
    expect(await s.ledger('q')).toEqual([]);
  });

  it('after: a child run follows each successful parent run, with the parent result in its params', async () => {
    const s = await setup();
    await s.create({ name: 'extract', trigger: { kind: 'every', every: '1m' } });
    await s.create({ name: 'load', trigger: { kind: 'after', job: 'extract' }, params: { table: 't' } });
    await s.run(MIN, MIN);
    const [parent] = await s.runs('extract');
    expect(await s.runs('load')).toEqual([]);
    await finish(s.store, parent!.id, s.clock.now());
    const [child] = await s.runs('load');
    expect(child).toMatchObject({ cause: 'dependency', status: 'queued' });
    expect(child!.params).toEqual({
      table: 't',
      parent: { job: 'extract', runId: parent!.id, status: 'succeeded', result: null },
    });
  });

  it('rejects a dependency cycle when the job is defined, and stores nothing', async () => {
    const s = await setup();
    await s.create({ name: 'a', trigger: { kind: 'after', job: 'c' } });
    await s.create({ name: 'b', trigger: { kind: 'after', job: 'a' } });
    await expect(s.create({ name: 'c', trigger: { kind: 'after', job: 'b' } })).rejects.toMatchObject({
      code: 'DEPENDENCY_CYCLE',
    });
    await expect(s.create({ name: 'self', trigger: { kind: 'after', job: 'self' } })).rejects.toMatchObject({
      code: 'DEPENDENCY_CYCLE',
    });
    await expect(s.jobs.get('c')).rejects.toMatchObject({ code: 'JOB_NOT_FOUND' });
    await s.create({ name: 'c', trigger: { kind: 'every', every: '1h' } });
    await expect(s.jobs.update('c', { trigger: { kind: 'after', job: 'b' } })).rejects.toMatchObject({
      code: 'DEPENDENCY_CYCLE',
    });
  });

  it('backfill: every past fire time of a range, capped, one at a time', async () => {
    const s = await setup();
    await s.create({
      name: 'daily',
      trigger: { kind: 'cron', cron: '0 6 * * *', timezone: 'Europe/Berlin' },
    });
    await s.clock.advance(10 * 24 * HOUR);
    const result = await s.jobs.backfill('daily', {
      from: '2025-12-01T00:00:00Z',
      to: '2025-12-31T23:59:59Z',
      max: 20,
    });
    expect(result.runs).toHaveLength(20);
    expect(result.runs[0]!.fireTime).toBe('2025-12-01T05:00:00.000Z');
    expect(result.nextFrom).toBe('2025-12-21T05:00:00.000Z');
    const runs = await s.runs('daily');
    expect(runs.filter((r) => r.availableAt === s.clock.now())).toHaveLength(1);
    await expect(
      s.jobs.backfill('daily', { from: '2026-01-01T00:00:00Z', to: '2027-01-01T00:00:00Z' }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});

describe('calendars on the fake clock', () => {
  it('does not fire on excluded days; each excluded day is one ledger range', async () => {
    const s = await setup();
    await s.store.putCalendar(compileCalendar({ name: 'weekends', weekdays: [0, 6] }), T0);
    // 1 January 2026 is a Thursday.
    await s.create({
      name: 'h',
      trigger: { kind: 'every', every: '6h' },
      schedule: { calendars: ['weekends'] },
    });
    await s.run(5 * 24 * HOUR, 6 * HOUR);
    const days = (await s.runs('h')).map((r) => new Date(r.fireTime!).getUTCDay());
    expect(days.filter((d) => d === 0 || d === 6)).toEqual([]);
    expect(days).toContain(1);
    // Saturday and Sunday are excluded one day at a time; Sunday's range continues Saturday's row.
    expect(
      (await s.ledger('h')).map((r) => [
        r.reason,
        new Date(r.first).toISOString(),
        new Date(r.last).toISOString(),
        r.count,
      ]),
    ).toEqual([['calendar', '2026-01-03T00:00:00.000Z', '2026-01-04T18:00:00.000Z', 8]]);
  });

  it('refuses a job that names a calendar that does not exist', async () => {
    const s = await setup();
    await expect(
      s.create({ name: 'x', trigger: { kind: 'every', every: '1h' }, schedule: { calendars: ['nope'] } }),
    ).rejects.toMatchObject({ code: 'CALENDAR_NOT_FOUND' });
  });
});
