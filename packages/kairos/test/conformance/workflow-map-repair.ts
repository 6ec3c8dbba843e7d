import type { Json, WorkflowSpec } from '@kairos/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileWorkflow } from '../../src/core/workflow.ts';
import type { ClaimedRun, Store } from '../../src/store/store.ts';
import type { WorkflowRepair } from '../../src/store/workflows.ts';
import { openWithWorker } from './workflow-setup.ts';

type WorkflowParams = {
  step: string;
  index?: number;
  item?: Json;
  parents: Record<string, { result: Json }>;
};

/**
 * Repairs of map steps in the store conformance suite (docs/workflows.md#repair): a re-run or retry
 * replaces a map step's items (its running item runs cancelled, a new fan-out with keys of its own),
 * a skip cancels them, a late report of a replaced item run advances nothing, and a paused instance
 * holds its next items until the resume queues them. Run on every dialect, unchanged.
 */
export function describeWorkflowMapRepairConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, repairs of map steps: ${dialect}`, () => {
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

    const tick = () => {
      now += 1000;
      return now;
    };
    const wf = (run: ClaimedRun) => run.params.$workflow as unknown as WorkflowParams;
    const start = async (steps: WorkflowSpec['steps']) => {
      await store.workflows.put(compileWorkflow({ name: 'm', steps }), 'default', now);
      return (await store.workflows.start('default', 'm', { context: {} }, now))!;
    };
    const repair = (id: number, action: WorkflowRepair) => store.workflows.repairInstance(id, action, tick());
    const claim = () => store.claimRuns('w1', 1000, tick());
    /** Ends an attempt as the worker reports it; answers whether the report applied. */
    async function end(run: ClaimedRun, ok: boolean, result: Json = null) {
      const [applied] = await store.finishAttempts(
        [
          {
            runId: run.runId,
            attempt: run.attempt,
            group: 'default',
            attemptStatus: ok ? 'succeeded' : 'failed',
            error: ok ? null : { name: 'Error', message: 'boom' },
            result: ok ? result : null,
            run: { status: ok ? 'succeeded' : 'failed' },
            workerId: 'w1',
          },
        ],
        tick(),
      );
      return applied;
    }
    const states = async (id: number) =>
      Object.fromEntries((await store.workflows.getInstance(id))!.steps.map((s) => [s.id, s.state]));
    const steps: WorkflowSpec['steps'] = [
      { id: 'list', handler: 'h' },
      { id: 'one', handler: 'h', after: ['list'], map: { from: 'list', maxParallel: 2 } },
      { id: 'sum', handler: 'h', after: ['one'] },
    ];

    it('a re-run of a map step fans its items out again with keys of their own; a re-run above it cancels its running items, whose late reports advance nothing', async () => {
      const instance = await start(steps);
      await end((await claim())[0]!, true, ['a', 'b', 'c']);
      let items = await claim();
      for (const run of items) await end(run, true, wf(run).index!);
      await end((await claim())[0]!, true, 2);
      await end((await claim())[0]!, true);
      expect(await store.workflows.getInstance(instance.id)).toMatchObject({ state: 'succeeded' });

      // The second fan-out: the same items, new runs (the first fan-out's keys would insert none).
      expect(await repair(instance.id, { kind: 'rerun', step: 'one' })).toMatchObject({ state: 'running' });
      items = await claim();
      expect(items.map((r) => [wf(r).step, wf(r).index, wf(r).item])).toEqual([
        ['one', 0, 'a'],
        ['one', 1, 'b'],
      ]);
      // Its parent re-run while two items run: both are cancelled, the step waits for the list.
      await repair(instance.id, { kind: 'rerun', step: 'list' });
      for (const run of items) expect((await store.getRun(run.runId))?.status).toBe('cancelled');
      expect(await end(items[0]!, true, 'late')).toBe(false);
      expect(await states(instance.id)).toEqual({ list: 'ready', one: 'waiting', sum: 'waiting' });
      const list = await claim();
      expect(list.map((r) => wf(r).step)).toEqual(['list']);
      await end(list[0]!, true, ['x']);
      // The third fan-out, from the new list only.
      const third = await claim();
      expect(third.map((r) => [wf(r).step, wf(r).index, wf(r).item])).toEqual([['one', 0, 'x']]);
      await end(third[0]!, true, 'X');
      const sum = await claim();
      expect(wf(sum[0]!).parents.one?.result).toEqual(['X']);
      await end(sum[0]!, true);
      expect(await store.workflows.getInstance(instance.id)).toMatchObject({ state: 'succeeded' });
    });

    it('a retry of a failed map step fans it out again from its first item', async () => {
      const instance = await start([
        { id: 'list', handler: 'h' },
        { id: 'one', handler: 'h', after: ['list'], map: { from: 'list', maxParallel: 1 } },
      ]);
      await end((await claim())[0]!, true, [1, 2]);
      await end((await claim())[0]!, false);
      expect(await claim()).toEqual([]);
      expect(await store.workflows.getInstance(instance.id)).toMatchObject({ state: 'failed' });
      expect(await repair(instance.id, { kind: 'retry' })).toMatchObject({ state: 'running' });
      const first = await claim();
      expect(first.map((r) => [wf(r).index, wf(r).item])).toEqual([[0, 1]]);
      await end(first[0]!, true, 10);
      const second = await claim();
      expect(second.map((r) => [wf(r).index, wf(r).item])).toEqual([[1, 2]]);
      await end(second[0]!, true, 20);
      expect(await store.workflows.getInstance(instance.id)).toMatchObject({
        state: 'succeeded',
        steps: [{ id: 'list' }, { id: 'one', state: 'succeeded', error: null }],
      });
    });

    it('a skip of a map step cancels its queued and running item runs; their late reports advance nothing', async () => {
      const instance = await start(steps);
      await end((await claim())[0]!, true, [1, 2, 3, 4]);
      const [running] = await claim();
      // One item runs, the other is still queued when the step is skipped.
      const skipped = await repair(instance.id, { kind: 'skip', step: 'one' });
      expect(skipped!.steps).toMatchObject([
        {},
        { id: 'one', state: 'succeeded', skipped: true },
        { state: 'ready' },
      ]);
      const active = await store.listRuns({ status: 'queued', limit: 100 });
      expect(active.map((r) => (r.params.$workflow as unknown as WorkflowParams).step)).toEqual(['sum']);
      expect((await store.getRun(running!.runId))?.status).toBe('cancelled');
      expect(await end(running!, true, 'late')).toBe(false);
      const sum = await claim();
      expect(sum.map((r) => wf(r).step)).toEqual(['sum']);
      expect(wf(sum[0]!).parents.one?.result).toBeNull();
    });

    it('a paused instance queues no further item; the resume queues the held items up to maxParallel', async () => {
      const instance = await start(steps);
      await end((await claim())[0]!, true, [0, 1, 2, 3, 4]);
      const first = await claim();
      expect(first).toHaveLength(2);
      await repair(instance.id, { kind: 'pause' });
      for (const run of first) expect(await end(run, true, wf(run).index!)).toBe(true);
      expect(await claim()).toEqual([]);
      expect(await states(instance.id)).toEqual({ list: 'succeeded', one: 'ready', sum: 'waiting' });
      expect(await repair(instance.id, { kind: 'resume' })).toMatchObject({ state: 'running' });
      let batch = await claim();
      expect(batch.map((r) => wf(r).index)).toEqual([2, 3]);
      // Paused with one item left to queue and none running: the resume queues it.
      await repair(instance.id, { kind: 'pause' });
      for (const run of batch) await end(run, true, wf(run).index!);
      expect(await claim()).toEqual([]);
      await repair(instance.id, { kind: 'resume' });
      batch = await claim();
      expect(batch.map((r) => wf(r).index)).toEqual([4]);
      await end(batch[0]!, true, 4);
      const sum = await claim();
      expect(wf(sum[0]!).parents.one?.result).toEqual([0, 1, 2, 3, 4]);
    });
  });
}
