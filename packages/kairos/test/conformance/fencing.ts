import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob } from '../../src/core/job.ts';
import type { AttemptOutcome, Store } from '../../src/store/store.ts';

/**
 * What the store keeps so that no work is lost or doubled unseen when a node freezes or dies with an
 * answer in flight: the number of the poll that claimed each attempt, which a heartbeat's `polled`
 * reconciles against the worker's list, and the reports that came after their attempt was fenced
 * out. Run by `describeStoreConformance` on every dialect, unchanged.
 */
export function describeFencingConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, claims in flight and late reports: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);
    const LEASE = 5000;

    beforeEach(async () => {
      store = await open();
      await store.migrate();
    });
    afterEach(async () => {
      await store.close();
    });

    async function worker(id: string) {
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
        LEASE,
        T0,
      );
    }

    async function queued(name: string, count: number): Promise<number[]> {
      const job = await store.createJob(
        compileJob({ name, handler: 'h', trigger: { kind: 'manual' }, retry: { maxAttempts: 3 } }),
        null,
        T0,
      );
      return store.enqueueRuns(
        job.id,
        Array.from({ length: count }, () => ({ params: {}, priority: 0 })),
        T0,
      );
    }

    const end = (
      runId: number,
      attempt: number,
      attemptStatus: AttemptOutcome['attemptStatus'],
    ): AttemptOutcome => ({
      runId,
      attempt,
      group: 'default',
      attemptStatus,
      error: attemptStatus === 'succeeded' ? null : { name: 'X', message: attemptStatus },
      result: null,
      run: attemptStatus === 'succeeded' ? { status: 'succeeded' } : { status: 'queued', availableAt: T0 },
    });

    const byId = (refs: Array<{ runId: number; attempt: number }>) =>
      [...refs].sort((a, b) => a.runId - b.runId);

    it('a heartbeat names the attempts its settled polls claimed that it does not list; later and unnumbered claims are left alone', async () => {
      await queued('a', 4);
      await worker('w1');
      const [a] = await store.dispatchRuns('w1', 1, T0 + 10, 0, 1);
      const [b] = await store.dispatchRuns('w1', 1, T0 + 20, 0, 2);
      const [c] = await store.dispatchRuns('w1', 1, T0 + 30, 0, null);
      const { runs } = await store.dispatchForPoll('w1', 1, T0 + 35, 0, 3);
      const d = runs[0]!;
      const ref = (run: { runId: number; attempt: number }) => ({ runId: run.runId, attempt: run.attempt });
      // Poll 2 was settled without its run reaching the worker; poll 3 is still in flight.
      expect(await store.heartbeat('w1', [ref(a!)], LEASE, T0 + 40, 2)).toEqual({
        cancel: [],
        unheld: [ref(b!)],
      });
      // Without `polled`, nothing is named (a worker that does not number its polls).
      expect(await store.heartbeat('w1', [ref(a!)], LEASE, T0 + 41)).toEqual({ cancel: [], unheld: [] });
      const settled = await store.heartbeat('w1', [ref(a!)], LEASE, T0 + 42, 3);
      expect(byId(settled!.unheld)).toEqual(byId([ref(b!), ref(d)]));
      // The unnumbered claim (c) is never named; a listed one never is either.
      expect(await store.heartbeat('w1', [ref(a!), ref(b!), ref(c!), ref(d)], LEASE, T0 + 43, 99)).toEqual({
        cancel: [],
        unheld: [],
      });
      // Given back and claimed again without a number: the old number does not stick to the new attempt.
      expect(await store.finishAttempts([end(b!.runId, 1, 'lost')], T0 + 50)).toEqual([true]);
      const again = await store.claimRuns('w1', 1, T0 + 60);
      expect(again.map(ref)).toEqual([{ runId: b!.runId, attempt: 2 }]);
      expect((await store.heartbeat('w1', [ref(a!), ref(c!), ref(d)], LEASE, T0 + 70, 99))?.unheld).toEqual(
        [],
      );
    });

    it('a heartbeat applied late (sent earlier through a node whose database link hung) never shortens the lease', async () => {
      const [run] = await queued('late-beat', 1);
      await worker('w1');
      await store.claimRuns('w1', 1, T0 + 10);
      // Through a healthy node, then the older heartbeat of a node whose link to the database healed.
      expect(await store.heartbeat('w1', [{ runId: run!, attempt: 1 }], LEASE, T0 + 2000)).not.toBeNull();
      expect(await store.heartbeat('w1', [{ runId: run!, attempt: 1 }], LEASE, T0 + 1000)).not.toBeNull();
      // The lease runs to T0 + 7000: at T0 + 6500 the attempt is not lost and the worker is not either.
      expect(await store.expiredAttempts(T0 + 6500, 10)).toEqual([]);
      expect(await store.markLostWorkers(T0 + 6500)).toEqual([]);
      expect((await store.getRun(run!))?.status).toBe('running');
    });

    it("a sweep's lost end is refused when the worker heartbeated after the sweep read its lease", async () => {
      const [live, dead] = await queued('stale-sweep', 2);
      await worker('w1');
      await worker('w2');
      await store.claimRuns('w1', 1, T0 + 10);
      await store.claimRuns('w2', 1, T0 + 10);
      // A sweep at T0 + 5001 reads both workers' leases (to T0 + 5000) as ended...
      const sweep = T0 + LEASE + 1;
      const expired = await store.expiredAttempts(sweep, 10);
      expect(expired.map((e) => [e.runId, e.reason])).toEqual([
        [live, 'lost'],
        [dead, 'lost'],
      ]);
      // ...then its write is delayed (its node's link hung) while w1 heartbeats through another node.
      expect(await store.heartbeat('w1', [{ runId: live!, attempt: 1 }], LEASE, T0 + 5500)).not.toBeNull();
      const lost = (runId: number): AttemptOutcome => ({ ...end(runId, 1, 'lost'), leaseEndedBy: sweep });
      expect(await store.finishAttempts([lost(live!), lost(dead!)], sweep)).toEqual([false, true]);
      expect((await store.getRun(live!))?.status).toBe('running');
      expect((await store.getRun(dead!))?.status).toBe('queued');
      expect((await store.getAttempts(live!)).map((a) => a.status)).toEqual(['running']);
    });

    it('keeps who registered a worker, for the node to check who acts as it', async () => {
      await store.registerWorker(
        {
          id: 'w-bound',
          name: 'w-bound',
          group: 'g2',
          handlers: ['h'],
          capacity: 1,
          labels: {},
          version: 't',
          host: 'h',
          registeredBy: 'token:team-a',
        },
        LEASE,
        T0,
      );
      await worker('w-old');
      expect(await store.workerIdentity('w-bound')).toEqual({
        namespace: 'default',
        group: 'g2',
        registeredBy: 'token:team-a',
      });
      expect(await store.workerIdentity('w-old')).toEqual({
        namespace: 'default',
        group: 'default',
        registeredBy: '',
      });
      expect(await store.workerIdentity('nobody')).toBeNull();
    });

    it("a worker's end is written only for an attempt it holds: another worker's report changes nothing", async () => {
      const [runA, runB] = await queued('held', 2);
      await worker('w1');
      await worker('w2');
      const [a] = await store.claimRuns('w1', 1, T0 + 10);
      const [b] = await store.claimRuns('w2', 1, T0 + 10);
      expect([a!.runId, b!.runId].sort()).toEqual([runA, runB].sort());
      expect(
        (await store.runsForDecision([{ runId: a!.runId, attempt: a!.attempt }])).map((d) => d.workerId),
      ).toEqual(['w1']);
      // w2 names w1's attempt: neither an end nor a retry applies; w1's own end still does.
      const stranger = [
        { ...end(a!.runId, a!.attempt, 'succeeded'), workerId: 'w2' },
        { ...end(b!.runId, b!.attempt, 'failed'), workerId: 'w1' },
      ];
      expect(await store.finishAttempts(stranger, T0 + 20)).toEqual([false, false]);
      expect(await store.getRun(a!.runId)).toMatchObject({ status: 'running', attempt: 1, workerId: 'w1' });
      expect(await store.getRun(b!.runId)).toMatchObject({ status: 'running', attempt: 1, workerId: 'w2' });
      expect(
        await store.finishAttempts([{ ...end(a!.runId, a!.attempt, 'succeeded'), workerId: 'w1' }], T0 + 30),
      ).toEqual([true]);
      expect(await store.getRun(a!.runId)).toMatchObject({ status: 'succeeded' });
    });

    it('a claim ahead of the instant keeps the poll number too', async () => {
      const F = T0 + 1000;
      const job = await store.createJob(
        compileJob({ name: 'ahead', handler: 'h', trigger: { kind: 'every', every: '1s' } }),
        F,
        T0,
      );
      await store.fire([{ jobId: job.id, expected: F, next: F + 1000, fires: [F] }], null, T0);
      await worker('w1');
      const [held] = await store.dispatchAhead('w1', 1, F, F - 300, 7);
      expect(held?.startAt).toBe(F);
      expect((await store.heartbeat('w1', [], LEASE, F - 200, 6))?.unheld).toEqual([]);
      expect((await store.heartbeat('w1', [], LEASE, F - 100, 7))?.unheld).toEqual([
        { runId: held!.runId, attempt: 1 },
      ]);
    });

    it('keeps a report that came after the node ended its attempt, once, and shows it with the attempt', async () => {
      const [lost, done, timedOut] = await queued('b', 3);
      await worker('w1');
      await worker('w2');
      await store.claimRuns('w1', 3, T0 + 10);
      expect(
        await store.finishAttempts(
          [end(lost!, 1, 'lost'), end(done!, 1, 'succeeded'), end(timedOut!, 1, 'timed_out')],
          T0 + 20,
        ),
      ).toEqual([true, true, true]);
      const success = (runId: number, attempt = 1) => ({
        runId,
        attempt,
        outcome: 'succeeded' as const,
        error: null,
      });
      // Another worker's word about w1's attempt, and a repeat of the report that ended it: nothing.
      expect(await store.recordLateReports('w2', [success(lost!)], T0 + 30)).toBe(0);
      expect(await store.recordLateReports('w1', [success(done!)], T0 + 30)).toBe(0);
      // A worker's own timed-out report repeated after the node timed the attempt out says nothing new.
      const timeout = { name: 'Timeout', message: 'limit' };
      expect(
        await store.recordLateReports(
          'w1',
          [{ runId: timedOut!, attempt: 1, outcome: 'timed_out', error: timeout }],
          T0 + 30,
        ),
      ).toBe(0);
      // The attempt the node declared lost ran to its end: kept, the first time only.
      expect(
        await store.recordLateReports('w1', [success(lost!), success(timedOut!), success(lost!, 2)], T0 + 40),
      ).toBe(2);
      const failure = {
        runId: lost!,
        attempt: 1,
        outcome: 'failed' as const,
        error: { name: 'E', message: 'm' },
      };
      expect(await store.recordLateReports('w1', [failure], T0 + 50)).toBe(0);
      const [attempt] = await store.getAttempts(lost!);
      expect(attempt).toMatchObject({
        attempt: 1,
        status: 'lost',
        lateReport: { outcome: 'succeeded', reportedAt: T0 + 40, error: null },
      });
      expect((await store.getAttempts(done!))[0]?.lateReport).toBeNull();
      // A running attempt has no end to be late for.
      await store.claimRuns('w1', 3, T0 + 60);
      expect(await store.recordLateReports('w1', [success(lost!, 2)], T0 + 70)).toBe(0);
    });
  });
}
