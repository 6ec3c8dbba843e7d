import type { WorkflowInstance } from '@kairos/client';
import { KairosClient } from '@kairos/client';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../src/store/postgres/postgres-store.ts';
import { apiError, startTestNode, testWorker } from './helpers.ts';
import { waitFor } from './processes.ts';
import { testDatabaseUrl, testSchema } from './test-database.ts';

/**
 * The items of a map step through the API and the client (docs/workflows.md#the-items-of-a-map-step):
 * pages in index order with their cursor, a state filter, results on request, counts by state, and
 * every bad input a 4xx with its code, on both dialects.
 */
describe.each(['sqlite', 'postgres'] as const)(
  'the items of a map step through the API, on %s',
  async (dialect) => {
    const store =
      dialect === 'postgres'
        ? new PostgresStore({ connectionString: testDatabaseUrl(), schema: testSchema() })
        : undefined;
    const { node, admin } = await startTestNode(store ? { store } : {});
    afterAll(async () => {
      await store?.close();
    });
    const group = `items-${dialect}`;
    const worker = testWorker(node, group).handle('one', async (ctx) => {
      const item = (ctx.params.$workflow as { item: number }).item;
      if (item % 3 === 0) throw new Error(`no ${item}`);
      return { doubled: item * 2 };
    });
    await worker.start();
    afterAll(() => worker.stop());

    await admin.putWorkflow({
      name: 'fan',
      steps: [
        {
          id: 'one',
          handler: 'one',
          group,
          retry: { maxAttempts: 1 },
          map: { from: '$context', path: 'items', maxParallel: 4, tolerateFailures: 10 },
        },
        { id: 'after', handler: 'one', group, after: [{ step: 'one', on: 'always' }] },
      ],
    });
    const started = await admin.startWorkflow('fan', { context: { items: [1, 2, 3, 4, 5, 6, 7] } });
    const ended: WorkflowInstance = await waitFor(
      async () => {
        const got = await admin.getWorkflowInstance(started.id);
        return got.steps[0]!.state === 'succeeded' ? got : undefined;
      },
      30_000,
      'the map step ended',
    );

    it('pages the items in index order with counts by state; the cursor goes on from the last one', async () => {
      const first = await admin.listWorkflowMapItems(ended.id, 'one', { limit: 3 });
      expect(first.counts).toEqual({
        waiting: 0,
        ready: 0,
        succeeded: 5,
        failed: 2,
        skipped: 0,
        cancelled: 0,
      });
      expect(first.items.map((i) => [i.index, i.state])).toEqual([
        [0, 'succeeded'],
        [1, 'succeeded'],
        [2, 'failed'],
      ]);
      expect(first.items[0]).toEqual({
        index: 0,
        state: 'succeeded',
        runId: expect.any(Number),
        attempts: 1,
        resultBytes: Buffer.byteLength(JSON.stringify({ doubled: 2 })),
        error: null,
      });
      expect(first.items[2]).toMatchObject({ resultBytes: null, error: { message: 'no 3' } });
      expect(first.nextCursor).toBe('3');
      const second = await admin.listWorkflowMapItems(ended.id, 'one', {
        limit: 3,
        cursor: first.nextCursor!,
      });
      expect(second.items.map((i) => i.index)).toEqual([3, 4, 5]);
      const last = await admin.listWorkflowMapItems(ended.id, 'one', {
        limit: 3,
        cursor: second.nextCursor!,
      });
      expect(last.items.map((i) => i.index)).toEqual([6]);
      expect(last.nextCursor).toBeNull();
      // Each item's run is the run it names.
      const run = await admin.getRun(first.items[1]!.runId!);
      expect(run.result).toEqual({ doubled: 4 });
    });

    it('filters by state and carries the results when asked', async () => {
      const failed = await admin.listWorkflowMapItems(ended.id, 'one', { state: 'failed' });
      expect(failed.items.map((i) => i.index)).toEqual([2, 5]);
      const withResults = await admin.listWorkflowMapItems(ended.id, 'one', {
        state: 'succeeded',
        include: 'result',
      });
      expect(withResults.items.map((i) => i.result)).toEqual([
        { doubled: 2 },
        { doubled: 4 },
        { doubled: 8 },
        { doubled: 10 },
        { doubled: 14 },
      ]);
      expect((await admin.listWorkflowMapItems(ended.id, 'one')).items[0]).not.toHaveProperty('result');
    });

    it('answers bad input with its code, never a 500, and another namespace’s instance as not found', async () => {
      const path = `/v1/workflow-instances/${ended.id}/steps/one/items`;
      for (const query of [
        'limit=0',
        'limit=501',
        'limit=abc',
        'limit=Infinity',
        'state=gone',
        'include=params',
        'other=1',
      ]) {
        expect(await apiError(admin.request('GET', `${path}?${query}`)), query).toMatchObject({
          status: 400,
          code: 'VALIDATION_FAILED',
        });
      }
      for (const cursor of ['-1', '0', 'x', '1e3', '99999999999999999999']) {
        expect(await apiError(admin.request('GET', `${path}?cursor=${cursor}`)), cursor).toMatchObject({
          status: 400,
          code: 'INVALID_CURSOR',
        });
      }
      expect(await apiError(admin.listWorkflowMapItems(ended.id, 'after'))).toMatchObject({
        status: 409,
        code: 'WORKFLOW_STEP_NOT_MAP',
      });
      expect(await apiError(admin.listWorkflowMapItems(ended.id, 'nope'))).toMatchObject({
        status: 404,
        code: 'WORKFLOW_STEP_NOT_FOUND',
      });
      expect(await apiError(admin.listWorkflowMapItems(ended.id, 'x'.repeat(65)))).toMatchObject({
        status: 400,
        code: 'VALIDATION_FAILED',
      });
      expect(await apiError(admin.listWorkflowMapItems(99_999_999, 'one'))).toMatchObject({
        status: 404,
        code: 'WORKFLOW_INSTANCE_NOT_FOUND',
      });
      await admin.createNamespace({ name: `other-${dialect}` });
      const other = new KairosClient({ url: node.url, token: 'admin-t', namespace: `other-${dialect}` });
      expect(await apiError(other.listWorkflowMapItems(ended.id, 'one'))).toMatchObject({
        status: 404,
        code: 'WORKFLOW_INSTANCE_NOT_FOUND',
      });
      // A cursor past the last item is an empty page.
      expect(await admin.listWorkflowMapItems(ended.id, 'one', { cursor: '500' })).toMatchObject({
        items: [],
        nextCursor: null,
      });
    });
  },
);
