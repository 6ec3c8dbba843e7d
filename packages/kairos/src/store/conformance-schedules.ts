import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob, type JobDefinition } from '../core/job.ts';
import type { Store } from './store.ts';

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
      const [claimed] = await store.claimRuns('w', 1, 5000, T0);
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
      expect(await store.heartbeat('w', [{ runId: claimed!.runId, attempt: 1 }], 5000, T0 + 2000)).toEqual([
        { runId: claimed!.runId, attempt: 1 },
      ]);
      const runs = await store.listRuns({ jobId: a.id, status: 'queued', limit: 10 });
      expect(runs.map((r) => r.fireTime)).toEqual([T0 + 2000]);
      expect((await store.listSkipped(a.id, { limit: 10 })).map((s) => [s.reason, s.first])).toEqual([
        ['overlap', T0 + 1000],
      ]);
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
