import type { RunStatus } from '@kairos/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob, type JobDefinition } from '../../src/core/job.ts';
import type { AttemptOutcome, Store } from '../../src/store/store.ts';

/**
 * The retention part of the store conformance suite: what the pruner reads and the bounded deletes
 * it runs (docs/retention.md). Run by `describeStoreConformance` on every dialect, unchanged.
 */
export function describeRetentionConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, retention: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);
    const HOUR = 3_600_000;

    beforeEach(async () => {
      store = await open();
      await store.migrate();
      await store.registerWorker(
        {
          id: 'w1',
          name: 'w1',
          group: 'default',
          handlers: ['h'],
          capacity: 100,
          labels: {},
          version: 't',
          host: 'h',
        },
        10 * HOUR,
        T0,
      );
    });
    afterEach(async () => {
      await store.close();
    });

    const job = (name: string, extra: Partial<Parameters<typeof compileJob>[0]> = {}): JobDefinition =>
      compileJob({ name, handler: 'h', trigger: { kind: 'manual' }, ...extra });

    /** A run of `jobId` queued at `at`, claimed, and ended as `status` at `at + 10`. */
    async function ended(
      jobId: number,
      at: number,
      status: 'succeeded' | 'failed' | 'queued',
    ): Promise<number> {
      const [runId] = await store.enqueueRuns(jobId, [{ params: {}, priority: 0 }], at);
      const [claim] = await store.claimRuns('w1', 1, at + 1);
      expect(claim?.runId).toBe(runId);
      const end: AttemptOutcome =
        status === 'succeeded'
          ? {
              runId: runId!,
              attempt: 1,
              group: 'default',
              attemptStatus: 'succeeded',
              error: null,
              result: 1,
              run: { status: 'succeeded' },
            }
          : {
              runId: runId!,
              attempt: 1,
              group: 'default',
              attemptStatus: 'failed',
              error: { name: 'E', message: 'boom' },
              result: null,
              run:
                status === 'failed'
                  ? { status: 'failed' }
                  : { status: 'queued', availableAt: at + 10 * HOUR },
            };
      expect(await store.finishAttempts([end], at + 10)).toEqual([true]);
      return runId!;
    }

    it('keeps a job’s own retention and lists the jobs that have one', async () => {
      const own = await store.createJob(job('own', { retention: { finished: '2d', keepLast: 5 } }), null, T0);
      await store.createJob(job('plain'), null, T0);
      expect(own.retention).toEqual({ finishedMs: 2 * 24 * HOUR, failedMs: null, keepLast: 5 });
      expect((await store.getJob('plain'))?.retention).toEqual({
        finishedMs: null,
        failedMs: null,
        keepLast: null,
      });
      expect(await store.jobsWithRetention()).toEqual([{ jobId: own.id, retention: own.retention }]);
      const updated = await store.updateJob(
        own.id,
        job('own', { retention: { failed: '30d' } }),
        null,
        T0 + 1,
      );
      expect(updated?.retention).toEqual({ finishedMs: null, failedMs: 30 * 24 * HOUR, keepLast: null });
      await store.updateJob(own.id, job('own'), null, T0 + 2);
      expect(await store.jobsWithRetention()).toEqual([]);
    });

    it('reads finished runs in end order from a cursor, with whether a later finished run of the job exists', async () => {
      const a = await store.createJob(job('a'), null, T0);
      const b = await store.createJob(job('b'), null, T0);
      const a1 = await ended(a.id, T0, 'succeeded');
      const b1 = await ended(b.id, T0 + HOUR, 'failed');
      const a2 = await ended(a.id, T0 + 2 * HOUR, 'queued'); // a retry waiting: has an end time, not finished
      const a3 = await ended(a.id, T0 + 3 * HOUR, 'succeeded');
      const [queued] = await store.enqueueRuns(a.id, [{ params: {}, priority: 0 }], T0 + 4 * HOUR);

      const all = await store.runsToPrune(null, T0 + 10 * HOUR, 10);
      // A retry waiting may carry its last attempt's end time; it is not finished, and never deleted.
      expect(all.filter((r) => r.id === a2).map((r) => r.status)).toEqual(
        all.some((r) => r.id === a2) ? ['queued'] : [],
      );
      const finished = all.filter((r) => r.id !== a2);
      expect(finished.map((r) => [r.id, r.status, r.superseded])).toEqual([
        [a1, 'succeeded', true],
        [b1, 'failed', false],
        [a3, 'succeeded', false],
      ]);
      expect(all[0]).toMatchObject({ jobId: a.id, createdAt: T0, finishedAt: T0 + 10 });
      expect(all.map((r) => r.id)).not.toContain(queued);
      // Bounded by `until` and `limit`, continued from a cursor.
      expect((await store.runsToPrune(null, T0 + 2 * HOUR, 10)).map((r) => r.id)).toEqual([a1, b1]);
      const first = await store.runsToPrune(null, T0 + 10 * HOUR, 2);
      expect(first.map((r) => r.id)).toEqual([a1, b1]);
      const last = first.at(-1)!;
      const next = await store.runsToPrune({ finishedAt: last.finishedAt!, id: last.id }, T0 + 10 * HOUR, 2);
      expect(next.map((r) => r.id).filter((id) => id !== a2)).toEqual([a3]);
    });

    it('reads one job’s runs after an id with the id it keeps from for its newest N', async () => {
      const a = await store.createJob(job('a', { retention: { keepLast: 2 } }), null, T0);
      const ids: number[] = [];
      for (let i = 0; i < 4; i++)
        ids.push(await ended(a.id, T0 + i * HOUR, i === 1 ? 'failed' : 'succeeded'));
      const [queued] = await store.enqueueRuns(a.id, [{ params: {}, priority: 0 }], T0 + 5 * HOUR);
      const scan = await store.jobRunsToPrune(a.id, 2, 0, 10);
      expect(scan.keepFrom).toBe(ids[2]);
      expect(scan.runs.map((r) => [r.id, r.status, r.superseded])).toEqual([
        [ids[0], 'succeeded', true],
        [ids[1], 'failed', true],
        [ids[2], 'succeeded', false],
        [ids[3], 'succeeded', false],
        [queued, 'queued', false],
      ]);
      expect(scan.runs[0]?.retention.keepLast).toBe(2);
      expect((await store.jobRunsToPrune(a.id, 2, ids[1]!, 2)).runs.map((r) => r.id)).toEqual([
        ids[2],
        ids[3],
      ]);
      // Fewer finished runs than it keeps: nothing is superseded.
      expect((await store.jobRunsToPrune(a.id, 5, 0, 10)).keepFrom).toBeNull();
      // Keeping one: everything before the newest finished run.
      expect((await store.jobRunsToPrune(a.id, 1, 0, 10)).keepFrom).toBe(ids[3]);
    });

    it('deletes finished runs with their attempts, logs, progress and late reports, never one that is not finished', async () => {
      const a = await store.createJob(job('a'), null, T0);
      const done = await ended(a.id, T0, 'succeeded');
      await store.appendRunLogs(
        'w1',
        {
          logs: [
            { runId: done, attempt: 1, level: 'info', message: 'late line', fields: null, time: T0 + 20 },
          ],
          progress: [],
        },
        100,
        T0 + 20,
      );
      // A cancelled run whose attempt reported after the cancel: its late report goes with it.
      const [cancelled] = await store.enqueueRuns(a.id, [{ params: {}, priority: 0 }], T0 + 30);
      await store.claimRuns('w1', 1, T0 + 31);
      await store.appendRunLogs(
        'w1',
        {
          logs: [{ runId: cancelled!, attempt: 1, level: 'info', message: 'x', fields: null, time: T0 + 32 }],
          progress: [{ runId: cancelled!, attempt: 1, value: 0.5, message: null }],
        },
        100,
        T0 + 32,
      );
      await store.cancelRun(cancelled!, T0 + 33);
      expect(
        await store.recordLateReports(
          'w1',
          [{ runId: cancelled!, attempt: 1, outcome: 'succeeded', error: null }],
          T0 + 34,
        ),
      ).toBe(1);
      const retry = await ended(a.id, T0 + 40, 'queued');
      const [running] = await store.enqueueRuns(a.id, [{ params: {}, priority: 0 }], T0 + 50);
      await store.claimRuns('w1', 1, T0 + 51);
      const [queued] = await store.enqueueRuns(a.id, [{ params: {}, priority: 0 }], T0 + 60);
      expect((await store.getRun(running!))?.status).toBe('running');

      expect(await store.deleteFinishedRuns([done, cancelled!, retry, queued!, running!])).toBe(2);
      for (const id of [done, cancelled!]) {
        expect(await store.getRun(id)).toBeNull();
        expect(await store.getAttempts(id)).toEqual([]);
        expect(await store.runLogs(id, 0, 10)).toEqual([]);
        expect(await store.runProgress(id)).toBeNull();
      }
      const statuses: Array<RunStatus | undefined> = [];
      for (const id of [retry, queued!, running!]) statuses.push((await store.getRun(id))?.status);
      expect(statuses).toEqual(['queued', 'queued', 'running']);
      expect(await store.getAttempts(retry)).toHaveLength(1);
      expect(await store.deleteFinishedRuns([])).toBe(0);
      // The running run still ends normally afterwards.
      expect(
        await store.finishAttempts(
          [
            {
              runId: running!,
              attempt: 1,
              group: 'default',
              attemptStatus: 'succeeded',
              error: null,
              result: null,
              run: { status: 'succeeded' },
            },
          ],
          T0 + 70,
        ),
      ).toEqual([true]);
    });

    it('prunes the skipped-fire ledger by when a row was last written, in bounded batches', async () => {
      const a = await store.createJob(job('a', { trigger: { kind: 'every', every: '1s' } }), T0, T0);
      for (let i = 0; i < 5; i++) {
        const expected = T0 + i * 10_000;
        const result = await store.fire(
          [
            {
              jobId: a.id,
              expected,
              next: expected + 10_000,
              fires: [],
              skipped: [{ reason: 'misfire', first: expected, last: expected + 1000, count: 2 }],
            },
          ],
          null,
          T0 + i * HOUR,
        );
        expect(result.conflicts).toBe(0);
      }
      expect(await store.listSkipped(a.id, { limit: 10 })).toHaveLength(5);
      expect(await store.pruneSkippedFires(T0 + 3 * HOUR, 2)).toBe(2);
      expect(await store.pruneSkippedFires(T0 + 3 * HOUR, 2)).toBe(1);
      expect(await store.pruneSkippedFires(T0 + 3 * HOUR, 2)).toBe(0);
      expect((await store.listSkipped(a.id, { limit: 10 })).map((r) => r.recordedAt)).toEqual([
        T0 + 4 * HOUR,
        T0 + 3 * HOUR,
      ]);
    });

    it('prunes the audit log by time, in bounded batches', async () => {
      for (let i = 0; i < 4; i++)
        await store.appendAudit({
          at: T0 + i * HOUR,
          actor: 'admin',
          action: 'job.update',
          target: 'a',
          details: {},
        });
      expect(await store.pruneAuditLog(T0 + 2 * HOUR, 1)).toBe(1);
      expect(await store.pruneAuditLog(T0 + 2 * HOUR, 10)).toBe(1);
      expect(await store.pruneAuditLog(T0 + 2 * HOUR, 10)).toBe(0);
      expect((await store.listAudit({ limit: 10 })).map((e) => e.at)).toEqual([T0 + 3 * HOUR, T0 + 2 * HOUR]);
    });
  });
}
