import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob, type JobDefinition } from '../../src/core/job.ts';
import type { AttemptOutcome, Store } from '../../src/store/store.ts';
import type { StoreProbe } from './suite.ts';

/**
 * The attempts part of the store conformance suite: an attempt's row is written once, when the
 * attempt ends, and a running attempt is its run's row; every read of attempts sees both. Run by
 * `describeStoreConformance` on every dialect, unchanged.
 */
export function describeAttemptsConformance(
  dialect: string,
  open: () => Promise<Store>,
  probe: StoreProbe,
): void {
  describe(`Store conformance, attempts: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);

    beforeEach(async () => {
      store = await open();
      await store.migrate();
    });
    afterEach(async () => {
      await store.close();
    });

    const job = (name: string, extra: Partial<Parameters<typeof compileJob>[0]> = {}): JobDefinition =>
      compileJob({ name, handler: 'h', trigger: { kind: 'manual' }, ...extra });

    async function queuedRun(name: string) {
      const created = await store.createJob(job(name), null, T0);
      const [id] = await store.enqueueRuns(created.id, [{ params: {}, priority: 0 }], T0);
      return id!;
    }

    async function worker(id: string, at = T0) {
      await store.registerWorker(
        {
          id,
          name: id,
          group: 'default',
          handlers: ['h'],
          capacity: 10,
          labels: {},
          version: 't',
          host: 'h',
        },
        5000,
        at,
      );
    }

    const outcome = (runId: number, attempt: number, end: 'succeeded' | 'retry'): AttemptOutcome =>
      end === 'succeeded'
        ? {
            runId,
            attempt,
            group: 'default',
            attemptStatus: 'succeeded',
            error: null,
            result: 1,
            run: { status: 'succeeded' },
          }
        : {
            runId,
            attempt,
            group: 'default',
            attemptStatus: 'failed',
            error: { name: 'Error', message: 'boom' },
            result: null,
            run: { status: 'queued', availableAt: T0 + 100 },
          };

    it('a claim writes no attempt row; the run’s running attempt is listed from the run', async () => {
      const runId = await queuedRun('a');
      await worker('w1');
      await store.claimRuns('w1', 1, T0 + 10);
      expect(await probe.attemptRows(runId)).toEqual([]);
      expect(await store.getAttempts(runId)).toEqual([
        {
          runId,
          attempt: 1,
          workerId: 'w1',
          status: 'running',
          startedAt: T0 + 10,
          finishedAt: null,
          error: null,
          lateReport: null,
        },
      ]);
    });

    it('a success writes no attempt row: the run’s row lists it; a stale second report adds none', async () => {
      const runId = await queuedRun('a');
      await worker('w1');
      await store.claimRuns('w1', 1, T0 + 10);
      expect(await store.finishAttempts([outcome(runId, 1, 'succeeded')], T0 + 20)).toEqual([true]);
      expect(await probe.attemptRows(runId)).toEqual([]);
      const listed = [
        {
          runId,
          attempt: 1,
          workerId: 'w1',
          status: 'succeeded',
          startedAt: T0 + 10,
          finishedAt: T0 + 20,
          error: null,
          lateReport: null,
        },
      ];
      expect(await store.getAttempts(runId)).toEqual(listed);
      expect(await store.finishAttempts([outcome(runId, 1, 'succeeded')], T0 + 30)).toEqual([false]);
      expect(await store.finishAttempts([outcome(runId, 1, 'retry')], T0 + 30)).toEqual([false]);
      expect(await probe.attemptRows(runId)).toEqual([]);
      expect(await store.getAttempts(runId)).toEqual(listed);
    });

    it('a failed attempt gets its row; the success after it is listed from the run', async () => {
      const runId = await queuedRun('a');
      await worker('w1');
      await worker('w2');
      await store.claimRuns('w1', 1, T0 + 10);
      await store.finishAttempts([outcome(runId, 1, 'retry')], T0 + 20);
      await store.claimRuns('w2', 1, T0 + 200);
      await store.finishAttempts([outcome(runId, 2, 'succeeded')], T0 + 300);
      expect(await probe.attemptRows(runId)).toEqual([
        { attempt: 1, workerId: 'w1', status: 'failed', startedAt: T0 + 10, finishedAt: T0 + 20 },
      ]);
      expect(await store.getAttempts(runId)).toMatchObject([
        { attempt: 1, workerId: 'w1', status: 'failed', startedAt: T0 + 10, finishedAt: T0 + 20 },
        { attempt: 2, workerId: 'w2', status: 'succeeded', startedAt: T0 + 200, finishedAt: T0 + 300 },
      ]);
    });

    it('a retried run lists attempt 1 ended and attempt 2 running, on its new worker', async () => {
      const runId = await queuedRun('a');
      await worker('w1');
      await worker('w2');
      await store.claimRuns('w1', 1, T0 + 10);
      expect(await store.finishAttempts([outcome(runId, 1, 'retry')], T0 + 20)).toEqual([true]);
      // Queued again: its ended attempt only, though the run row still names the worker.
      expect(await store.getAttempts(runId)).toMatchObject([{ attempt: 1, status: 'failed' }]);
      expect(await store.claimRuns('w2', 1, T0 + 100)).toMatchObject([{ runId, attempt: 2 }]);
      expect(await store.getAttempts(runId)).toEqual([
        {
          runId,
          attempt: 1,
          workerId: 'w1',
          status: 'failed',
          startedAt: T0 + 10,
          finishedAt: T0 + 20,
          error: { name: 'Error', message: 'boom' },
          lateReport: null,
        },
        {
          runId,
          attempt: 2,
          workerId: 'w2',
          status: 'running',
          startedAt: T0 + 100,
          finishedAt: null,
          error: null,
          lateReport: null,
        },
      ]);
      expect(await probe.attemptRows(runId)).toHaveLength(1);
    });

    it('a reaper’s loss writes the lost attempt’s row with its worker and start', async () => {
      const runId = await queuedRun('a');
      await worker('w1');
      await store.claimRuns('w1', 1, T0 + 10);
      const [expired] = await store.expiredAttempts(T0 + 10_000, 10);
      expect(expired).toMatchObject({ runId, attempt: 1, reason: 'lost', workerId: 'w1' });
      const lost: AttemptOutcome = {
        runId,
        attempt: 1,
        group: 'default',
        attemptStatus: 'lost',
        error: { name: 'WorkerLost', message: 'lost' },
        result: null,
        run: { status: 'failed' },
      };
      expect(await store.finishAttempts([lost], T0 + 10_000)).toEqual([true]);
      expect(await store.finishAttempts([lost], T0 + 11_000)).toEqual([false]);
      expect(await probe.attemptRows(runId)).toEqual([
        { attempt: 1, workerId: 'w1', status: 'lost', startedAt: T0 + 10, finishedAt: T0 + 10_000 },
      ]);
    });

    it('a cancel writes the running attempt’s row; a queued run’s cancel writes none', async () => {
      const running = await queuedRun('a');
      await worker('w1');
      await store.claimRuns('w1', 1, T0 + 10);
      const queued = await queuedRun('b');
      await store.cancelRun(running, T0 + 20);
      await store.cancelRun(queued, T0 + 20);
      expect(await probe.attemptRows(running)).toEqual([
        { attempt: 1, workerId: 'w1', status: 'cancelled', startedAt: T0 + 10, finishedAt: T0 + 20 },
      ]);
      expect(await probe.attemptRows(queued)).toEqual([]);
      // The worker's report after the cancel is stale: no second row.
      expect(await store.finishAttempts([outcome(running, 1, 'succeeded')], T0 + 30)).toEqual([false]);
      expect(await probe.attemptRows(running)).toHaveLength(1);
    });

    it('an overlap cancel writes the running attempt’s row', async () => {
      const every = await store.createJob(
        job('e', { trigger: { kind: 'every', every: '1s' }, schedule: { overlap: 'cancel-previous' } }),
        T0,
        T0,
      );
      await worker('w1');
      await store.fire([{ jobId: every.id, expected: T0, next: T0 + 1000, fires: [T0] }], null, T0);
      const [claimed] = await store.claimRuns('w1', 1, T0 + 10);
      await store.fire(
        [
          {
            jobId: every.id,
            expected: T0 + 1000,
            next: T0 + 2000,
            fires: [T0 + 1000],
            overlap: 'cancel-previous',
          },
        ],
        null,
        T0 + 1000,
      );
      expect(await store.getRun(claimed!.runId)).toMatchObject({ status: 'cancelled' });
      expect(await probe.attemptRows(claimed!.runId)).toEqual([
        { attempt: 1, workerId: 'w1', status: 'cancelled', startedAt: T0 + 10, finishedAt: T0 + 1000 },
      ]);
    });

    it('keeps a worker’s log lines of its running and its ended attempts', async () => {
      const runId = await queuedRun('a');
      await worker('w1');
      await worker('w2');
      await store.claimRuns('w1', 1, T0);
      const line = (attempt: number, message: string) => ({
        logs: [{ runId, attempt, level: 'info' as const, message, fields: null, time: T0 }],
        progress: [],
      });
      expect(await store.appendRunLogs('w1', line(1, 'running'), 100, T0 + 1)).toBe(1);
      expect(await store.appendRunLogs('w2', line(1, 'stranger'), 100, T0 + 1)).toBe(0);
      await store.finishAttempts([outcome(runId, 1, 'retry')], T0 + 2);
      expect(await store.appendRunLogs('w1', line(1, 'late'), 100, T0 + 3)).toBe(1);
      // Queued again, the run row still names w1, whose attempt 1 ended: not a running attempt 2.
      expect(await store.appendRunLogs('w1', line(2, 'never'), 100, T0 + 3)).toBe(0);
      await store.claimRuns('w2', 1, T0 + 100);
      expect(await store.appendRunLogs('w2', line(2, 'second'), 100, T0 + 101)).toBe(1);
      expect(await store.appendRunLogs('w1', line(2, 'not mine'), 100, T0 + 101)).toBe(0);
      // Its attempt that succeeded has no row of its own: the run's row says whose it was.
      await store.finishAttempts([outcome(runId, 2, 'succeeded')], T0 + 102);
      expect(await store.appendRunLogs('w2', line(2, 'after the end'), 100, T0 + 103)).toBe(1);
      expect(await store.appendRunLogs('w1', line(2, 'still not mine'), 100, T0 + 103)).toBe(0);
      expect((await store.runLogs(runId, 0, 10)).map((l) => l.message)).toEqual([
        'running',
        'late',
        'second',
        'after the end',
      ]);
    });

    it('fire lateness counts first attempts that ended, that succeeded (no row), and still running', async () => {
      const every = await store.createJob(job('e', { trigger: { kind: 'every', every: '1s' } }), T0, T0);
      await worker('w1');
      const fires = [T0, T0 + 1000, T0 + 2000];
      await store.fire([{ jobId: every.id, expected: T0, next: T0 + 3000, fires }], null, T0 + 2000);
      const claimed = [];
      for (const [i, late] of [100, 200, 300].entries()) {
        claimed.push(...(await store.claimRuns('w1', 1, fires[i]! + late)));
      }
      // The first ends; the second is retried and runs again (its second start is not a first one).
      await store.finishAttempts([outcome(claimed[0]!.runId, 1, 'succeeded')], T0 + 3000);
      await store.finishAttempts([outcome(claimed[1]!.runId, 1, 'retry')], T0 + 3000);
      expect(await store.claimRuns('w1', 1, T0 + 4000)).toMatchObject([
        { runId: claimed[1]!.runId, attempt: 2 },
      ]);
      expect(await store.fireLateness(T0, T0 + 5000, 100)).toEqual({
        count: 3,
        p50: 200,
        p99: 300,
        sampled: false,
      });
      expect(await store.fireLateness(T0, T0 + 5000, 1)).toEqual({
        count: 1,
        p50: 300,
        p99: 300,
        sampled: true,
      });
    });
  });
}
