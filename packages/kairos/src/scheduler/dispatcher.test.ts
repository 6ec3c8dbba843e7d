import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../../test/test-database.ts';
import { compileJob } from '../core/job.ts';
import { PostgresStore } from '../store/postgres/postgres-store.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import type { ClaimedRun, Store } from '../store/store.ts';
import { systemClock } from './clock.ts';
import { Dispatcher } from './dispatcher.ts';

const dir = tempDir();
let n = 0;
afterAll(dropTestSchemas);

const dialects: Array<[string, () => Store]> = [
  ['sqlite', () => new SqliteStore(join(dir, `dispatcher-${n++}.db`))],
  ['postgres', () => new PostgresStore({ connectionString: testDatabaseUrl(), schema: testSchema() })],
];

// Long polls and runs fired ahead, on the real clock: what is measured is when a waiting poll wakes.
describe.each(dialects)('Dispatcher, fire ahead: %s', (_dialect, open) => {
  let store: Store;
  let dispatcher: Dispatcher;

  afterEach(async () => {
    dispatcher.close();
    await store.close();
  });

  async function setUp() {
    store = open();
    await store.migrate();
    // A backstop far beyond the test: only events and run instants may wake a poll.
    dispatcher = new Dispatcher({
      store,
      clock: systemClock,
      pollWaitMs: 30_000,
      // A window wide enough that a loaded machine fires, and polls, well before the instant.
      fireAheadMs: 5000,
      backstopMs: 60_000,
    });
    for (const id of ['holder', 'plain'])
      await store.registerWorker(
        { id, name: id, group: 'default', handlers: ['h'], capacity: 4, labels: {}, version: '', host: '' },
        5000,
        Date.now(),
      );
  }

  /** Fires a job ahead, as the trigger loop does: its runs become available at `fires`. */
  async function fireAhead(name: string, fires: number[]) {
    const job = await store.createJob(
      compileJob({ name, handler: 'h', trigger: { kind: 'every', every: '1s' } }),
      fires[0]!,
      Date.now(),
    );
    await store.fire(
      [{ jobId: job.id, expected: fires[0]!, next: fires[fires.length - 1]! + 1000, fires }],
      null,
      Date.now(),
    );
  }

  it('runs fired ahead wake a waiting poll with ahead; a poll without ahead wakes at their instant', async () => {
    await setUp();
    const never = new AbortController().signal;
    const F = Date.now() + 1500;
    // Waiting before the fire: the store event of the fire wakes it, long before F.
    const holder = dispatcher.poll('holder', 4, 30_000, never, 1);
    const plain = dispatcher.poll('plain', 4, 30_000, never);
    await fireAhead('a', [F, F + 1]);
    const held = await holder;
    const heldAt = Date.now();
    expect(held.map((c) => c.startAt)).toEqual([F]);
    expect(heldAt).toBeLessThan(F);
    // The other run waits for its instant: the poll without ahead gets it then, not before.
    const due = await plain;
    const dueAt = Date.now();
    expect(due.map((c) => c.fireTime)).toEqual([F + 1]);
    expect(due[0]!.startAt).toBeUndefined();
    expect(dueAt).toBeGreaterThanOrEqual(F + 1);
    // Woken by its instant, not by the backstop (60 s); a wide margin, as a loaded machine's
    // PostgreSQL may take most of a second for the reads between (seen: 891 ms under CI).
    expect(dueAt - (F + 1)).toBeLessThan(10_000);
  });

  it('a poll takes runs ahead only when none is ready', async () => {
    await setUp();
    const never = new AbortController().signal;
    const now = Date.now();
    await fireAhead('ready', [now - 10]);
    await fireAhead('soon', [now + 3000]);
    const ready = await dispatcher.poll('holder', 2, 0, never, 5);
    expect(ready.map((c) => [c.fireTime, c.startAt])).toEqual([[now - 10, undefined]]);
    const held = await dispatcher.poll('holder', 2, 0, never, 5);
    expect(held.map((c) => [c.fireTime, c.startAt])).toEqual([[now + 3000, now + 3000]]);
  });
});

