import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import { AttemptEnder } from './attempts.ts';
import { FakeClock } from './clock.ts';
import { JobService } from './job-service.ts';
import { Reaper } from './reaper.ts';

const dir = tempDir();
let n = 0;

describe('Reaper and AttemptEnder', () => {
  let store: SqliteStore;
  let clock: FakeClock;
  let jobs: JobService;
  let ender: AttemptEnder;
  let reaper: Reaper;
  const LEASE = 5000;

  beforeEach(async () => {
    store = new SqliteStore(join(dir, `reaper-${n++}.db`));
    await store.migrate();
    clock = new FakeClock();
    jobs = new JobService(store, clock);
    // random() = 0: jitter takes the lower bound, delay/2, so backoffs are exact.
    ender = new AttemptEnder(store, () => 0);
    reaper = new Reaper({ store, clock, ender, logger: pino({ level: 'silent' }), intervalMs: 1000 });
  });
  afterEach(() => store.close());

  async function register(id: string) {
    await store.registerWorker(
      { id, name: id, group: 'default', handlers: ['h'], capacity: 4, labels: {}, version: '', host: '' },
      LEASE,
      clock.now(),
    );
  }

  async function triggered(spec: Partial<Parameters<JobService['create']>[0]> = {}) {
    await jobs.create({ name: 'j', handler: 'h', trigger: { kind: 'manual' }, ...spec });
    const [runId] = await jobs.trigger('j', [{}]);
    return runId!;
  }

  it('a dead worker’s attempt is lost after its lease, retried on another worker, and its late report is rejected', async () => {
    const runId = await triggered();
    await register('w1');
    expect(await store.claimRuns('w1', 1, clock.now())).toHaveLength(1);
    await clock.advance(LEASE - 1);
    expect(await reaper.tick()).toBe(0);
    await clock.advance(1);
    expect(await reaper.tick()).toBe(1);
    expect(await store.getRun(runId)).toMatchObject({
      status: 'queued',
      attempt: 1,
      availableAt: clock.now(),
    });
    expect((await store.listWorkers())[0]).toMatchObject({ id: 'w1', status: 'lost' });

    await register('w2');
    expect(await store.claimRuns('w2', 1, clock.now())).toMatchObject([{ runId, attempt: 2 }]);
    const late = await ender.report(
      [{ runId, attempt: 1, outcome: 'succeeded', result: 'late' }],
      clock.now(),
    );
    expect(late).toEqual([{ runId, attempt: 1, ok: false, code: 'ATTEMPT_STALE' }]);
    const done = await ender.report([{ runId, attempt: 2, outcome: 'succeeded', result: 'ok' }], clock.now());
    expect(done).toEqual([{ runId, attempt: 2, ok: true }]);
    expect(await store.getRun(runId)).toMatchObject({ status: 'succeeded', result: 'ok', workerId: 'w2' });
    const attempts = await store.getAttempts(runId);
    expect(attempts.map((a) => [a.attempt, a.workerId, a.status])).toEqual([
      [1, 'w1', 'lost'],
      [2, 'w2', 'succeeded'],
    ]);
  });

  it('decides a batch of mixed reports: successes without reading the run, failures by its policy, each attempt once', async () => {
    await jobs.create({
      name: 'j',
      handler: 'h',
      trigger: { kind: 'manual' },
      retry: { maxAttempts: 2, delay: '1s' },
    });
    const [ok, failing] = await jobs.trigger('j', [{}, {}]);
    await register('w1');
    expect(await store.claimRuns('w1', 2, clock.now())).toHaveLength(2);
    const answer = await ender.report(
      [
        { runId: ok!, attempt: 1, outcome: 'succeeded', result: 1 },
        { runId: ok!, attempt: 1, outcome: 'succeeded', result: 2 },
        { runId: failing!, attempt: 1, outcome: 'failed', error: { name: 'E', message: 'x' } },
        { runId: ok!, attempt: 2, outcome: 'succeeded' },
      ],
      clock.now(),
    );
    expect(answer.map((r) => r.ok)).toEqual([true, false, true, false]);
    expect(await store.getRun(ok!)).toMatchObject({ status: 'succeeded', result: 1 });
    expect(await store.getRun(failing!)).toMatchObject({ status: 'queued', availableAt: clock.now() + 500 });
    // A success for an attempt that already ended changes nothing, its attempt row included.
    const again = await ender.report([{ runId: failing!, attempt: 1, outcome: 'succeeded' }], clock.now());
    expect(again).toEqual([{ runId: failing, attempt: 1, ok: false, code: 'ATTEMPT_STALE' }]);
    expect((await store.getAttempts(failing!)).map((a) => a.status)).toEqual(['failed']);
    expect(await store.getRun(failing!)).toMatchObject({ status: 'queued' });
  });

  describe('after its node stood still or its store failed', () => {
    let looping: Reaper;
    beforeEach(() => {
      looping = new Reaper({
        store,
        clock,
        ender,
        logger: pino({ level: 'silent' }),
        intervalMs: 1000,
        workerLeaseMs: LEASE,
      });
    });
    afterEach(() => looping.stop());

    /** Heartbeats of w1 for its run, one a second, with the reaper sweeping beside them. */
    async function beat(runId: number, seconds: number) {
      for (let i = 0; i < seconds; i++) {
        await store.heartbeat('w1', [{ runId, attempt: 1 }], LEASE, clock.now());
        await clock.advance(1000);
      }
    }

    it('a node frozen past the lease gives its live workers one lease to renew before it judges them', async () => {
      const runId = await triggered();
      await register('w1');
      await store.claimRuns('w1', 1, clock.now());
      looping.start();
      await beat(runId, 3);
      // SIGSTOP for 8 s: no heartbeat could land, no sweep ran; the sweep due meanwhile wakes late.
      await clock.jump(8000);
      await beat(runId, 6);
      expect(await store.getRun(runId)).toMatchObject({ status: 'running', attempt: 1 });
      expect((await store.listWorkers())[0]).toMatchObject({ id: 'w1', status: 'active' });
    });

    it('a node that just started gives the workers of its store one lease to renew', async () => {
      const runId = await triggered();
      await register('w1');
      await store.claimRuns('w1', 1, clock.now());
      // The only node was down for 8 s (killed, restarted): no heartbeat could land meanwhile.
      await clock.advance(8000);
      looping.start();
      await clock.advance(1000);
      await beat(runId, 6);
      expect(await store.getRun(runId)).toMatchObject({ status: 'running', attempt: 1 });
    });

    it('a worker that does not renew within that lease is still lost', async () => {
      const runId = await triggered();
      await register('w1');
      await store.claimRuns('w1', 1, clock.now());
      looping.start();
      await beat(runId, 2);
      await clock.jump(8000);
      for (let i = 0; i < LEASE / 1000 + 1; i++) await clock.advance(1000);
      expect(await store.getRun(runId)).toMatchObject({ status: 'queued', attempt: 1 });
      expect((await store.listWorkers())[0]).toMatchObject({ id: 'w1', status: 'lost' });
    });

    it('a node that keeps stalling for less than a hold judges leases as far back as it stalled', async () => {
      const runId = await triggered();
      await register('w1');
      await store.claimRuns('w1', 1, clock.now());
      looping.start();
      await beat(runId, 5);
      // The last heartbeat that landed; the next ones wait in the node's queue (overloaded: its
      // sweeps wake 1.5 s late, each stall too short for a hold).
      await store.heartbeat('w1', [{ runId, attempt: 1 }], LEASE, clock.now());
      const leaseEnds = clock.now() + LEASE;
      for (let i = 0; i < 2; i++) await clock.jump(2500);
      expect(clock.now()).toBeGreaterThanOrEqual(leaseEnds);
      expect((await store.listWorkers())[0]).toMatchObject({ id: 'w1', status: 'active' });
      expect(await store.getRun(runId)).toMatchObject({ status: 'running', attempt: 1 });
      // The queued heartbeat lands: the worker was alive all along.
      await beat(runId, 6);
      expect((await store.listWorkers())[0]).toMatchObject({ id: 'w1', status: 'active' });
      // A worker that really stopped is still lost, later by what the node stalled meanwhile.
      for (let i = 0; i < 2; i++) await clock.jump(2500);
      for (let i = 0; i < LEASE / 1000 + 1; i++) await clock.advance(1000);
      expect((await store.listWorkers())[0]).toMatchObject({ id: 'w1', status: 'lost' });
      expect(await store.getRun(runId)).toMatchObject({ status: 'queued', attempt: 1 });
    });

    it('a sweep that failed on the store holds judgements for one lease after it', async () => {
      const runId = await triggered();
      await register('w1');
      await store.claimRuns('w1', 1, clock.now());
      looping.start();
      await beat(runId, 2);
      // The store takes no writes for 7 s (a full disk): heartbeats and sweeps fail alike.
      const db = (store as unknown as { c: { db: { pragma(sql: string): unknown } } }).c.db;
      db.pragma('query_only = ON');
      for (let i = 0; i < 7; i++) await clock.advance(1000);
      db.pragma('query_only = OFF');
      // The store is back; the reaper's next sweep comes before the worker's next heartbeat.
      await clock.advance(1000);
      await beat(runId, 4);
      expect(await store.getRun(runId)).toMatchObject({ status: 'running', attempt: 1 });
    });
  });

  it('heartbeats keep an attempt alive past its first lease', async () => {
    const runId = await triggered();
    await register('w1');
    await store.claimRuns('w1', 1, clock.now());
    for (let i = 0; i < 10; i++) {
      await clock.advance(1000);
      await store.heartbeat('w1', [{ runId, attempt: 1 }], LEASE, clock.now());
      expect(await reaper.tick()).toBe(0);
    }
    expect((await store.getRun(runId))?.status).toBe('running');
  });

  it('times out an attempt at its deadline and backs off before the retry', async () => {
    const runId = await triggered({
      timeout: '2s',
      retry: { maxAttempts: 2, delay: '4s', backoff: 'fixed' },
    });
    await register('w1');
    await store.claimRuns('w1', 1, clock.now());
    await clock.advance(1000);
    await store.heartbeat('w1', [{ runId, attempt: 1 }], LEASE, clock.now());
    await clock.advance(1000);
    expect(await reaper.tick()).toBe(1);
    // Fixed 4 s with jitter at its lower bound: 2 s.
    expect(await store.getRun(runId)).toMatchObject({
      status: 'queued',
      availableAt: clock.now() + 2000,
      error: { name: 'Timeout' },
    });
    expect(await store.claimRuns('w1', 1, clock.now() + 1999)).toEqual([]);
    await clock.advance(2000);
    await store.claimRuns('w1', 1, clock.now());
    await clock.advance(2000);
    await reaper.tick();
    expect(await store.getRun(runId)).toMatchObject({ status: 'timed_out', attempt: 2 });
  });

  it('retries failures with exponential backoff, stops at maxAttempts, and honours non-retryable errors', async () => {
    const runId = await triggered({ retry: { maxAttempts: 3, delay: '1s', jitter: false } });
    await register('w1');
    const fail = async (attempt: number, extra = {}) => {
      await store.claimRuns('w1', 1, clock.now());
      return ender.report(
        [
          {
            runId,
            attempt,
            outcome: 'failed',
            error: { name: 'Error', message: `boom ${attempt}` },
            ...extra,
          },
        ],
        clock.now(),
      );
    };
    await fail(1);
    expect((await store.getRun(runId))?.availableAt).toBe(clock.now() + 1000);
    await clock.advance(1000);
    await fail(2);
    expect((await store.getRun(runId))?.availableAt).toBe(clock.now() + 2000);
    await clock.advance(2000);
    await fail(3);
    expect(await store.getRun(runId)).toMatchObject({
      status: 'failed',
      attempt: 3,
      error: { message: 'boom 3' },
    });

    await jobs.create({
      name: 'k',
      handler: 'h',
      trigger: { kind: 'manual' },
      retry: { nonRetryable: ['BadInput'] },
    });
    const [other] = await jobs.trigger('k', [{}]);
    await store.claimRuns('w1', 1, clock.now());
    await ender.report(
      [{ runId: other!, attempt: 1, outcome: 'failed', error: { name: 'BadInput', message: 'no' } }],
      clock.now(),
    );
    expect((await store.getRun(other!))?.status).toBe('failed');
  });
});
