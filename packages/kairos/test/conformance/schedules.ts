import type { RunStatus } from '@kairos/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileCalendar } from '../../src/core/calendar.ts';
import { compileJob, type JobDefinition } from '../../src/core/job.ts';
import { decideOutcome } from '../../src/core/outcome.ts';
import type { Store } from '../../src/store/store.ts';

/**
 * The Schedules part of the store conformance suite (ledger, overlap, jitter, run cap, resume),
 * run by `describeStoreConformance` on every dialect, unchanged.
 */
export function describeSchedulesConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, schedules: ${dialect}`, () => {
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
      compileJob({ name, handler: 'h', trigger: { kind: 'every', every: '1s' }, ...extra });

    it('keeps the schedule policy and counts nothing until the schedule fires', async () => {
      const created = await store.createJob(
        job('p', {
          schedule: { overlap: 'skip', maxRuns: 3, jitter: '2s', misfire: { policy: 'run-once' } },
        }),
        T0,
        T0,
      );
      const read = await store.getJob('p');
      expect(read?.schedule).toEqual(created.schedule);
      expect(read?.schedule).toMatchObject({ overlap: 'skip', maxRuns: 3, jitterMs: 2000 });
      expect(read?.runsFired).toBe(0);
    });

    it('gives each run its own available time (jitter) and counts runs of capped jobs', async () => {
      const a = await store.createJob(job('a', { schedule: { maxRuns: 5 } }), T0, T0);
      await store.fire(
        [
          {
            jobId: a.id,
            expected: T0,
            next: T0 + 2000,
            fires: [T0, T0 + 1000],
            availableAt: [T0 + 300, T0 + 1700],
            countRuns: true,
          },
        ],
        null,
        T0 + 1000,
      );
      const runs = await store.listRuns({ jobId: a.id, limit: 10 });
      expect(runs.map((r) => [r.fireTime, r.availableAt]).sort()).toEqual([
        [T0, T0 + 300],
        [T0 + 1000, T0 + 1700],
      ]);
      expect((await store.getJob('a'))?.runsFired).toBe(2);
      // Jitter alone (no other policy): the same, in the dialect's plain batch.
      const b = await store.createJob(job('b'), T0, T0);
      await store.fire(
        [{ jobId: b.id, expected: T0, next: T0 + 1000, fires: [T0], availableAt: [T0 + 999] }],
        null,
        T0,
      );
      expect((await store.listRuns({ jobId: b.id, limit: 10 }))[0]?.availableAt).toBe(T0 + 999);
      expect((await store.getJob('b'))?.runsFired).toBe(0);
    });

    it('writes skipped ranges with the fire that won, once, and pages the ledger newest first', async () => {
      const a = await store.createJob(job('a'), T0, T0);
      const skipped = [{ reason: 'misfire' as const, first: T0, last: T0 + 9000, count: 10 }];
      const entry = { jobId: a.id, expected: T0, next: T0 + 11_000, fires: [T0 + 10_000], skipped };
      const first = await store.fire([entry], null, T0 + 10_000);
      expect(first.skipped).toEqual([{ jobId: a.id, reason: 'misfire', count: 10 }]);
      // A second writer with the same stale view loses its compare-and-set and records nothing.
      const second = await store.fire([entry], null, T0 + 10_000);
      expect(second).toMatchObject({ conflicts: 1, runs: 0 });
      expect(second.skipped ?? []).toEqual([]);
      const more = [
        { reason: 'max-runs' as const, first: T0 + 11_000, last: T0 + 11_000, count: 1 },
        { reason: 'paused' as const, first: T0 + 12_000, last: T0 + 99_000, count: null },
      ];
      await store.fire(
        [{ jobId: a.id, expected: T0 + 11_000, next: null, fires: [], skipped: more }],
        null,
        T0 + 99_000,
      );
      const page = await store.listSkipped(a.id, { limit: 2 });
      expect(page.map((s) => s.reason)).toEqual(['paused', 'max-runs']);
      expect(page[0]).toMatchObject({ jobName: 'a', first: T0 + 12_000, last: T0 + 99_000, count: null });
      const rest = await store.listSkipped(a.id, { limit: 2, before: page[1]!.id });
      expect(rest).toEqual([
        expect.objectContaining({
          reason: 'misfire',
          first: T0,
          last: T0 + 9000,
          count: 10,
          recordedAt: T0 + 10_000,
        }),
      ]);
    });

    it('a range that starts right after a row of the same reason extends that row', async () => {
      const a = await store.createJob(job('a'), T0, T0);
      const fire = (expected: number, skipped: { first: number; last: number; after?: number }) =>
        store.fire(
          [
            {
              jobId: a.id,
              expected,
              next: expected + 1000,
              fires: [],
              skipped: [{ reason: 'calendar', count: 1, ...skipped }],
            },
          ],
          null,
          expected,
        );
      await fire(T0, { first: T0, last: T0 });
      await fire(T0 + 1000, { first: T0 + 1000, last: T0 + 1000, after: T0 });
      await fire(T0 + 2000, { first: T0 + 2000, last: T0 + 2000, after: T0 + 1000 });
      // Not adjacent: a row of its own.
      await fire(T0 + 3000, { first: T0 + 3000, last: T0 + 3000, after: T0 + 2500 });
      const ledger = await store.listSkipped(a.id, { limit: 10 });
      expect(ledger.map((r) => [r.first, r.last, r.count])).toEqual([
        [T0 + 3000, T0 + 3000, 1],
        [T0, T0 + 2000, 3],
      ]);
    });

    it('overlap skip: no run while one is active; the fires go to the ledger', async () => {
      const a = await store.createJob(job('a'), T0, T0);
      const fire = (expected: number, fires: number[]) =>
        store.fire(
          [{ jobId: a.id, expected, next: expected + 10_000, fires, overlap: 'skip' }],
          null,
          expected,
        );
      // Nothing active: the first fire runs, the others of the same batch overlap it.
      expect(await fire(T0, [T0, T0 + 1])).toMatchObject({ runs: 1 });
      expect(await fire(T0 + 10_000, [T0 + 10_000])).toMatchObject({ runs: 0 });
      const ledger = await store.listSkipped(a.id, { limit: 10 });
      expect(ledger.map((s) => [s.reason, s.first, s.count])).toEqual([
        ['overlap', T0 + 10_000, 1],
        ['overlap', T0 + 1, 1],
      ]);
      const [run] = await store.listRuns({ jobId: a.id, limit: 10 });
      await store.cancelRun(run!.id, T0 + 15_000);
      expect(await fire(T0 + 20_000, [T0 + 20_000])).toMatchObject({ runs: 1 });
    });

    it('overlap cancel-previous: the running run is cancelled and its worker told; the newest fire runs', async () => {
      const a = await store.createJob(job('a'), T0, T0);
      await store.registerWorker(
        {
          id: 'w',
          name: 'w',
          group: 'default',
          handlers: ['h'],
          capacity: 5,
          labels: {},
          version: 't',
          host: 'h',
        },
        5000,
        T0,
      );
      await store.fire([{ jobId: a.id, expected: T0, next: T0 + 1000, fires: [T0] }], null, T0);
      const [claimed] = await store.claimRuns('w', 1, T0);
      const result = await store.fire(
        [
          {
            jobId: a.id,
            expected: T0 + 1000,
            next: T0 + 3000,
            fires: [T0 + 1000, T0 + 2000],
            overlap: 'cancel-previous',
          },
        ],
        null,
        T0 + 2000,
      );
      expect(result).toMatchObject({ runs: 1 });
      expect(await store.getRun(claimed!.runId)).toMatchObject({ status: 'cancelled' });
      expect(
        (await store.heartbeat('w', [{ runId: claimed!.runId, attempt: 1 }], 5000, T0 + 2000))?.cancel,
      ).toEqual([{ runId: claimed!.runId, attempt: 1 }]);
      const runs = await store.listRuns({ jobId: a.id, status: 'queued', limit: 10 });
      expect(runs.map((r) => r.fireTime)).toEqual([T0 + 2000]);
      expect((await store.listSkipped(a.id, { limit: 10 })).map((s) => [s.reason, s.first])).toEqual([
        ['overlap', T0 + 1000],
      ]);
    });

    const RETRY_NONE = {
      maxAttempts: 1,
      backoff: 'fixed' as const,
      delay: 0,
      maxDelay: 0,
      jitter: false,
      nonRetryable: [],
    };

    async function worker(now: number) {
      await store.registerWorker(
        {
          id: 'w',
          name: 'w',
          group: 'default',
          handlers: ['h'],
          capacity: 50,
          labels: {},
          version: 't',
          host: 'h',
        },
        3_600_000,
        now,
      );
    }

    /** Claims whatever is claimable and ends it with `status`. */
    async function endClaimable(now: number, status: RunStatus = 'succeeded', result: unknown = null) {
      const claimed = await store.claimRuns('w', 50, now);
      const outcome =
        status === 'succeeded'
          ? { kind: 'succeeded' as const, result: result as null }
          : { kind: 'failed' as const, name: 'Error', error: { name: 'Error', message: 'boom' } };
      await store.finishAttempts(
        claimed.map((c) => ({
          ...decideOutcome(RETRY_NONE, c.attempt, outcome, now, 0),
          runId: c.runId,
          attempt: c.attempt,
          group: 'default',
        })),
        now,
      );
      return claimed.map((c) => c.runId);
    }

    it('buffer-one: one run waits behind the active one and is released when it ends; more fires are skipped', async () => {
      const a = await store.createJob(job('a', { schedule: { overlap: 'buffer-one' } }), T0, T0);
      await worker(T0);
      const fire = (t: number) =>
        store.fire(
          [{ jobId: a.id, expected: t, next: t + 1000, fires: [t], overlap: 'buffer-one' }],
          null,
          t,
        );
      await fire(T0);
      await store.claimRuns('w', 50, T0);
      await fire(T0 + 1000); // buffered behind the running one
      await fire(T0 + 2000); // one is already waiting: skipped
      expect(await store.claimRuns('w', 50, T0 + 2000)).toEqual([]);
      expect((await store.listSkipped(a.id, { limit: 10 })).map((s) => [s.reason, s.first])).toEqual([
        ['overlap', T0 + 2000],
      ]);
      // The running run ends: the buffered one becomes claimable in the same transaction.
      const running = (await store.listRuns({ jobId: a.id, status: 'running', limit: 10 }))[0]!;
      const [decision] = [decideOutcome(RETRY_NONE, 1, { kind: 'succeeded', result: null }, T0 + 2500, 0)];
      await store.finishAttempts(
        [{ ...decision!, runId: running.id, attempt: 1, group: 'default' }],
        T0 + 2500,
      );
      const next = await store.claimRuns('w', 50, T0 + 2500);
      expect(next.map((c) => c.fireTime)).toEqual([T0 + 1000]);
    });

    it('buffer-all: a serial queue, one run of the job at a time, in fire order', async () => {
      const a = await store.createJob(job('a', { schedule: { overlap: 'buffer-all' } }), T0, T0);
      await worker(T0);
      await store.fire(
        [
          {
            jobId: a.id,
            expected: T0,
            next: T0 + 3000,
            fires: [T0, T0 + 1000, T0 + 2000],
            overlap: 'buffer-all',
          },
        ],
        null,
        T0 + 2000,
      );
      const order: number[] = [];
      for (let step = 0; step < 4; step++) {
        const claimed = await store.claimRuns('w', 50, T0 + 3000 + step);
        expect(claimed.length).toBeLessThanOrEqual(1);
        for (const c of claimed) {
          order.push(c.fireTime!);
          const decision = decideOutcome(RETRY_NONE, c.attempt, { kind: 'succeeded', result: null }, T0, 0);
          await store.finishAttempts(
            [{ ...decision, runId: c.runId, attempt: c.attempt, group: 'default' }],
            T0 + 3000 + step,
          );
        }
      }
      expect(order).toEqual([T0, T0 + 1000, T0 + 2000]);
      expect(await store.listSkipped(a.id, { limit: 10 })).toEqual([]);
    });

    it('a run that ends creates the runs of the jobs after it, in the same transaction, with its result', async () => {
      const parent = await store.createJob(job('parent', { trigger: { kind: 'manual' } }), null, T0);
      await store.createJob(
        job('on-success', { trigger: { kind: 'after', job: 'parent' }, params: { x: 1 } }),
        null,
        T0,
      );
      await store.createJob(
        job('on-failure', { trigger: { kind: 'after', job: 'parent', on: 'failure' } }),
        null,
        T0,
      );
      await store.createJob(
        job('always', { trigger: { kind: 'after', job: 'parent', on: 'always' } }),
        null,
        T0,
      );
      await worker(T0);
      const [ok] = await store.enqueueRuns(parent.id, [{ params: {}, priority: 0 }], T0);
      await endClaimable(T0 + 10, 'succeeded', { total: 42 });
      const children = await store.listRuns({ status: 'queued', limit: 10 });
      expect(children.map((r) => r.jobName).sort()).toEqual(['always', 'on-success']);
      const child = children.find((r) => r.jobName === 'on-success')!;
      expect(child).toMatchObject({ cause: 'dependency' });
      expect(child.params).toEqual({
        x: 1,
        parent: { job: 'parent', runId: ok, status: 'succeeded', result: { total: 42 } },
      });
      // A failed parent run sets off on-failure and always; a cancelled one, always only.
      await store.cancelRun(child.id, T0 + 20);
      await store.cancelRun(children.find((r) => r.jobName === 'always')!.id, T0 + 20);
      await store.enqueueRuns(parent.id, [{ params: {}, priority: 0 }], T0 + 30);
      await endClaimable(T0 + 40, 'failed');
      expect((await store.listRuns({ status: 'queued', limit: 10 })).map((r) => r.jobName).sort()).toEqual([
        'always',
        'on-failure',
      ]);
      const [cancelled] = await store.enqueueRuns(parent.id, [{ params: {}, priority: 0 }], T0 + 50);
      await store.cancelRun(cancelled!, T0 + 60);
      expect((await store.listRuns({ status: 'queued', limit: 10 })).map((r) => r.jobName).sort()).toEqual([
        'always',
        'always',
        'on-failure',
      ]);
    });

    it('a queued run failed by its schedule-to-start timeout sets off the jobs after it, as any failure', async () => {
      const parent = await store.createJob(
        job('late-parent', { trigger: { kind: 'manual' }, scheduleToStartTimeout: '5s' }),
        null,
        T0,
      );
      await store.createJob(
        job('after-late', { trigger: { kind: 'after', job: 'late-parent', on: 'failure' } }),
        null,
        T0,
      );
      const [run] = await store.enqueueRuns(parent.id, [{ params: {}, priority: 0 }], T0);
      expect(await store.expireQueuedRuns(T0 + 5000, 10)).toEqual([run]);
      const queued = await store.listRuns({ status: 'queued', limit: 10 });
      expect(queued.map((r) => [r.jobName, r.cause])).toEqual([['after-late', 'dependency']]);
    });

    it('backfills past fire times once, serially behind an active run, keeping fires that already ran', async () => {
      const a = await store.createJob(job('a'), T0, T0);
      await worker(T0);
      await store.fire([{ jobId: a.id, expected: T0, next: T0 + 1000, fires: [T0 + 2000] }], null, T0); // scheduled, queued
      const result = await store.backfillRuns(
        a.id,
        [T0, T0 + 1000, T0 + 2000, T0 + 3000],
        'buffer-all',
        T0 + 5000,
      );
      expect(result.existing).toEqual([T0 + 2000]);
      expect(result.created.map((c) => c.fireTime)).toEqual([T0, T0 + 1000, T0 + 3000]);
      const order: number[] = [];
      for (let step = 0; step < 6; step++) {
        const claimed = await store.claimRuns('w', 50, T0 + 6000 + step);
        expect(claimed.length).toBeLessThanOrEqual(1);
        for (const c of claimed) {
          order.push(c.fireTime!);
          const decision = decideOutcome(RETRY_NONE, c.attempt, { kind: 'succeeded', result: null }, T0, 0);
          await store.finishAttempts(
            [{ ...decision, runId: c.runId, attempt: c.attempt, group: 'default' }],
            T0 + 6000 + step,
          );
        }
      }
      // The scheduled run was in flight first; then the backfill, oldest first, one at a time.
      expect(order).toEqual([T0 + 2000, T0, T0 + 1000, T0 + 3000]);
      const runs = await store.listRuns({ jobId: a.id, limit: 10 });
      expect(runs.filter((r) => r.cause === 'backfill')).toHaveLength(3);
      // A second backfill of the same range creates nothing.
      expect((await store.backfillRuns(a.id, [T0, T0 + 1000], 'allow', T0 + 9000)).created).toEqual([]);
      await expect(store.backfillRuns(999_999, [T0], 'allow', T0)).rejects.toMatchObject({
        code: 'JOB_NOT_FOUND',
      });
    });

    it('keeps calendars by name, replaces them, and refuses to delete one a job names', async () => {
      const holidays = compileCalendar({
        name: 'holidays',
        timezone: 'Europe/Berlin',
        dates: ['2026-12-25'],
      });
      const first = await store.putCalendar(holidays, T0);
      expect(first).toMatchObject({
        created: true,
        calendar: { name: 'holidays', dates: ['2026-12-25'], createdAt: T0 },
      });
      const replaced = await store.putCalendar({ ...holidays, weekdays: [0, 6] }, T0 + 1);
      expect(replaced).toMatchObject({
        created: false,
        calendar: { weekdays: [0, 6], createdAt: T0, updatedAt: T0 + 1 },
      });
      await store.putCalendar(compileCalendar({ name: 'audits' }), T0);
      expect((await store.listCalendars()).map((c) => c.name)).toEqual(['audits', 'holidays']);
      expect((await store.getCalendars(['holidays', 'nope'])).map((c) => c.name)).toEqual(['holidays']);
      await store.createJob(job('uses', { schedule: { calendars: ['holidays'] } }), T0, T0);
      await expect(store.deleteCalendar('holidays')).rejects.toMatchObject({ code: 'CALENDAR_IN_USE' });
      expect(await store.deleteCalendar('audits')).toBe(true);
      expect(await store.deleteCalendar('audits')).toBe(false);
    });

    it('when the last active run ends, the backfill waiting behind several runs is released', async () => {
      const a = await store.createJob(job('a', { trigger: { kind: 'manual' } }), null, T0);
      await worker(T0);
      await store.enqueueRuns(
        a.id,
        [
          { params: {}, priority: 0 },
          { params: {}, priority: 0 },
        ],
        T0,
      );
      const running = await store.claimRuns('w', 50, T0);
      expect(running).toHaveLength(2);
      await store.backfillRuns(a.id, [T0 - 2000, T0 - 1000], 'buffer-all', T0);
      expect(await store.claimRuns('w', 50, T0)).toEqual([]);
      const end = (c: (typeof running)[number]) =>
        store.finishAttempts(
          [
            {
              ...decideOutcome(RETRY_NONE, c.attempt, { kind: 'succeeded', result: null }, T0 + 1, 0),
              runId: c.runId,
              attempt: c.attempt,
              group: 'default',
            },
          ],
          T0 + 1,
        );
      await Promise.all(running.map(end));
      expect((await store.claimRuns('w', 50, T0 + 2)).map((c) => c.fireTime)).toEqual([T0 - 2000]);
    });

    it('a job that gains dependents while runs of it are in flight: their ends trigger them', async () => {
      const parent = await store.createJob(job('parent', { trigger: { kind: 'manual' } }), null, T0);
      await worker(T0);
      await store.enqueueRuns(parent.id, [{ params: {}, priority: 0 }], T0);
      expect(await store.claimRuns('w', 50, T0)).toHaveLength(1);
      await store.createJob(job('child', { trigger: { kind: 'after', job: 'parent' } }), null, T0 + 1);
      // The parent's run is running, not claimable: end it through the store as a worker's report would.
      const [running] = await store.listRuns({ jobId: parent.id, status: 'running', limit: 10 });
      await store.finishAttempts(
        [
          {
            ...decideOutcome(RETRY_NONE, 1, { kind: 'succeeded', result: null }, T0 + 2, 0),
            runId: running!.id,
            attempt: 1,
            group: 'default',
          },
        ],
        T0 + 2,
      );
      const children = await store.listRuns({ status: 'queued', limit: 10 });
      expect(children.map((r) => [r.jobName, r.cause])).toEqual([['child', 'dependency']]);
    });

    it('a job whose policy becomes buffer-one while a run is in flight: that run’s end releases the buffered one', async () => {
      const a = await store.createJob(job('a'), T0, T0);
      await worker(T0);
      await store.fire([{ jobId: a.id, expected: T0, next: T0 + 1000, fires: [T0] }], null, T0);
      const [first] = await store.claimRuns('w', 50, T0);
      await store.updateJob(a.id, job('a', { schedule: { overlap: 'buffer-one' } }), T0 + 1000, T0 + 1);
      const fire = { jobId: a.id, expected: T0 + 1000, next: T0 + 2000, fires: [T0 + 1000] };
      await store.fire([{ ...fire, overlap: 'buffer-one' }], null, T0 + 1000);
      expect(await store.claimRuns('w', 50, T0 + 1000)).toEqual([]);
      await store.finishAttempts(
        [
          {
            ...decideOutcome(RETRY_NONE, 1, { kind: 'succeeded', result: null }, T0 + 1500, 0),
            runId: first!.runId,
            attempt: 1,
            group: 'default',
          },
        ],
        T0 + 1500,
      );
      expect((await store.claimRuns('w', 50, T0 + 1500)).map((c) => c.fireTime)).toEqual([T0 + 1000]);
    });

    it('resumes a paused job once, recording what it missed', async () => {
      const a = await store.createJob(job('a', { paused: true }), T0, T0);
      const missed = { reason: 'paused' as const, first: T0, last: T0 + 59_000, count: 60 };
      const resumed = await store.resumeJob(a.id, job('a'), T0 + 61_000, missed, T0 + 60_500);
      expect(resumed).toMatchObject({ paused: false, nextFireAt: T0 + 61_000 });
      // A second resume (another node, a retry) finds it running and changes nothing.
      expect(await store.resumeJob(a.id, job('a'), T0 + 99_000, missed, T0 + 60_600)).toBeNull();
      expect((await store.getJob('a'))?.nextFireAt).toBe(T0 + 61_000);
      const ledger = await store.listSkipped(a.id, { limit: 10 });
      expect(ledger).toEqual([
        expect.objectContaining({ reason: 'paused', first: T0, last: T0 + 59_000, count: 60 }),
      ]);
    });
  });
}
