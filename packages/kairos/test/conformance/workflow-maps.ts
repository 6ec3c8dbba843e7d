import type { Json, JsonObject, WorkflowSpec } from '@kairos/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob } from '../../src/core/job.ts';
import { compileWorkflow } from '../../src/core/workflow.ts';
import type { ClaimedRun, Store } from '../../src/store/store.ts';
import { openWithWorker } from './workflow-setup.ts';

type Steps = WorkflowSpec['steps'];
type WorkflowParams = {
  step: string;
  index?: number;
  item?: Json;
  context: JsonObject;
  parents: Record<string, { runId: number | null; state: string; result: Json }>;
};

/**
 * Map steps and context writes in the store conformance suite (docs/workflows.md#map-and-reduce,
 * #context): items fanned out with bounded parallelism, each item's end queuing the next in its
 * transaction, results in index order, failures tolerated or not, a reduce after a map, context
 * merges, the limits, and two item ends racing on one map. Run on every dialect, unchanged.
 */
export function describeWorkflowMapsConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, workflow maps and context: ${dialect}`, () => {
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
    const start = async (name: string, context: JsonObject = {}) =>
      (await store.workflows.start('default', name, { context }, now))!;
    const wf = (run: ClaimedRun) => run.params.$workflow as unknown as WorkflowParams;

    /** Claims every queued run. */
    async function claim(): Promise<ClaimedRun[]> {
      now += 1000;
      return store.claimRuns('w1', 1000, now);
    }

    function report(run: ClaimedRun, ok: boolean, result: Json = null) {
      return store.finishAttempts(
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
        now,
      );
    }
    async function end(run: ClaimedRun, ok: boolean, result: Json = null) {
      now += 1000;
      const [applied] = await report(run, ok, result);
      return applied;
    }

    async function stepOf(instanceId: number, id: string) {
      return (await store.workflows.getInstance(instanceId))!.steps.find((s) => s.id === id)!;
    }

    it('lists a map step’s items by page, from an index, by state, with counts of all of them', async () => {
      await define('listed', [
        { id: 'list', handler: 'h' },
        {
          id: 'one',
          handler: 'h',
          after: ['list'],
          map: { from: 'list', maxParallel: 2, tolerateFailures: 5 },
        },
      ]);
      const instance = await start('listed');
      await expect(
        store.workflows.mapItems(instance.id, 'list', { from: 0, limit: 10 }),
      ).rejects.toMatchObject({
        code: 'WORKFLOW_STEP_NOT_MAP',
      });
      await expect(
        store.workflows.mapItems(instance.id, 'gone', { from: 0, limit: 10 }),
      ).rejects.toMatchObject({
        code: 'WORKFLOW_STEP_NOT_FOUND',
      });
      expect(await store.workflows.mapItems(instance.id + 1000, 'one', { from: 0, limit: 10 })).toBeNull();
      // Before the list: no items yet.
      expect(await store.workflows.mapItems(instance.id, 'one', { from: 0, limit: 10 })).toEqual({
        items: [],
        counts: { waiting: 0, ready: 0, succeeded: 0, failed: 0, skipped: 0, cancelled: 0 },
      });
      const [list] = await claim();
      await end(list!, true, ['a', 'b', 'c', 'd', 'e']);
      const [first, second] = await claim();
      await end(first!, true, { n: 1 });
      await end(second!, false);
      const page = (await store.workflows.mapItems(instance.id, 'one', { from: 0, limit: 10 }))!;
      expect(page.counts).toEqual({
        waiting: 1,
        ready: 2,
        succeeded: 1,
        failed: 1,
        skipped: 0,
        cancelled: 0,
      });
      expect(page.items.map((i) => [i.index, i.state])).toEqual([
        [0, 'succeeded'],
        [1, 'failed'],
        [2, 'ready'],
        [3, 'ready'],
        [4, 'waiting'],
      ]);
      expect(page.items[0]).toEqual({
        index: 0,
        state: 'succeeded',
        runId: first!.runId,
        attempts: 1,
        result: expect.any(String),
        error: null,
      });
      expect(JSON.parse(page.items[0]!.result!)).toEqual({ n: 1 });
      expect(page.items[1]).toMatchObject({ runId: second!.runId, result: null, error: { message: 'boom' } });
      expect(page.items[2]).toMatchObject({ runId: expect.any(Number), attempts: 0, error: null });
      expect(page.items[4]).toMatchObject({ runId: null, attempts: 0, result: null, error: null });
      const from = await store.workflows.mapItems(instance.id, 'one', { from: 2, limit: 2 });
      expect(from!.items.map((i) => i.index)).toEqual([2, 3]);
      const ready = await store.workflows.mapItems(instance.id, 'one', {
        from: 3,
        limit: 10,
        state: 'ready',
      });
      expect(ready!.items.map((i) => i.index)).toEqual([3]);
      expect(ready!.counts.ready).toBe(2);
    });

    it('fans a list out, never more than maxParallel at once, and hands the results in index order to a reduce', async () => {
      await define('resize', [
        { id: 'list', handler: 'h' },
        { id: 'one', handler: 'h', after: ['list'], map: { from: 'list', path: 'images', maxParallel: 2 } },
        { id: 'sum', handler: 'h', after: ['one'] },
      ]);
      const instance = await start('resize', { day: 'd' });
      const [list] = await claim();
      await end(list!, true, { images: ['a', 'b', 'c', 'd', 'e'] });
      const seen: number[] = [];
      let batch = await claim();
      const firstItemStart = now;
      let lastItemEnd = 0;
      while (batch.length > 0 && wf(batch[0]!).step === 'one') {
        expect(batch.length).toBeLessThanOrEqual(2);
        const queued = await store.listRuns({ status: 'queued', limit: 100 });
        expect(queued).toHaveLength(0);
        for (const run of batch) {
          const p = wf(run);
          expect(p.item).toEqual(['a', 'b', 'c', 'd', 'e'][p.index!]);
          expect(p.context).toEqual({ day: 'd' });
          // The list is the item's: the parent's result is not repeated in each item run.
          expect(p.parents.list).toMatchObject({ state: 'succeeded', result: null });
          seen.push(p.index!);
        }
        // End them in reverse order: the results still come back in index order.
        for (const run of [...batch].reverse()) await end(run, true, { size: wf(run).index! * 10 });
        lastItemEnd = now;
        batch = await claim();
      }
      expect(seen).toEqual([0, 1, 2, 3, 4]);
      expect(batch.map((r) => wf(r).step)).toEqual(['sum']);
      expect(wf(batch[0]!).parents.one).toEqual({
        runId: null,
        state: 'succeeded',
        result: [{ size: 0 }, { size: 10 }, { size: 20 }, { size: 30 }, { size: 40 }],
      });
      await end(batch[0]!, true);
      expect(await store.workflows.getInstance(instance.id)).toMatchObject({ state: 'succeeded' });
      // A map step's times are its items': the first item's start to the last item's end.
      expect(await stepOf(instance.id, 'one')).toEqual({
        id: 'one',
        state: 'succeeded',
        runId: null,
        startedAt: firstItemStart,
        finishedAt: lastItemEnd,
        attempts: 5,
        error: null,
      });
    });

    it('an empty list succeeds at once with []; anything but a list, or a longer one than maxItems, fails the step with its reason', async () => {
      await define('edges', [
        { id: 'list', handler: 'h' },
        { id: 'empty', handler: 'h', after: ['list'], map: { from: 'list', path: 'none' } },
        { id: 'after-empty', handler: 'h', after: ['empty'] },
        { id: 'bad', handler: 'h', after: ['list'], map: { from: 'list', path: 'text' } },
        { id: 'wide', handler: 'h', after: ['list'], map: { from: 'list', path: 'three', maxItems: 2 } },
        { id: 'missing', handler: 'h', after: ['list'], map: { from: 'list', path: 'nothing.here' } },
      ]);
      const instance = await start('edges');
      const [list] = await claim();
      await end(list!, true, { none: [], text: 'abc', three: [1, 2, 3] });
      const next = await claim();
      expect(next.map((r) => wf(r).step)).toEqual(['after-empty']);
      expect(wf(next[0]!).parents.empty).toMatchObject({ state: 'succeeded', result: [] });
      const steps = (await store.workflows.getInstance(instance.id))!.steps;
      expect(steps.find((s) => s.id === 'bad')).toMatchObject({
        state: 'failed',
        error: { code: 'MAP_NOT_A_LIST', message: "the result of 'list' at 'text' is a string, not a list" },
      });
      expect(steps.find((s) => s.id === 'wide')).toMatchObject({
        state: 'failed',
        error: { code: 'MAP_TOO_WIDE' },
      });
      expect(steps.find((s) => s.id === 'missing')?.error?.code).toBe('MAP_NOT_A_LIST');
      await end(next[0]!, true);
      expect(await store.workflows.getInstance(instance.id)).toMatchObject({ state: 'failed' });
    });

    it('tolerates failed items up to tolerateFailures (null results); past it, queues no more items and fails', async () => {
      await define('tolerant', [
        {
          id: 'one',
          handler: 'h',
          map: { from: '$context', path: 'ids', maxParallel: 3, tolerateFailures: 1 },
        },
      ]);
      const tolerant = await start('tolerant', { ids: [1, 2, 3] });
      const items = await claim();
      expect(items).toHaveLength(3);
      await end(items[0]!, true, 'x');
      await end(items[1]!, false);
      await end(items[2]!, true, 'z');
      expect(await store.workflows.getInstance(tolerant.id)).toMatchObject({ state: 'succeeded' });

      await define('strict', [
        { id: 'one', handler: 'h', map: { from: '$context', path: 'ids', maxParallel: 2 } },
        { id: 'on-failure', handler: 'h', after: [{ step: 'one', on: 'failure' }] },
      ]);
      const strict = await start('strict', { ids: [1, 2, 3, 4, 5] });
      const [first, second] = await claim();
      await end(first!, false);
      // The failure is past the tolerance: no item is queued after it, and the running one finishes.
      expect(await claim()).toEqual([]);
      await end(second!, true);
      const handler = await claim();
      expect(handler.map((r) => wf(r).step)).toEqual(['on-failure']);
      expect(await stepOf(strict.id, 'one')).toMatchObject({
        state: 'failed',
        error: {
          code: 'MAP_ITEMS_FAILED',
          message: '4 of 5 items failed or were not run, more than the 0 tolerated',
        },
      });
    });

    it('maps a `job` step over items with the job`s handler; deleting the job fails the rest of the items and the step', async () => {
      await store.createJob(
        compileJob({ name: 'thumb', handler: 'h', params: { size: 64 }, trigger: { kind: 'manual' } }),
        null,
        now,
      );
      await define('jobs', [
        { id: 'one', job: 'thumb', map: { from: '$context', path: 'ids', maxParallel: 2 } },
        { id: 'on-failure', handler: 'h', after: [{ step: 'one', on: 'failure' }] },
      ]);
      const instance = await start('jobs', { ids: ['a', 'b', 'c', 'd'] });
      const [a, b] = await claim();
      expect(a!.params).toMatchObject({ size: 64, $workflow: { item: 'a', index: 0 } });
      await end(a!, true, 1);
      const [c] = await claim();
      expect(wf(c!).item).toBe('c');
      now += 1000;
      expect(await store.deleteJob('thumb', undefined, now)).toBe(true);
      const rest = await claim();
      expect(rest.map((r) => wf(r).step)).toEqual(['on-failure']);
      expect(await stepOf(instance.id, 'one')).toMatchObject({
        state: 'failed',
        error: { code: 'MAP_ITEMS_FAILED' },
      });
      expect(await end(b!, true)).toBe(false);
    });

    it('a map step whose job is missing when it is due fails without items', async () => {
      await define('no-job', [{ id: 'one', job: 'nowhere', map: { from: '$context', path: 'ids' } }]);
      const instance = await start('no-job', { ids: [1] });
      expect(await claim()).toEqual([]);
      expect(await stepOf(instance.id, 'one')).toMatchObject({
        state: 'failed',
        error: { code: 'STEP_JOB_MISSING' },
      });
    });

    it('cancelling an instance cancels its item runs and queues no next item', async () => {
      await define('cancel', [
        { id: 'one', handler: 'h', map: { from: '$context', path: 'ids', maxParallel: 2 } },
      ]);
      const instance = await start('cancel', { ids: [1, 2, 3, 4] });
      const [a] = await claim();
      now += 1000;
      await store.workflows.cancelInstance(instance.id, now);
      expect(await end(a!, true)).toBe(false);
      expect(await claim()).toEqual([]);
      expect(await stepOf(instance.id, 'one')).toMatchObject({ state: 'cancelled' });
    });

    it('merges a step`s $context into the instance context in its end: the steps queued after see it', async () => {
      await define('ctx', [
        { id: 'a', handler: 'h' },
        { id: 'b', handler: 'h', after: ['a'] },
        { id: 'fan', handler: 'h', after: ['b'], map: { from: '$context', path: 'ids' } },
      ]);
      const instance = await start('ctx', { day: 'd', keep: 1 });
      const [a] = await claim();
      await end(a!, true, { rows: 3, $context: { day: 'e', ids: [7, 8] } });
      const [b] = await claim();
      expect(wf(b!).context).toEqual({ day: 'e', keep: 1, ids: [7, 8] });
      expect(wf(b!).parents.a?.result).toEqual({ rows: 3, $context: { day: 'e', ids: [7, 8] } });
      await end(b!, true, { $context: { more: true } });
      const items = await claim();
      expect(items.map((r) => wf(r).item)).toEqual([7, 8]);
      expect(wf(items[0]!).context).toEqual({ day: 'e', keep: 1, ids: [7, 8], more: true });
      expect((await store.workflows.getInstance(instance.id))!.context).toEqual({
        day: 'e',
        keep: 1,
        ids: [7, 8],
        more: true,
      });
    });

    it('a context write that is not an object, or that would pass 64 KiB, fails its step and writes nothing', async () => {
      await define('bad-ctx', [
        { id: 'a', handler: 'h' },
        { id: 'b', handler: 'h' },
      ]);
      const instance = await start('bad-ctx', { day: 'd' });
      const [a, b] = await claim();
      await end(a!, true, { $context: [1, 2] });
      await end(b!, true, { $context: { big: 'x'.repeat(64 * 1024) } });
      const after = (await store.workflows.getInstance(instance.id))!;
      expect(after.context).toEqual({ day: 'd' });
      expect(after.state).toBe('failed');
      expect(after.steps.map((s) => [s.id, s.state, s.error?.code])).toEqual([
        ['a', 'failed', 'CONTEXT_INVALID'],
        ['b', 'failed', 'CONTEXT_TOO_LARGE'],
      ]);
    });

    it('a step whose parents` results weigh more than 1 MiB fails without a run', async () => {
      await define('heavy', [
        { id: 'one', handler: 'h', map: { from: '$context', path: 'ids', maxParallel: 20 } },
        { id: 'reduce', handler: 'h', after: ['one'] },
      ]);
      const instance = await start('heavy', { ids: Array.from({ length: 20 }, (_, i) => i) });
      for (const run of await claim()) await end(run, true, 'y'.repeat(60_000));
      expect(await claim()).toEqual([]);
      expect(await stepOf(instance.id, 'reduce')).toMatchObject({
        state: 'failed',
        runId: null,
        error: { code: 'PARENTS_TOO_LARGE' },
      });
    });

    it('two item runs of one map ending in two transactions at once queue each next item once, none skipped', async () => {
      await define('race', [
        { id: 'one', handler: 'h', map: { from: '$context', path: 'ids', maxParallel: 2 } },
        { id: 'reduce', handler: 'h', after: ['one'] },
      ]);
      const instance = await start('race', { ids: Array.from({ length: 10 }, (_, i) => i) });
      const indexes: number[] = [];
      let batch = await claim();
      while (wf(batch[0]!).step === 'one') {
        expect(batch).toHaveLength(2);
        indexes.push(...batch.map((r) => wf(r).index!));
        now += 1000;
        expect(await Promise.all(batch.map((run) => report(run, true, wf(run).index! + 100)))).toEqual([
          [true],
          [true],
        ]);
        batch = await claim();
      }
      expect(indexes.sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(wf(batch[0]!).parents.one?.result).toEqual([100, 101, 102, 103, 104, 105, 106, 107, 108, 109]);
      expect(await stepOf(instance.id, 'one')).toMatchObject({ state: 'succeeded' });
    });
  });
}
