import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob } from '../../src/core/job.ts';
import type { Store, WorkerRegistration } from '../../src/store/store.ts';

/**
 * The queue part of the store conformance suite: what the queue metrics and `kairos doctor` read
 * (Store.queuedRunCounts). Run by `describeStoreConformance` on every dialect, unchanged.
 */
export function describeQueueConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, queue counts: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);
    const LEASE = 10_000;

    beforeEach(async () => {
      store = await open();
      await store.migrate();
    });
    afterEach(async () => {
      await store.close();
    });

    const worker = (id: string, group: string, handlers: string[]): WorkerRegistration => ({
      id,
      name: id,
      group,
      handlers,
      capacity: 4,
      labels: {},
      version: 't',
      host: 'h',
    });

    async function queue(name: string, group: string, handler: string, availableAt: number[]) {
      const job = await store.createJob(
        compileJob({ name, handler, group, trigger: { kind: 'manual' } }),
        null,
        T0,
      );
      await store.enqueueRuns(
        job.id,
        availableAt.map((at) => ({ params: {}, priority: 0, availableAt: at })),
        T0,
      );
      return job;
    }

    it('counts queued runs by group, job and handler, with the oldest that is due', async () => {
      await queue('a', 'alpha', 'ha', [T0 + 10, T0 + 20, T0 + 60_000]);
      await queue('b', 'beta', 'hb', [T0 + 5]);
      const counts = await store.queuedRunCounts(T0 + 1000, 100);
      expect(counts).toEqual([
        {
          namespace: 'default',
          group: 'alpha',
          jobName: 'a',
          handler: 'ha',
          queued: 3,
          oldestAvailableAt: T0 + 10,
          groupServed: false,
          handlerServed: false,
          resources: null,
        },
        {
          namespace: 'default',
          group: 'beta',
          jobName: 'b',
          handler: 'hb',
          queued: 1,
          oldestAvailableAt: T0 + 5,
          groupServed: false,
          handlerServed: false,
          resources: null,
        },
      ]);
    });

    it('a run not yet available counts as queued but is not the oldest waiting', async () => {
      await queue('later', 'default', 'h', [T0 + 60_000]);
      const [count] = await store.queuedRunCounts(T0, 100);
      expect(count).toMatchObject({ queued: 1, oldestAvailableAt: null });
    });

    it('tells whether a live worker of the group exists and declares the handler', async () => {
      await queue('served', 'g', 'h', [T0]);
      await queue('other-handler', 'g', 'h2', [T0]);
      await queue('no-group', 'empty', 'h', [T0]);
      await store.registerWorker(worker('w1', 'g', ['h', 'x']), LEASE, T0);
      const byJob = new Map((await store.queuedRunCounts(T0 + 1, 100)).map((c) => [c.jobName, c]));
      expect(byJob.get('served')).toMatchObject({ groupServed: true, handlerServed: true });
      expect(byJob.get('other-handler')).toMatchObject({ groupServed: true, handlerServed: false });
      expect(byJob.get('no-group')).toMatchObject({ groupServed: false, handlerServed: false });
      // Once its lease ended the worker is not live.
      const afterLease = await store.queuedRunCounts(T0 + LEASE + 1, 100);
      expect(afterLease.find((c) => c.jobName === 'served')).toMatchObject({
        groupServed: false,
        handlerServed: false,
      });
    });

    it("counts a group as served only by live workers of the job's namespace", async () => {
      await store.namespaces.create({ name: 'blue', description: '' }, T0);
      await queue('plain', 'default', 'h', [T0]);
      const blue = await store.createJob(
        compileJob({ name: 'blue-job', handler: 'h', group: 'default', trigger: { kind: 'manual' } }),
        null,
        T0,
        'blue',
      );
      await store.enqueueRuns(blue.id, [{ params: {}, priority: 0, availableAt: T0 }], T0);
      // A live worker of blue in group `default` serves blue's job, not default's.
      await store.registerWorker({ ...worker('wb', 'default', ['h']), namespace: 'blue' }, LEASE, T0);
      const byJob = new Map((await store.queuedRunCounts(T0 + 1, 100)).map((c) => [c.jobName, c]));
      expect(byJob.get('blue-job')).toMatchObject({
        namespace: 'blue',
        groupServed: true,
        handlerServed: true,
      });
      expect(byJob.get('plain')).toMatchObject({
        namespace: 'default',
        groupServed: false,
        handlerServed: false,
      });
    });

    it('leaves out running runs and answers at most `limit` rows, the largest first', async () => {
      const small = await queue('small', 'g', 'h', [T0]);
      await queue('big', 'g', 'h', [T0, T0, T0]);
      await store.registerWorker(worker('w1', 'g', ['h']), LEASE, T0);
      const claimed = await store.claimRuns('w1', 4, T0 + 1);
      expect(claimed).toHaveLength(4);
      expect(await store.queuedRunCounts(T0 + 1, 100)).toEqual([]);
      await store.enqueueRuns(small.id, [{ params: {}, priority: 0 }], T0 + 2);
      await queue('bigger', 'g', 'h', [T0, T0]);
      const top = await store.queuedRunCounts(T0 + 3, 1);
      expect(top.map((c) => [c.jobName, c.queued])).toEqual([['bigger', 2]]);
    });
  });
}
