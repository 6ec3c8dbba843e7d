import type { WorkflowSpec } from '@kairos/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileWorkflow } from '../../src/core/workflow.ts';
import type { ClaimedRun, FireEntry, Store } from '../../src/store/store.ts';

/**
 * The namespace's maxQueuedRuns on what workflows queue, in the store conformance suite
 * (docs/workflows.md#queued-runs-and-the-namespaces-quota, docs/tenancy.md#quotas): a repair that
 * queues runs past it is refused whole, one that queues none never is; a step's end advances its
 * instance whatever the queue holds; a scheduled fire while the namespace is at its quota starts no
 * instance and goes to the ledger (`quota`). Run on every dialect, unchanged.
 */
export function describeWorkflowQuotasConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, workflows and maxQueuedRuns: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);
    let now = T0;

    beforeEach(async () => {
      store = await open();
      await store.migrate();
      now = T0;
      await store.namespaces.create({ name: 'blue', description: '' }, T0);
      await store.registerWorker(
        {
          id: 'w1',
          name: 'w1',
          namespace: 'blue',
          group: 'default',
          handlers: ['h'],
          capacity: 100,
          labels: {},
          version: 't',
          host: 'h',
        },
        3_600_000,
        T0,
      );
    });
    afterEach(async () => {
      await store.close();
    });

    const define = (
      name: string,
      steps: WorkflowSpec['steps'],
      extra: Partial<WorkflowSpec> = {},
      next: number | null = null,
    ) => store.workflows.put(compileWorkflow({ name, steps, ...extra }), 'blue', now, undefined, { next });
    const start = async (name: string) => (await store.workflows.start('blue', name, { context: {} }, now))!;
    const queued = () => store.countQueuedRuns('blue', 100);
    async function claim(): Promise<ClaimedRun[]> {
      now += 1000;
      return store.claimRuns('w1', 100, now);
    }
    async function end(run: ClaimedRun, ok: boolean) {
      now += 1000;
      await store.finishAttempts(
        [
          {
            runId: run.runId,
            attempt: run.attempt,
            group: 'default',
            attemptStatus: ok ? 'succeeded' : 'failed',
            error: ok ? null : { name: 'Error', message: 'boom' },
            result: null,
            run: { status: ok ? 'succeeded' : 'failed' },
            workerId: 'w1',
          },
        ],
        now,
      );
    }
    const refused = { code: 'QUOTA_EXCEEDED', status: 429, details: { quota: 'maxQueuedRuns', limit: 2 } };

    it('a retry, a re-run, a resume and a skip that would queue past the quota are refused whole; a pause never is', async () => {
      await define('one', [{ id: 'a', handler: 'h' }]);
      await define('two', [
        { id: 'a', handler: 'h' },
        { id: 'b', handler: 'h', after: ['a'] },
      ]);
      const failed = await start('one');
      const [run] = await claim();
      await end(run!, false);
      const paused = await start('two');
      await store.workflows.repairInstance(paused.id, { kind: 'pause' }, now, 0); // queues nothing: never refused
      const [a] = await claim();
      await end(a!, true); // b is held by the pause
      await start('one');
      await start('one');
      expect(await queued()).toBe(2);
      const before = await store.workflows.getInstance(failed.id);
      await expect(
        store.workflows.repairInstance(failed.id, { kind: 'retry' }, now, 2),
      ).rejects.toMatchObject(refused);
      await expect(
        store.workflows.repairInstance(failed.id, { kind: 'rerun', step: 'a' }, now, 2),
      ).rejects.toMatchObject(refused);
      await expect(
        store.workflows.repairInstance(paused.id, { kind: 'resume' }, now, 2),
      ).rejects.toMatchObject(refused);
      // Nothing written: the instances and the queue are as they were.
      expect(await store.workflows.getInstance(failed.id)).toEqual(before);
      expect((await store.workflows.getInstance(paused.id))!.state).toBe('paused');
      expect(await queued()).toBe(2);
      // Under the quota (or without one) the same repairs go through.
      expect((await store.workflows.repairInstance(failed.id, { kind: 'retry' }, now, 3))!.state).toBe(
        'running',
      );
      expect(await queued()).toBe(3);
      expect((await store.workflows.repairInstance(paused.id, { kind: 'resume' }, now, null))!.state).toBe(
        'running',
      );
      expect(await queued()).toBe(4);
    });

    it('a skip that lets a child run is judged too; one that queues nothing passes at any queue', async () => {
      await define('two', [
        { id: 'a', handler: 'h' },
        { id: 'b', handler: 'h', after: ['a'] },
      ]);
      const instance = await start('two');
      const other = await start('two');
      expect(await queued()).toBe(2);
      // Skipping a ready step cancels its run and queues b: net the same queue, but b is one more.
      await expect(
        store.workflows.repairInstance(instance.id, { kind: 'skip', step: 'a' }, now, 1),
      ).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED', status: 429 });
      expect(
        await store.workflows.repairInstance(instance.id, { kind: 'skip', step: 'a' }, now, 2),
      ).toMatchObject({
        steps: [
          { id: 'a', state: 'succeeded', skipped: true },
          { id: 'b', state: 'ready' },
        ],
      });
      // Skipping the last step queues nothing: it ends the instance whatever the queue holds.
      await store.workflows.repairInstance(other.id, { kind: 'skip', step: 'a' }, now, null);
      expect(
        await store.workflows.repairInstance(other.id, { kind: 'skip', step: 'b' }, now, 0),
      ).toMatchObject({
        state: 'succeeded',
      });
    });

    it('a step’s end advances its instance whatever the namespace’s queue: it is never refused', async () => {
      await store.namespaces.setQuotas('blue', { maxQueuedRuns: 1 });
      await define('two', [
        { id: 'a', handler: 'h' },
        { id: 'b', handler: 'h', after: ['a'] },
      ]);
      const instance = await start('two');
      const [a] = await claim();
      await start('two');
      await start('two');
      expect(await queued()).toBe(2);
      await end(a!, true);
      expect((await store.workflows.getInstance(instance.id))!.steps[1]).toMatchObject({ state: 'ready' });
      expect(await queued()).toBe(3);
    });

    it('a scheduled fire while the namespace holds its maxQueuedRuns starts nothing and goes to the ledger (quota)', async () => {
      const { workflow } = await define(
        'every',
        [{ id: 'a', handler: 'h' }],
        { trigger: { kind: 'every', every: '1s' } },
        T0 + 1000,
      );
      const fireOf = (expected: number, next: number, fires: number[], previousFire?: number): FireEntry => ({
        jobId: workflow.jobId,
        expected,
        next,
        fires,
        workflow: true,
        ...(previousFire === undefined ? {} : { previousFire }),
      });
      await store.namespaces.setQuotas('blue', { maxQueuedRuns: 2 });
      // Two fires in one plan start two instances: the second starts with one run queued.
      expect(
        await store.fire([fireOf(T0 + 1000, T0 + 3000, [T0 + 1000, T0 + 2000])], null, T0 + 2000),
      ).toMatchObject({
        runs: 2,
      });
      expect(await queued()).toBe(2);
      expect(await store.listSkipped(workflow.jobId, { limit: 10 })).toEqual([]);
      // At the quota: both fires go to the ledger, no instance, the next fire still moves on.
      const full = await store.fire(
        [fireOf(T0 + 3000, T0 + 5000, [T0 + 3000, T0 + 4000], T0 + 2000)],
        null,
        T0 + 4000,
      );
      expect(full).toMatchObject({
        runs: 0,
        skipped: [{ jobId: workflow.jobId, reason: 'quota', count: 2 }],
      });
      expect(await store.listSkipped(workflow.jobId, { limit: 10 })).toMatchObject([
        { reason: 'quota', first: T0 + 3000, last: T0 + 4000, count: 2 },
      ]);
      expect(await store.workflows.listInstances(workflow.id, undefined, 10)).toHaveLength(2);
      expect((await store.workflows.get('blue', 'every'))!.nextFireAt).toBe(T0 + 5000);
      // Once a run is taken, the next fire starts an instance again.
      await claim();
      expect(
        await store.fire([fireOf(T0 + 5000, T0 + 6000, [T0 + 5000], T0 + 4000)], null, T0 + 5000),
      ).toMatchObject({
        runs: 1,
      });
      expect(await store.listSkipped(workflow.jobId, { limit: 10 })).toHaveLength(1);
      // Without a quota every fire starts.
      await store.namespaces.setQuotas('blue', null);
      expect(
        await store.fire([fireOf(T0 + 6000, T0 + 7000, [T0 + 6000], T0 + 5000)], null, T0 + 6000),
      ).toMatchObject({
        runs: 1,
      });
    });
  });
}
