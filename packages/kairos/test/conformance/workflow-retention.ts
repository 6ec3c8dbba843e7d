import type { Json, WorkflowSpec } from '@kairos/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileWorkflow } from '../../src/core/workflow.ts';
import type { ClaimedRun, Store } from '../../src/store/store.ts';
import { openWithWorker } from './workflow-setup.ts';

type Steps = WorkflowSpec['steps'];

/**
 * Retention of workflow instances in the store conformance suite (docs/retention.md): the pruner's
 * read of ended instances in end order, the bounded deletes of their map items and then of the
 * instances with their steps, never an instance that runs (or runs again after a repair), and never a
 * step run of an instance that still runs. Run on every dialect, unchanged.
 */
export function describeWorkflowRetentionConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, workflow retention: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);
    let now = T0;

    beforeEach(async () => {
      now = T0;
      store = await openWithWorker(open, T0, { capacity: 1_000 });
    });
    afterEach(async () => {
      await store.close();
    });

    const define = (name: string, steps: Steps) =>
      store.workflows.put(compileWorkflow({ name, steps }), 'default', now);
    const start = async (name: string) =>
      (await store.workflows.start('default', name, { context: {} }, now))!;

    async function claim(): Promise<ClaimedRun[]> {
      now += 1000;
      return store.claimRuns('w1', 1000, now);
    }
    async function end(
      runs: readonly ClaimedRun[],
      ok: boolean,
      result: (run: ClaimedRun) => Json = () => null,
    ) {
      now += 1000;
      return store.finishAttempts(
        runs.map((run) => ({
          runId: run.runId,
          attempt: run.attempt,
          group: 'default',
          attemptStatus: ok ? ('succeeded' as const) : ('failed' as const),
          error: ok ? null : { name: 'Error', message: 'boom' },
          result: ok ? result(run) : null,
          run: { status: ok ? ('succeeded' as const) : ('failed' as const) },
          workerId: 'w1',
        })),
        now,
      );
    }
    /** Claims and ends every queued run as `ok` says, until none is left. */
    async function drain(ok: (run: ClaimedRun) => boolean, result: (run: ClaimedRun) => Json = () => null) {
      for (let batch = await claim(); batch.length > 0; batch = await claim()) {
        for (const run of batch) await end([run], ok(run), result);
      }
    }
    const stepOf = (run: ClaimedRun) => (run.params.$workflow as { step: string }).step;

    it('reads ended instances in end order from a cursor with their step counts, never a running one', async () => {
      await define('two', [
        { id: 'a', handler: 'h' },
        { id: 'b', handler: 'h', after: ['a'] },
      ]);
      const ok = await start('two');
      await drain(() => true);
      const bad = await start('two');
      await drain(() => false);
      const running = await start('two');
      expect((await store.workflows.getInstance(ok.id))!.state).toBe('succeeded');
      expect((await store.workflows.getInstance(bad.id))!.state).toBe('failed');
      const okEnd = (await store.workflows.getInstance(ok.id))!.finishedAt!;
      const badEnd = (await store.workflows.getInstance(bad.id))!.finishedAt!;
      expect(okEnd).toBeLessThan(badEnd);

      const all = await store.workflowInstancesToPrune(null, now + 1, 10);
      expect(all).toEqual([
        { id: ok.id, state: 'succeeded', finishedAt: okEnd, steps: 2 },
        { id: bad.id, state: 'failed', finishedAt: badEnd, steps: 2 },
      ]);
      expect(await store.workflowInstancesToPrune({ finishedAt: okEnd, id: ok.id }, now + 1, 10)).toEqual([
        all[1],
      ]);
      expect(await store.workflowInstancesToPrune(null, badEnd, 10)).toEqual([all[0]]);
      expect(await store.workflowInstancesToPrune(null, now + 1, 1)).toEqual([all[0]]);
      // Named to the deletes, the running instance stays whole; the ended ones go with their steps.
      expect(await store.deleteEndedWorkflowInstances([ok.id, running.id, bad.id])).toBe(2);
      expect(await store.workflows.getInstance(ok.id)).toBeNull();
      expect(await store.workflows.getInstance(bad.id)).toBeNull();
      expect((await store.workflows.getInstance(running.id))!.state).toBe('running');
      const [workflow] = await store.workflows.list({ limit: 10 });
      expect((await store.workflows.listInstances(workflow!.id, undefined, 10)).map((i) => i.id)).toEqual([
        running.id,
      ]);
    });

    it('deletes a map step’s items in bounded batches before its instance, and the instance only once they are gone', async () => {
      await define('fan', [
        { id: 'list', handler: 'h' },
        { id: 'one', handler: 'h', after: ['list'], map: { from: 'list', maxParallel: 5 } },
      ]);
      const instance = await start('fan');
      await drain(
        () => true,
        (run) => (stepOf(run) === 'list' ? [1, 2, 3, 4, 5, 6, 7] : 'done'),
      );
      expect((await store.workflows.getInstance(instance.id))!.state).toBe('succeeded');
      const other = await start('fan');
      // The second instance's items are written and it runs: its items are never touched.
      const [list] = await claim();
      await end([list!], true, () => [1, 2, 3]);

      expect(await store.deleteEndedWorkflowInstances([instance.id])).toBe(0); // items left
      expect(await store.pruneWorkflowMapItems([instance.id, other.id], 3)).toBe(3);
      expect(await store.pruneWorkflowMapItems([instance.id, other.id], 3)).toBe(3);
      expect(await store.deleteEndedWorkflowInstances([instance.id])).toBe(0);
      expect(await store.pruneWorkflowMapItems([instance.id, other.id], 3)).toBe(1);
      expect(await store.pruneWorkflowMapItems([instance.id, other.id], 3)).toBe(0);
      // Without its items the ended instance still reads, its step's result kept on the step row.
      expect(
        (await store.workflows.getInstance(instance.id))!.steps.find((s) => s.id === 'one'),
      ).toMatchObject({ state: 'succeeded', runId: null, startedAt: null, finishedAt: null, attempts: 0 });
      expect(await store.deleteEndedWorkflowInstances([instance.id])).toBe(1);
      expect(await store.workflows.getInstance(instance.id)).toBeNull();
      // The running instance goes on: its items end and it succeeds.
      await drain(() => true);
      expect((await store.workflows.getInstance(other.id))!.state).toBe('succeeded');
    });

    it('an instance a repair brought back runs is not deleted; ended again, it is', async () => {
      await define('flaky', [{ id: 'a', handler: 'h' }]);
      const instance = await start('flaky');
      await drain(() => false);
      expect(await store.workflowInstancesToPrune(null, now + 1, 10)).toHaveLength(1);
      await store.workflows.repairInstance(instance.id, { kind: 'retry' }, now);
      expect(await store.workflowInstancesToPrune(null, now + 1, 10)).toEqual([]);
      expect(await store.deleteEndedWorkflowInstances([instance.id])).toBe(0);
      expect(await store.pruneWorkflowMapItems([instance.id], 10)).toBe(0);
      await drain(() => true);
      expect(await store.deleteEndedWorkflowInstances([instance.id])).toBe(1);
    });

    it('never deletes a step run of a running or paused instance; once it ended, the instance reads without it', async () => {
      await define('chain', [
        { id: 'a', handler: 'h' },
        { id: 'b', handler: 'h', after: ['a'] },
      ]);
      const instance = await start('chain');
      const [a] = await claim();
      await end([a!], true, () => ({ rows: 3 }));
      expect(await store.deleteFinishedRuns([a!.runId])).toBe(0);
      await store.workflows.repairInstance(instance.id, { kind: 'pause' }, now);
      expect(await store.deleteFinishedRuns([a!.runId])).toBe(0);
      await store.workflows.repairInstance(instance.id, { kind: 'resume' }, now);
      const [b] = await claim();
      // b received a's result from a's run, still there.
      expect((b!.params.$workflow as { parents: Record<string, unknown> }).parents.a).toEqual({
        runId: a!.runId,
        state: 'succeeded',
        result: { rows: 3 },
      });
      await end([b!], true);
      const ended = (await store.workflows.getInstance(instance.id))!;
      expect(ended.state).toBe('succeeded');
      expect(await store.deleteFinishedRuns([a!.runId, b!.runId])).toBe(2);
      // The instance reads as before; its steps name runs that are gone, with no times and no attempts.
      const read = (await store.workflows.getInstance(instance.id))!;
      expect(read.state).toBe('succeeded');
      expect(read.steps).toEqual([
        {
          id: 'a',
          state: 'succeeded',
          runId: a!.runId,
          startedAt: null,
          finishedAt: null,
          attempts: 0,
          error: null,
        },
        {
          id: 'b',
          state: 'succeeded',
          runId: b!.runId,
          startedAt: null,
          finishedAt: null,
          attempts: 0,
          error: null,
        },
      ]);
      // A re-run of a step whose run is gone still hands its children the result kept on the step row.
      await store.workflows.repairInstance(instance.id, { kind: 'rerun', step: 'b' }, now);
      const [again] = await claim();
      expect((again!.params.$workflow as { parents: Record<string, unknown> }).parents.a).toEqual({
        runId: a!.runId,
        state: 'succeeded',
        result: { rows: 3 },
      });
      // Runs that belong to no instance are pruned as before.
      expect(await store.deleteFinishedRuns([again!.runId])).toBe(0); // not finished
    });
  });
}
