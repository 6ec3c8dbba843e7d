import type { Json, JsonObject, Workflow, WorkflowInstance } from '@kairos/client';
import { KairosClient } from '@kairos/client';
import { type WorkflowStepParams, withContext, workflowOf } from '@kairos/worker';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../src/store/postgres/postgres-store.ts';
import { apiError, startTestNode, testWorker } from './helpers.ts';
import { waitFor } from './processes.ts';
import { testDatabaseUrl, testSchema } from './test-database.ts';

/** `/v1/workflows` and `/v1/workflow-instances` (docs/workflows.md), with real workers, on both dialects. */
describe.each(['sqlite', 'postgres'] as const)('workflows through the API, on %s', async (dialect) => {
  const store =
    dialect === 'postgres'
      ? new PostgresStore({ connectionString: testDatabaseUrl(), schema: testSchema() })
      : undefined;
  const { node, admin } = await startTestNode(store ? { store } : {});
  afterAll(async () => {
    await store?.close();
  });
  const put = (name: string, body: JsonObject) =>
    admin.request<Workflow>('PUT', `/v1/workflows/${name}`, body);
  const start = (name: string, body: JsonObject = {}) =>
    admin.request<WorkflowInstance>('POST', `/v1/workflows/${name}/instances`, body);
  const instance = (id: number) => admin.request<WorkflowInstance>('GET', `/v1/workflow-instances/${id}`);
  const ended = (id: number) =>
    waitFor(
      async () => {
        const got = await instance(id);
        return got.state === 'running' ? undefined : got;
      },
      30_000,
      `instance ${id} to end`,
    );

  it('creates, replaces, reads, lists and deletes a workflow; a broken graph is 422 WORKFLOW_INVALID', async () => {
    const created = await put('crud', { steps: [{ id: 'a', handler: 'h' }] });
    expect(created).toMatchObject({
      name: 'crud',
      namespace: 'default',
      version: 1,
      steps: [{ id: 'a', handler: 'h', group: 'default', after: [], join: 'all', params: {} }],
    });
    const replaced = await put('crud', {
      description: 'two steps',
      steps: [
        { id: 'a', handler: 'h', timeout: '30s' },
        { id: 'b', handler: 'h', after: ['a'] },
      ],
    });
    expect(replaced).toMatchObject({ version: 2, description: 'two steps' });
    expect(replaced.steps[0]).toMatchObject({ timeout: 30_000 });
    expect(replaced.steps[1]!.after).toEqual([{ step: 'a', on: 'success' }]);
    expect(await admin.request('GET', '/v1/workflows/crud')).toEqual(replaced);
    const page = await admin.request<{ items: Workflow[] }>('GET', '/v1/workflows');
    expect(page.items.map((w) => w.name)).toContain('crud');
    expect((await admin.listJobs()).items.map((j) => j.name)).not.toContain('workflow/default/crud');

    const cycle = await apiError(
      put('broken', {
        steps: [
          { id: 'a', handler: 'h', after: ['b'] },
          { id: 'b', handler: 'h', after: ['a'] },
        ],
      }),
    );
    expect(cycle).toMatchObject({ status: 422, code: 'WORKFLOW_INVALID' });
    expect((cycle.details as { problems: Array<{ kind: string }> }).problems.map((p) => p.kind)).toEqual([
      'cycle',
    ]);
    expect(await apiError(put('broken', { steps: [{ id: 'a', handler: 'h', job: 'j' }] }))).toMatchObject({
      status: 400,
      code: 'VALIDATION_FAILED',
    });
    expect(await apiError(admin.request('GET', '/v1/workflows/broken'))).toMatchObject({
      code: 'WORKFLOW_NOT_FOUND',
    });

    await admin.request('DELETE', '/v1/workflows/crud');
    expect(await apiError(admin.request('DELETE', '/v1/workflows/crud'))).toMatchObject({
      status: 404,
      code: 'WORKFLOW_NOT_FOUND',
    });
    expect(await apiError(start('crud'))).toMatchObject({ code: 'WORKFLOW_NOT_FOUND' });
  });

  it('runs a diamond on a real worker: each step gets its parents` results, the instance succeeds', async () => {
    const seen: Record<string, Json> = {};
    const worker = testWorker(node, `diamond-${dialect}`, { concurrency: 4 })
      .handle('extract', async (ctx) => {
        seen.extract = ctx.params.$workflow!;
        return { rows: [1, 2, 3] };
      })
      .handle('sum', async (ctx) => {
        const parents = (ctx.params.$workflow as { parents: Record<string, { result: { rows: number[] } }> })
          .parents;
        return { sum: parents.extract!.result.rows.reduce((a, b) => a + b, 0) };
      })
      .handle('count', async (ctx) => {
        const parents = (ctx.params.$workflow as { parents: Record<string, { result: { rows: number[] } }> })
          .parents;
        return { count: parents.extract!.result.rows.length };
      })
      .handle('report', async (ctx) => {
        seen.report = ctx.params as Json;
        const { parents } = ctx.params.$workflow as { parents: Record<string, { result: JsonObject }> };
        return { mean: (parents.sum!.result.sum as number) / (parents.count!.result.count as number) };
      });
    await worker.start();
    try {
      const group = `diamond-${dialect}`;
      await put('diamond', {
        steps: [
          { id: 'extract', handler: 'extract', group },
          { id: 'sum', handler: 'sum', group, after: ['extract'] },
          { id: 'count', handler: 'count', group, after: ['extract'] },
          { id: 'report', handler: 'report', group, after: ['sum', 'count'], params: { format: 'short' } },
        ],
      });
      const started = await start('diamond', { context: { day: '2026-12-05' }, idempotencyKey: 'day-1' });
      expect(started).toMatchObject({
        workflow: 'diamond',
        state: 'running',
        context: { day: '2026-12-05' },
      });
      expect((await start('diamond', { idempotencyKey: 'day-1' })).id).toBe(started.id);
      const done = await ended(started.id);
      expect(done.state).toBe('succeeded');
      expect(done.finishedAt).not.toBeNull();
      expect(done.steps.map((s) => [s.id, s.state])).toEqual([
        ['extract', 'succeeded'],
        ['sum', 'succeeded'],
        ['count', 'succeeded'],
        ['report', 'succeeded'],
      ]);
      expect(seen.extract).toEqual({
        instanceId: started.id,
        step: 'extract',
        context: { day: '2026-12-05' },
        parents: {},
      });
      expect(seen.report).toMatchObject({ format: 'short' });
      const report = await admin.getRun(done.steps[3]!.runId!);
      expect(report).toMatchObject({ cause: 'workflow', status: 'succeeded', result: { mean: 2 } });
      const list = await admin.request<{ items: WorkflowInstance[] }>(
        'GET',
        '/v1/workflows/diamond/instances',
      );
      expect(list.items.map((i) => i.id)).toEqual([started.id]);
    } finally {
      await worker.stop();
    }
  });

  it('runs list → map → reduce on a real worker: at most maxParallel items at once, the results in order; a context write reaches later steps', async () => {
    const group = `map-${dialect}`;
    let running = 0;
    let most = 0;
    let reduced: WorkflowStepParams | null = null;
    let reported: WorkflowStepParams | null = null;
    const calls: number[] = [];
    const worker = testWorker(node, group, { concurrency: 10 })
      .handle('list', async () =>
        withContext({ images: Array.from({ length: 20 }, (_, i) => `img-${i}`) }, { bucket: 'thumbs' }),
      )
      .handle('resize-one', async (ctx) => {
        running++;
        most = Math.max(most, running);
        try {
          // Held a moment, so that the worker (10 slots) has the chance to run more than 3 at once.
          await new Promise((resolve) => setTimeout(resolve, 25));
          const step = workflowOf<{ bucket: string }, string>(ctx)!;
          calls.push(step.index!);
          return { thumb: `${step.context.bucket}/${step.item}`, index: step.index! };
        } finally {
          running--;
        }
      })
      .handle('reduce', async (ctx) => {
        reduced = workflowOf(ctx);
        const results = reduced!.parents.resize!.result as Array<{ thumb: string }>;
        return withContext({ count: results.length }, { thumbs: results.length });
      })
      .handle('report', async (ctx) => {
        reported = workflowOf(ctx);
        return null;
      })
      .handle('nothing', async () => ({ rows: 0 }));
    await worker.start();
    try {
      const defined = await put('thumbnails', {
        steps: [
          { id: 'list', handler: 'list', group },
          {
            id: 'resize',
            handler: 'resize-one',
            group,
            after: ['list'],
            map: { from: 'list', path: 'images', maxParallel: 3 },
          },
          { id: 'reduce', handler: 'reduce', group, after: ['resize'] },
          { id: 'report', handler: 'report', group, after: ['reduce'] },
        ],
      });
      expect(defined.steps[1]!.map).toEqual({
        from: 'list',
        path: 'images',
        maxParallel: 3,
        maxItems: 10_000,
        tolerateFailures: 0,
      });
      const started = await start('thumbnails', { context: { day: '2026-12-05' } });
      const done = await ended(started.id);
      expect(done.steps.map((s) => [s.id, s.state, s.error ?? null])).toEqual([
        ['list', 'succeeded', null],
        ['resize', 'succeeded', null],
        ['reduce', 'succeeded', null],
        ['report', 'succeeded', null],
      ]);
      expect(done.state).toBe('succeeded');
      expect(most).toBeGreaterThan(0);
      expect(most).toBeLessThanOrEqual(3);
      expect(reduced!.parents.resize).toMatchObject({ runId: null, state: 'succeeded' });
      expect(reduced!.parents.resize!.result).toEqual(
        Array.from({ length: 20 }, (_, i) => ({ thumb: `thumbs/img-${i}`, index: i })),
      );
      expect(reduced!.context).toEqual({ day: '2026-12-05', bucket: 'thumbs' });
      expect(reported!.context).toEqual({ day: '2026-12-05', bucket: 'thumbs', thumbs: 20 });
      expect(done.context).toEqual({ day: '2026-12-05', bucket: 'thumbs', thumbs: 20 });
      // Each item had one run: 20 calls, each index once.
      expect(calls.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));

      // A map over something that is not a list fails its step with its reason.
      await put('not-a-list', {
        steps: [
          { id: 'list', handler: 'nothing', group },
          {
            id: 'resize',
            handler: 'resize-one',
            group,
            after: ['list'],
            map: { from: 'list', path: 'nope' },
          },
        ],
      });
      const failed = await ended((await start('not-a-list', { context: {} })).id);
      expect(failed.state).toBe('failed');
      expect(failed.steps[1]).toMatchObject({
        state: 'failed',
        runId: null,
        error: { code: 'MAP_NOT_A_LIST' },
      });
    } finally {
      await worker.stop();
    }
    const broken = await apiError(
      put('broken-map', { steps: [{ id: 'm', handler: 'h', map: { from: 'elsewhere' } }] }),
    );
    expect(broken).toMatchObject({ status: 422, code: 'WORKFLOW_INVALID' });
    expect(
      await apiError(
        put('broken-map', {
          steps: [{ id: 'm', handler: 'h', map: { from: '$context', maxItems: 10_001 } }],
        }),
      ),
    ).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
  });

  it('cancels a running instance; a second cancel is 409 WORKFLOW_INSTANCE_FINISHED', async () => {
    await put('idle', { steps: [{ id: 'wait', handler: 'nobody-serves-this', group: 'empty' }] });
    const started = await start('idle');
    const cancelled = await admin.request<WorkflowInstance>(
      'POST',
      `/v1/workflow-instances/${started.id}/cancel`,
    );
    expect(cancelled).toMatchObject({ state: 'cancelled', steps: [{ id: 'wait', state: 'cancelled' }] });
    expect((await admin.getRun(cancelled.steps[0]!.runId!)).status).toBe('cancelled');
    expect(
      await apiError(admin.request('POST', `/v1/workflow-instances/${started.id}/cancel`)),
    ).toMatchObject({ status: 409, code: 'WORKFLOW_INSTANCE_FINISHED' });
    expect(await apiError(instance(987_654))).toMatchObject({
      status: 404,
      code: 'WORKFLOW_INSTANCE_NOT_FOUND',
    });
    // An id past what the store counts is no instance either (PostgreSQL's bigint): never a 500.
    for (const id of ['99999999999999999999', '9007199254740993']) {
      for (const [method, suffix] of [
        ['GET', ''],
        ['POST', '/cancel'],
      ] as const) {
        const answer = await admin.request(method, `/v1/workflow-instances/${id}${suffix}`).then(
          () => 'ok',
          (error: { status?: number }) => error.status,
        );
        expect([400, 404], `${method} ${id}${suffix}`).toContain(answer);
      }
    }
  });

  it("keeps a workflow's own job out of the job routes (404 JOB_NOT_FOUND, nothing changed)", async () => {
    await put('hidden', { steps: [{ id: 'a', handler: 'h', group: 'empty' }] });
    const path = `/v1/jobs/${encodeURIComponent('workflow/default/hidden')}`;
    for (const [method, suffix] of [
      ['GET', ''],
      ['DELETE', ''],
      ['POST', '/trigger'],
      ['POST', '/pause'],
      ['PATCH', ''],
      ['GET', '/preview'],
    ] as const) {
      const answer = await admin.request(method, `${path}${suffix}`, method === 'GET' ? undefined : {}).then(
        () => 'ok',
        (error: { status?: number; code?: string }) => `${error.status} ${error.code}`,
      );
      expect(answer, `${method} ${suffix}`).toBe('404 JOB_NOT_FOUND');
    }
    const started = await start('hidden');
    expect(started.steps[0]).toMatchObject({ state: 'ready' });
    // A step run is the instance's: retrying it alone would queue a run of the workflow's own job
    // (handler `workflow`, tied to no instance).
    const retried = await admin.request('POST', `/v1/runs/${started.steps[0]!.runId}/retry`).then(
      () => 'ok',
      (error: { status?: number; code?: string }) => `${error.status} ${error.code}`,
    );
    expect(retried).toBe('409 WORKFLOW_STEP_RUN');
    await admin.request('DELETE', '/v1/workflows/hidden');
  });

  it('keeps workflows and instances in their namespace', async () => {
    await admin.createNamespace({ name: `wf-${dialect}`, description: '' });
    const other = new KairosClient({ url: node.url, token: 'admin-t', namespace: `wf-${dialect}` });
    await put('shared-name', { steps: [{ id: 'a', handler: 'h', group: 'empty' }] });
    const mine = await other.request<Workflow>('PUT', '/v1/workflows/shared-name', {
      steps: [{ id: 'b', handler: 'h', group: 'empty' }],
    });
    expect(mine).toMatchObject({ namespace: `wf-${dialect}`, version: 1 });
    const theirs = await start('shared-name');
    expect(await apiError(other.request('GET', `/v1/workflow-instances/${theirs.id}`))).toMatchObject({
      status: 404,
      code: 'WORKFLOW_INSTANCE_NOT_FOUND',
    });
    const page = await other.request<{ items: Workflow[] }>('GET', '/v1/workflows');
    expect(page.items.map((w) => [w.name, w.steps[0]!.id])).toEqual([['shared-name', 'b']]);
  });

  it("refuses a trigger's idempotency key of the form a step's run takes: the step would get no run", async () => {
    // Before: the trigger took `workflow:<instance>:<step>`, the step's run then hit the key's
    // unique index (ON CONFLICT DO NOTHING), and the step stayed `ready` without a run: the
    // instance never ended.
    await admin.request('POST', '/v1/jobs', {
      name: 'keyed-load',
      handler: 'h',
      trigger: { kind: 'manual' },
    });
    await put('keyed', {
      steps: [
        { id: 'gate', handler: 'no-worker-runs-this' },
        { id: 'load', job: 'keyed-load', after: ['gate'] },
      ],
    });
    const started = await start('keyed');
    const key = `workflow:${started.id}:load`;
    for (const request of [
      admin.request('POST', '/v1/jobs/keyed-load/trigger', { idempotencyKey: key }),
      admin.request('POST', '/v1/jobs/keyed-load/trigger', { runs: [{}, { idempotencyKey: key }] }),
    ]) {
      const refused = await apiError(request);
      expect(refused).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
    }
    expect((await admin.listRuns({ job: 'keyed-load' })).items).toEqual([]);
    await admin.request('POST', `/v1/workflow-instances/${started.id}/cancel`);
  });
});