// Many waiting polls of one group: an event wakes one, which passes the wake on only while runs may
// be left for the others. Claims are counted on the real store (a Proxy that counts and forwards).
describe.each(dialects)('Dispatcher, many waiting polls: %s', (dialect, open) => {
  let store: Store;
  let dispatcher: Dispatcher;
  /** The worker of each claim since the last reset. */
  let claims: string[] = [];
  /** Claims that have answered, since the start. */
  let answered = 0;
  /** Workers whose next claim fails (a store outage), once. */
  const failing = new Set<string>();
  /** Workers whose next claim waits for the promise given (a slow store), once. */
  const gated = new Map<string, Promise<void>>();
  const pending = new Set<Promise<unknown>>();

  afterEach(async () => {
    dispatcher.close();
    await Promise.allSettled(pending);
    await store.close();
    claims = [];
    answered = 0;
    failing.clear();
    gated.clear();
    pending.clear();
  });

  /** `unknown`: workers the dispatcher is not told the group of (registered on another node). */
  async function setUp(workers: Record<string, string[]>, fireAheadMs?: number, unknown: string[] = []) {
    const real = open();
    await real.migrate();
    store = new Proxy(real, {
      get(target, key) {
        const value = Reflect.get(target, key, target);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (key !== 'dispatchForPoll') return value.apply(target, args);
          const worker = args[0] as string;
          claims.push(worker);
          if (failing.delete(worker)) return Promise.reject(new Error('store unavailable'));
          const gate = gated.get(worker);
          gated.delete(worker);
          return (gate ?? Promise.resolve())
            .then(() => value.apply(target, args) as Promise<unknown>)
            .finally(() => answered++);
        };
      },
    });
    // A backstop far beyond the test: only events and passed-on wakes may wake a poll.
    dispatcher = new Dispatcher({
      store,
      clock: systemClock,
      pollWaitMs: 60_000,
      backstopMs: 60_000,
      ...(fireAheadMs === undefined ? {} : { fireAheadMs }),
    });
    for (const [id, handlers] of Object.entries(workers)) {
      await store.registerWorker(
        { id, name: id, group: 'default', handlers, capacity: 4, labels: {}, version: '', host: '' },
        60_000,
        Date.now(),
      );
      if (!unknown.includes(id)) dispatcher.registered(id, 'default');
    }
  }

  /** Starts a long poll of `worker` and waits until its first claim has answered (nothing) and it waits;
   * the poll comes back in an array (an async function would wait for a promise it returned). */
  async function waiting(
    worker: string,
    max = 4,
    ahead = 0,
    signal = new AbortController().signal,
  ): Promise<[Promise<ClaimedRun[]>]> {
    const before = answered;
    const poll = dispatcher.poll(worker, max, 60_000, signal, ahead);
    pending.add(poll);
    await until(() => answered > before);
    await settled();
    return [poll];
  }

  async function enqueue(handler: string, n = 1) {
    const job = await store.createJob(
      compileJob({ name: `job-${handler}-${n}-${Date.now()}`, handler, trigger: { kind: 'manual' } }),
      null,
      Date.now(),
    );
    await store.enqueueRuns(
      job.id,
      Array.from({ length: n }, () => ({ params: {}, priority: 0 })),
      Date.now(),
    );
  }

  it('one queued run costs one claim, not one per waiting poll', async () => {
    await setUp({ a: ['h'], b: ['h'], c: ['h'], d: ['h'] });
    const polls = [];
    for (const w of ['a', 'b', 'c', 'd']) polls.push(...(await waiting(w)));
    claims = [];
    await enqueue('h');
    const [first] = await Promise.race(polls.map((p, i) => p.then((runs) => [i, runs] as const)));
    await settled();
    // The first poll took it, and asked the store (one read) whether any run was left: none.
    expect(first).toBe(0);
    expect(claims).toEqual(['a']);
  });

  it('a run the woken poll may not take reaches the poll that may', async () => {
    await setUp({ x: ['x'], y: ['y'] });
    const [px] = await waiting('x');
    const [py] = await waiting('y');
    claims = [];
    await enqueue('y');
    const runs = await py;
    expect(runs).toHaveLength(1);
    expect(claims).toEqual(['x', 'y']);
    // The poll of x had its turn and waits on.
    expect(await Promise.race([px.then(() => 'answered'), settled().then(() => 'waiting')])).toBe('waiting');
  });

  it('a burst of runs reaches every poll that has room', async () => {
    await setUp({ a: ['h'], b: ['h'], c: ['h'] });
    const polls = [];
    for (const w of ['a', 'b', 'c']) polls.push(...(await waiting(w, 2)));
    await enqueue('h', 6);
    const answers = await Promise.all(polls);
    expect(answers.map((runs) => runs.length)).toEqual([2, 2, 2]);
  });

  it('a woken poll whose claim fails passes the wake on', async () => {
    await setUp({ a: ['h'], b: ['h'] });
    const [pa] = await waiting('a');
    const [pb] = await waiting('b');
    failing.add('a');
    await enqueue('h');
    await expect(pa).rejects.toThrow('store unavailable');
    expect(await pb).toHaveLength(1);
  });

  it('a woken poll that is aborted before its claim passes the wake on', async () => {
    await setUp({ a: ['h'], b: ['h'] });
    const hangUp = new AbortController();
    const [pa] = await waiting('a', 4, 0, hangUp.signal);
    const [pb] = await waiting('b');
    // The worker of a hangs up right after the event reached a (the dispatcher hears it first).
    store.subscribe((event) => {
      if (event.type === 'runs') hangUp.abort();
    });
    claims = [];
    await enqueue('h');
    expect(await pa).toEqual([]);
    // Without the pass-on, b would wait for its backstop (60 s, beyond the test's time limit).
    expect(await pb).toHaveLength(1);
    expect(claims).toEqual(['b']);
  });

  it('a wake reaches only the polls begun before its event', async () => {
    await setUp({ a: ['h'], b: ['h'], late: ['x'] });
    const [pa] = await waiting('a', 1);
    const [pb] = await waiting('b', 1);
    // a's claim after the event waits, so that a poll begins between the event and the wake's pass-on.
    let open = () => {};
    gated.set('a', new Promise((resolve) => (open = resolve)));
    claims = [];
    await enqueue('h', 3);
    await until(() => claims.includes('a'));
    const [pl] = await waiting('late');
    open();
    // Each took its one run and, full, passed the wake on: a to b, b to nobody (late began after the
    // event: its one claim is the one it began with).
    expect(await pa).toHaveLength(1);
    expect(await pb).toHaveLength(1);
    await settled();
    expect(claims).toEqual(['a', 'late', 'b']);
    expect(await Promise.race([pl.then(() => 'answered'), settled().then(() => 'waiting')])).toBe('waiting');
  });

  it('a run fired ahead further than the backstop reaches the poll that holds runs ahead', async () => {
    // Fire ahead 120 s, backstop 60 s: a run due in 90 s is for a poll with ahead now, whichever
    // poll the event wakes first (the test's time limit is far below the backstop).
    await setUp({ plain: ['h'], holder: ['h'] }, 120_000);
    const [plain] = await waiting('plain');
    const [holder] = await waiting('holder', 4, 1);
    const F = Date.now() + 90_000;
    const job = await store.createJob(
      compileJob({ name: 'ahead', handler: 'h', trigger: { kind: 'every', every: '1h' } }),
      F,
      Date.now(),
    );
    await store.fire([{ jobId: job.id, expected: F, next: F + 3_600_000, fires: [F] }], null, Date.now());
    expect((await holder).map((c) => c.startAt)).toEqual([F]);
    expect(await Promise.race([plain.then(() => 'answered'), settled().then(() => 'waiting')])).toBe(
      'waiting',
    );
  });

  it('a poll whose group the node does not know wakes at every event, beside one poll of the group', async () => {
    await setUp({ a: ['x'], stranger: ['h'] }, undefined, ['stranger']);
    const [pa] = await waiting('a');
    const [ps] = await waiting('stranger');
    claims = [];
    await enqueue('h');
    expect(await ps).toHaveLength(1);
    await settled();
    expect(claims.sort()).toEqual(['a', 'stranger']);
    expect(await Promise.race([pa.then(() => 'answered'), settled().then(() => 'waiting')])).toBe('waiting');
  });

  /** Triggers job `name` now, the dispatcher as its hand-off (Store.triggerRun). */
  const trigger = (name: string) =>
    store.triggerRun(name, { params: null, priority: null }, Date.now(), undefined, undefined, dispatcher);

  async function manualJob(handler: string) {
    const name = `trigger-${handler}-${n++}`;
    await store.createJob(compileJob({ name, handler, trigger: { kind: 'manual' } }), null, Date.now());
    return name;
  }

  it('a trigger hands its run to the oldest waiting poll (SQLite: no event, no claim of the poll`s own)', async () => {
    await setUp({ a: ['h'], b: ['h'] });
    const [pa] = await waiting('a');
    const [pb] = await waiting('b');
    const name = await manualJob('h');
    claims = [];
    const events: unknown[] = [];
    store.subscribe((event) => {
      if (event.type === 'runs') events.push(event);
    });
    const run = await trigger(name);
    expect((await pa).map((c) => c.runId)).toEqual([run!.id]);
    await settled();
    if (dialect === 'sqlite') {
      expect(run).toMatchObject({ status: 'running', workerId: 'a', attempt: 1 });
      expect(claims).toEqual([]);
      expect(events).toEqual([]);
    } else {
      // PostgreSQL leaves the hand-off aside (Store.triggerRun): the run's event wakes the poll.
      expect(run).toMatchObject({ status: 'queued' });
      expect(claims).toEqual(['a']);
      expect(events).toEqual([{ type: 'runs', group: 'default' }]);
    }
    expect(await Promise.race([pb.then(() => 'answered'), settled().then(() => 'waiting')])).toBe('waiting');
  });

  it('a poll the hand-off gave nothing claims again; the run`s event reaches a poll that may take it', async () => {
    await setUp({ a: ['h'], b: ['x'] });
    const [pa] = await waiting('a');
    const [pb] = await waiting('b');
    const name = await manualJob('x');
    claims = [];
    const run = await trigger(name);
    expect(run).toMatchObject({ status: 'queued' });
    expect((await pb).map((c) => c.runId)).toEqual([run!.id]);
    await until(() => claims.includes('a'));
    expect(await Promise.race([pa.then(() => 'answered'), settled().then(() => 'waiting')])).toBe('waiting');
  });

  it('a poll taken for a hand-off waits past its time until it is given, then claims again', async () => {
    await setUp({ a: ['h'] });
    const before = answered;
    const poll = dispatcher.poll('a', 4, 100, new AbortController().signal);
    pending.add(poll);
    await until(() => answered > before);
    await settled();
    const taken = dispatcher.take('default');
    expect(taken).toMatchObject({ workerId: 'a', max: 4, seq: null });
    // Nothing else is taken: the group's one poll is out of the waiting.
    expect(dispatcher.take('default')).toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await Promise.race([poll.then(() => 'answered'), settled().then(() => 'waiting')])).toBe(
      'waiting',
    );
    claims = [];
    taken!.give([]);
    // Its time is over: one claim more (nothing), and it answers.
    expect(await poll).toEqual([]);
    expect(claims).toEqual(['a']);
  });

  it('a poll taken and then aborted answers nothing; what is given after is dropped', async () => {
    await setUp({ a: ['h'] });
    const hangUp = new AbortController();
    const [pa] = await waiting('a', 4, 0, hangUp.signal);
    const taken = dispatcher.take('default');
    expect(taken).not.toBeNull();
    hangUp.abort();
    expect(await pa).toEqual([]);
    taken!.give([
      {
        runId: 1,
        attempt: 1,
        jobName: 'j',
        handler: 'h',
        params: {},
        fireTime: null,
        timeoutMs: 1,
        maxAttempts: 1,
      },
    ]);
  });

  it('a poll whose claim is under way is not taken, nor one of another group', async () => {
    await setUp({ a: ['h'] });
    let open!: () => void;
    gated.set('a', new Promise<void>((resolve) => (open = resolve)));
    const poll = dispatcher.poll('a', 4, 60_000, new AbortController().signal);
    pending.add(poll);
    await until(() => claims.includes('a'));
    expect(dispatcher.take('default')).toBeNull();
    open();
    await until(() => answered > 0);
    await settled();
    expect(dispatcher.take('other')).toBeNull();
    const taken = dispatcher.take('default');
    expect(taken).not.toBeNull();
    taken!.give([]);
  });

  it('a run no waiting poll may take visits each once, then the wake ends', async () => {
    await setUp({ a: ['h'], b: ['h'], c: ['h'] });
    for (const w of ['a', 'b', 'c']) await waiting(w);
    claims = [];
    await enqueue('nobody');
    await until(() => claims.length >= 3);
    // Had the wake gone round again, claims would keep coming.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(claims.sort()).toEqual(['a', 'b', 'c']);
  });
});

/** A few turns of the event loop: every claim a wake started has been called by then. */
async function settled(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Waits for `condition`, checking every 5 ms, up to 10 s. */
async function until(condition: () => boolean): Promise<void> {
  const stop = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > stop) throw new Error('condition not met within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
