import type { WorkflowSpec } from '@kairos/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileWorkflow } from '../../src/core/workflow.ts';
import type { FireEntry, Store } from '../../src/store/store.ts';
import { workflowJobName } from '../../src/store/workflows.ts';
import { openWithWorker } from './workflow-setup.ts';

/**
 * Workflow triggers in the store conformance suite (docs/workflows.md#triggers): a workflow's job
 * carries its trigger and schedule, and a fire of that job starts an instance in the fire's
 * transaction (never a plain run of the job), once per fire time, with the overlap policy judged on
 * the workflow's running instances and the ledger written as for a job. Run on every dialect.
 */
export function describeWorkflowTriggersConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, workflow triggers: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);

    beforeEach(async () => {
      store = await openWithWorker(open, T0);
    });
    afterEach(async () => {
      await store.close();
    });

    const steps: WorkflowSpec['steps'] = [
      { id: 'a', handler: 'h' },
      { id: 'b', handler: 'h', after: ['a'] },
    ];
    const define = (
      name: string,
      extra: Partial<Pick<WorkflowSpec, 'trigger' | 'schedule'>>,
      next: number | null,
      now = T0,
    ) => store.workflows.put(compileWorkflow({ name, steps, ...extra }), 'default', now, undefined, { next });
    const fireOf = (
      jobId: number,
      expected: number,
      next: number | null,
      fires: number[],
      extra: Partial<FireEntry> = {},
    ): FireEntry => ({ jobId, expected, next, fires, workflow: true, ...extra });

    it('keeps the trigger and schedule on the workflow`s job: it is due, and read back with its next fire', async () => {
      const { workflow } = await define(
        'nightly',
        { trigger: { kind: 'every', every: '1s' }, schedule: { overlap: 'skip', jitter: '2s' } },
        T0 + 1000,
      );
      expect(workflow).toMatchObject({
        trigger: { kind: 'every', every: 1000, anchor: 0 },
        schedule: { overlap: 'skip', jitterMs: 2000 },
        paused: false,
        nextFireAt: T0 + 1000,
      });
      expect(await store.workflows.get('default', 'nightly')).toEqual(workflow);
      const due = await store.dueJobs({ count: 1, owned: [0] }, T0 + 1000, 10);
      expect(due).toMatchObject([
        { id: workflow.jobId, name: workflowJobName('default', 'nightly'), workflowId: workflow.id },
      ]);
      // A manual workflow has no fire.
      const manual = await define('by-hand', {}, null);
      expect(manual.workflow).toMatchObject({ trigger: { kind: 'manual' }, nextFireAt: null });
    });

    it('a fire starts an instance (cause schedule, its fire time), never a run of the job', async () => {
      const { workflow } = await define('every', { trigger: { kind: 'every', every: '1s' } }, T0 + 1000);
      const fired = await store.fire(
        [fireOf(workflow.jobId, T0 + 1000, T0 + 2000, [T0 + 1000])],
        null,
        T0 + 1000,
      );
      expect(fired).toMatchObject({ runs: 1, conflicts: 0, groups: ['default'] });
      const [instance, ...more] = await store.workflows.listInstances(workflow.id, undefined, 10);
      expect(more).toEqual([]);
      expect(instance).toMatchObject({
        state: 'running',
        cause: 'schedule',
        scheduledFor: T0 + 1000,
        context: { scheduledFor: new Date(T0 + 1000).toISOString() },
        steps: [
          { id: 'a', state: 'ready' },
          { id: 'b', state: 'waiting', runId: null },
        ],
      });
      const runs = await store.listRuns({ jobId: workflow.jobId, limit: 10 });
      expect(runs.map((r) => [r.cause, r.id])).toEqual([['workflow', instance!.steps[0]!.runId]]);
      expect((await store.workflows.get('default', 'every'))!.nextFireAt).toBe(T0 + 2000);
      // A start through the API is `manual`, without a fire time.
      const started = await store.workflows.start('default', 'every', { context: {} }, T0 + 1500);
      expect(started).toMatchObject({ cause: 'manual', scheduledFor: null });
    });

    it('starts one instance per fire: a lost compare-and-set and a stale plan of the same fire write nothing', async () => {
      const { workflow } = await define('once', { trigger: { kind: 'every', every: '1s' } }, T0 + 1000);
      const entry = fireOf(workflow.jobId, T0 + 1000, T0 + 2000, [T0 + 1000]);
      expect(await store.fire([entry], null, T0 + 1000)).toMatchObject({ runs: 1, conflicts: 0 });
      expect(await store.fire([entry], null, T0 + 1000)).toMatchObject({ runs: 0, conflicts: 1 });
      // A plan that names the same fire time again past the compare-and-set: the unique key holds.
      const again = fireOf(workflow.jobId, T0 + 2000, T0 + 3000, [T0 + 1000, T0 + 2000]);
      expect(await store.fire([again], null, T0 + 2000)).toMatchObject({ runs: 1, conflicts: 0 });
      const instances = await store.workflows.listInstances(workflow.id, undefined, 10);
      expect(instances.map((i) => i.scheduledFor)).toEqual([T0 + 2000, T0 + 1000]);
    });

    it('overlap skip: a fire while an instance runs goes to the ledger (overlap); one after it ended starts', async () => {
      const { workflow } = await define(
        'serial',
        { trigger: { kind: 'every', every: '1s' }, schedule: { overlap: 'skip' } },
        T0 + 1000,
      );
      const first = await store.fire(
        [fireOf(workflow.jobId, T0 + 1000, T0 + 2000, [T0 + 1000], { overlap: 'skip' })],
        null,
        T0 + 1000,
      );
      expect(first.runs).toBe(1);
      const skipped = await store.fire(
        [
          fireOf(workflow.jobId, T0 + 2000, T0 + 4000, [T0 + 2000, T0 + 3000], {
            overlap: 'skip',
            previousFire: T0 + 1000,
          }),
        ],
        null,
        T0 + 3000,
      );
      expect(skipped).toMatchObject({
        runs: 0,
        conflicts: 0,
        skipped: [{ jobId: workflow.jobId, reason: 'overlap', count: 2 }],
      });
      expect(await store.listSkipped(workflow.jobId, { limit: 10 })).toMatchObject([
        { reason: 'overlap', first: T0 + 2000, last: T0 + 3000, count: 2 },
      ]);
      const [running] = await store.workflows.listInstances(workflow.id, undefined, 10);
      await store.workflows.cancelInstance(running!.id, T0 + 3500);
      const after = await store.fire(
        [
          fireOf(workflow.jobId, T0 + 4000, T0 + 5000, [T0 + 4000], {
            overlap: 'skip',
            previousFire: T0 + 3000,
          }),
        ],
        null,
        T0 + 4000,
      );
      expect(after).toMatchObject({ runs: 1 });
      const instances = await store.workflows.listInstances(workflow.id, undefined, 10);
      expect(instances.map((i) => [i.scheduledFor, i.state])).toEqual([
        [T0 + 4000, 'running'],
        [T0 + 1000, 'cancelled'],
      ]);
    });

    it('overlap allow starts an instance per fire; maxRuns counts instances; misfire ranges reach the ledger', async () => {
      const { workflow } = await define(
        'capped',
        { trigger: { kind: 'every', every: '1s' }, schedule: { maxRuns: 5 } },
        T0 + 1000,
      );
      const fired = await store.fire(
        [
          fireOf(workflow.jobId, T0 + 1000, T0 + 4000, [T0 + 2000, T0 + 3000], {
            countRuns: true,
            skipped: [{ reason: 'misfire', first: T0 + 1000, last: T0 + 1000, count: 1 }],
          }),
        ],
        null,
        T0 + 3000,
      );
      expect(fired).toMatchObject({ runs: 2, skipped: [{ reason: 'misfire', count: 1 }] });
      expect(
        (await store.getJob(workflowJobName('default', 'capped'), { workflowJobs: true }))!.runsFired,
      ).toBe(2);
      expect(await store.workflows.listInstances(workflow.id, undefined, 10)).toHaveLength(2);
      expect(await store.listSkipped(workflow.jobId, { limit: 10 })).toMatchObject([
        { reason: 'misfire', count: 1 },
      ]);
    });

    it('the root steps` runs wait for the fire`s jitter', async () => {
      const { workflow } = await define(
        'jittered',
        { trigger: { kind: 'every', every: '1m' }, schedule: { jitter: '30s' } },
        T0 + 60_000,
      );
      await store.fire(
        [fireOf(workflow.jobId, T0 + 60_000, T0 + 120_000, [T0 + 60_000], { availableAt: [T0 + 80_000] })],
        null,
        T0 + 60_000,
      );
      expect(await store.claimRuns('w1', 10, T0 + 79_000)).toEqual([]);
      const claimed = await store.claimRuns('w1', 10, T0 + 80_000);
      expect(claimed.map((r) => (r.params.$workflow as { step: string }).step)).toEqual(['a']);
    });

    it('a replace keeps the next fire when the trigger and schedule stay, and moves it when they change', async () => {
      const trigger = { kind: 'every', every: '1m' } as const;
      await define('moving', { trigger }, T0 + 60_000);
      const kept = await define('moving', { trigger }, T0 + 999_000, T0 + 30_000);
      expect(kept).toMatchObject({ created: false, workflow: { version: 2, nextFireAt: T0 + 60_000 } });
      const moved = await define(
        'moving',
        { trigger: { kind: 'every', every: '2m' } },
        T0 + 120_000,
        T0 + 30_000,
      );
      expect(moved.workflow).toMatchObject({ trigger: { every: 120_000 }, nextFireAt: T0 + 120_000 });
      const manual = await define('moving', {}, null, T0 + 30_000);
      expect(manual.workflow).toMatchObject({ trigger: { kind: 'manual' }, nextFireAt: null });
      expect(
        (await store.getJob(workflowJobName('default', 'moving'), { workflowJobs: true }))!.version,
      ).toBeGreaterThan(1);
    });
  });
}
