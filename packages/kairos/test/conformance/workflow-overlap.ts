import type { WorkflowSpec } from '@kairos/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileWorkflow } from '../../src/core/workflow.ts';
import type { ClaimedRun, FireEntry, Store } from '../../src/store/store.ts';
import { workflowJobName } from '../../src/store/workflows.ts';
import { openWithWorker } from './workflow-setup.ts';

/**
 * The overlap policies that hold or cancel for workflows, in the store conformance suite
 * (docs/workflows.md#triggers): `buffer-one` and `buffer-all` hold a fire while an instance is
 * unfinished and the transaction that ends the last one starts the oldest held fire, once;
 * `cancel-previous` cancels the unfinished instances in the fire's transaction and starts the new
 * one. Run on every dialect.
 */
export function describeWorkflowOverlapConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, workflow overlap: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);
    let now = T0;

    beforeEach(async () => {
      now = T0;
      store = await openWithWorker(open, T0);
    });
    afterEach(async () => {
      await store.close();
    });

    const steps: WorkflowSpec['steps'] = [{ id: 'a', handler: 'h' }];
    const define = (name: string, overlap: NonNullable<WorkflowSpec['schedule']>['overlap'], s = steps) =>
      store.workflows.put(
        compileWorkflow({ name, steps: s, trigger: { kind: 'every', every: '1s' }, schedule: { overlap } }),
        'default',
        now,
        undefined,
        { next: T0 + 1000 },
      );
    /** Fires `fires` (the next fire due at the first), as the trigger loop would with this policy. */
    const fire = async (
      jobId: number,
      overlap: FireEntry['overlap'],
      fires: number[],
      extra: Partial<FireEntry> = {},
    ) => {
      const last = fires[fires.length - 1]!;
      now = Math.max(now, last);
      const entry: FireEntry = {
        jobId,
        expected: fires[0]!,
        next: last + 1000,
        fires,
        workflow: true,
        overlap,
        ...(overlap !== 'buffer-all' ? { previousFire: fires[0]! - 1000 } : {}),
        ...extra,
      };
      return store.fire([entry], null, now);
    };
    const instances = async (workflowId: number) =>
      (await store.workflows.listInstances(workflowId, undefined, 100)).map((i) => ({
        id: i.id,
        scheduledFor: i.scheduledFor === null ? null : i.scheduledFor - T0,
        state: i.state,
      }));
    /** Claims every queued run, by instance id. */
    async function claim(): Promise<Map<number, ClaimedRun>> {
      now += 10;
      const runs = await store.claimRuns('w1', 100, now);
      return new Map(runs.map((run) => [(run.params.$workflow as { instanceId: number }).instanceId, run]));
    }
    /** Ends a claimed step run as its worker reports it. */
    async function end(run: ClaimedRun, ok = true) {
      now += 10;
      const [applied] = await store.finishAttempts(
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
      return applied;
    }

    it('buffer-one: a fire while an instance runs is held, more go to the ledger; the end starts the held one once', async () => {
      const { workflow } = await define('one', 'buffer-one');
      expect(workflow.schedule.overlap).toBe('buffer-one');
      expect(await fire(workflow.jobId, 'buffer-one', [T0 + 1000])).toMatchObject({ runs: 1 });
      const held = await fire(workflow.jobId, 'buffer-one', [T0 + 2000]);
      expect(held).toMatchObject({ runs: 0, conflicts: 0, groups: [] });
      expect(held.skipped ?? []).toEqual([]);
      const overflow = await fire(workflow.jobId, 'buffer-one', [T0 + 3000, T0 + 4000]);
      expect(overflow).toMatchObject({ runs: 0, skipped: [{ reason: 'overlap', count: 2 }] });
      expect(await store.listSkipped(workflow.jobId, { limit: 10 })).toMatchObject([
        { reason: 'overlap', first: T0 + 3000, last: T0 + 4000, count: 2 },
      ]);
      expect(await instances(workflow.id)).toEqual([
        { id: expect.any(Number), scheduledFor: 1000, state: 'running' },
      ]);

      const first = await claim();
      expect(first.size).toBe(1);
      const [firstRun] = [...first.values()];
      expect(await end(firstRun!)).toBe(true);
      const after = await store.workflows.listInstances(workflow.id, undefined, 10);
      expect(after.map((i) => [i.scheduledFor! - T0, i.state, i.cause])).toEqual([
        [2000, 'running', 'schedule'],
        [1000, 'succeeded', 'schedule'],
      ]);
      expect(after[0]!.context).toEqual({ scheduledFor: new Date(T0 + 2000).toISOString() });
      // The held fire's root step run is queued and available at once.
      const second = await claim();
      expect([...second.keys()]).toEqual([after[0]!.id]);
      // The same report again, and the end of the held fire's instance, start nothing more.
      expect(await end(firstRun!)).toBe(false);
      expect(await end(second.get(after[0]!.id)!)).toBe(true);
      expect((await instances(workflow.id)).map((i) => [i.scheduledFor, i.state])).toEqual([
        [2000, 'succeeded'],
        [1000, 'succeeded'],
      ]);
      // Nothing is held any more: the next fire starts at once.
      expect(await fire(workflow.jobId, 'buffer-one', [T0 + 5000])).toMatchObject({ runs: 1 });
    });

    it('buffer-all: every fire is held; they start one at a time, in fire order, as instances end (a cancel too)', async () => {
      const { workflow } = await define('all', 'buffer-all');
      expect(await fire(workflow.jobId, 'buffer-all', [T0 + 1000], { countRuns: true })).toMatchObject({
        runs: 1,
      });
      expect(
        await fire(workflow.jobId, 'buffer-all', [T0 + 2000, T0 + 3000], { countRuns: true }),
      ).toMatchObject({ runs: 0 });
      expect(await fire(workflow.jobId, 'buffer-all', [T0 + 4000], { countRuns: true })).toMatchObject({
        runs: 0,
      });
      expect(await store.listSkipped(workflow.jobId, { limit: 10 })).toEqual([]);
      const order: number[] = [];
      for (let i = 0; i < 3; i++) {
        const running = await store.workflows.listInstances(workflow.id, undefined, 10);
        const unfinished = running.filter((x) => x.state === 'running');
        expect(unfinished).toHaveLength(1);
        order.push(unfinished[0]!.scheduledFor! - T0);
        if (i === 2) {
          // A cancel through the API ends it too, and starts the next held fire in its transaction.
          now += 10;
          await store.workflows.cancelInstance(unfinished[0]!.id, now);
        } else {
          const [run] = [...(await claim()).values()];
          expect(await end(run!, i === 0)).toBe(true);
        }
      }
      const all = await instances(workflow.id);
      order.push(all.find((x) => x.state === 'running')!.scheduledFor!);
      expect(order).toEqual([1000, 2000, 3000, 4000]);
      expect(all.map((i) => [i.scheduledFor, i.state])).toEqual([
        [4000, 'running'],
        [3000, 'cancelled'],
        [2000, 'failed'],
        [1000, 'succeeded'],
      ]);
      // maxRuns counts the fires held as it counts the instances started.
      expect((await store.getJob(workflowJobName('default', 'all'), { workflowJobs: true }))!.runsFired).toBe(
        4,
      );
    });

    it('cancel-previous: the fire cancels the unfinished instance (its runs, audited as the schedule) and starts its own', async () => {
      const { workflow } = await define('newest', 'cancel-previous');
      await fire(workflow.jobId, 'cancel-previous', [T0 + 1000]);
      const [old] = await store.workflows.listInstances(workflow.id, undefined, 10);
      const claimed = await claim();
      const oldRun = claimed.get(old!.id)!;
      const fired = await fire(workflow.jobId, 'cancel-previous', [T0 + 2000]);
      expect(fired).toMatchObject({ runs: 1, conflicts: 0 });
      const after = await store.workflows.listInstances(workflow.id, undefined, 10);
      expect(after.map((i) => [i.scheduledFor! - T0, i.state])).toEqual([
        [2000, 'running'],
        [1000, 'cancelled'],
      ]);
      expect(after[1]!.steps).toMatchObject([{ id: 'a', state: 'cancelled', runId: oldRun.runId }]);
      expect(await store.getRun(oldRun.runId)).toMatchObject({ status: 'cancelled' });
      const audit = await store.listAudit({ limit: 10 });
      expect(audit).toMatchObject([
        {
          actor: 'schedule',
          action: 'workflow-instances.cancel',
          target: `workflow-instances:${old!.id}`,
          details: { reason: 'overlap', workflow: 'newest', scheduledFor: new Date(T0 + 2000).toISOString() },
        },
      ]);
      // The cancelled run's late report changes nothing; the new instance's run is claimable.
      expect(await end(oldRun)).toBe(false);
      expect([...(await claim()).keys()]).toEqual([after[0]!.id]);
      // Several fires in one plan: the newest starts, the others go to the ledger.
      const plan = await fire(workflow.jobId, 'cancel-previous', [T0 + 3000, T0 + 4000]);
      expect(plan).toMatchObject({ runs: 1, skipped: [{ reason: 'overlap', count: 1 }] });
      expect((await instances(workflow.id)).map((i) => [i.scheduledFor, i.state])).toEqual([
        [4000, 'running'],
        [2000, 'cancelled'],
        [1000, 'cancelled'],
      ]);
    });

    it('held fires outlive a replace (the instance takes the new version) and wait for a retried instance too', async () => {
      const { workflow } = await define('kept', 'buffer-one');
      await fire(workflow.jobId, 'buffer-one', [T0 + 1000]);
      await fire(workflow.jobId, 'buffer-one', [T0 + 2000]);
      // A replace with the same trigger and schedule and new steps: the held fire stays.
      const replaced = await define('kept', 'buffer-one', [{ id: 'b', handler: 'h' }]);
      expect(replaced.workflow.version).toBe(2);
      const [first] = [...(await claim()).values()];
      expect(await end(first!, false)).toBe(true);
      const started = await store.workflows.listInstances(workflow.id, undefined, 10);
      expect(started.map((i) => [i.scheduledFor! - T0, i.state, i.version])).toEqual([
        [2000, 'running', 2],
        [1000, 'failed', 1],
      ]);
      // A retry makes the failed instance unfinished again: the next fire is held behind both.
      now += 10;
      await store.workflows.repairInstance(started[1]!.id, { kind: 'retry' }, now);
      expect(await fire(workflow.jobId, 'buffer-one', [T0 + 3000])).toMatchObject({ runs: 0 });
      const runs = await claim();
      expect(await end(runs.get(started[0]!.id)!)).toBe(true);
      expect((await instances(workflow.id)).map((i) => [i.scheduledFor, i.state])).toEqual([
        [2000, 'succeeded'],
        [1000, 'running'],
      ]);
      expect(await end(runs.get(started[1]!.id)!)).toBe(true);
      expect((await instances(workflow.id)).map((i) => [i.scheduledFor, i.state])).toEqual([
        [3000, 'running'],
        [2000, 'succeeded'],
        [1000, 'succeeded'],
      ]);
      // Deleting the workflow drops what it holds.
      await fire(workflow.jobId, 'buffer-one', [T0 + 4000]);
      expect(await store.workflows.delete('default', 'kept')).toBe(true);
    });
  });
}
