import type { JsonObject, WorkflowInstance } from '@kairos/client';
import { KairosClient } from '@kairos/client';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../src/store/postgres/postgres-store.ts';
import { apiError, startTestNode, testWorker } from './helpers.ts';
import { waitFor } from './processes.ts';
import { testDatabaseUrl, testSchema } from './test-database.ts';

/**
 * The repairs of workflow instances through the API (docs/workflows.md#repair): pause, resume,
 * retry, re-run and skip a step, with real workers, on both dialects; each audited, each kept in
 * the instance's namespace.
 */
describe.each(['sqlite', 'postgres'] as const)('workflow repairs through the API, on %s', async (dialect) => {
  const store =
    dialect === 'postgres'
      ? new PostgresStore({ connectionString: testDatabaseUrl(), schema: testSchema() })
      : undefined;
  const { node, admin } = await startTestNode(store ? { store } : {});
  afterAll(async () => {
    await store?.close();
  });
  const put = (name: string, body: JsonObject) => admin.request('PUT', `/v1/workflows/${name}`, body);
  const start = (name: string) =>
    admin.request<WorkflowInstance>('POST', `/v1/workflows/${name}/instances`, {});
  const get = (id: number) => admin.request<WorkflowInstance>('GET', `/v1/workflow-instances/${id}`);
  const act = (id: number, action: string) =>
    admin.request<WorkflowInstance>('POST', `/v1/workflow-instances/${id}/${action}`);
  const states = (instance: WorkflowInstance) =>
    Object.fromEntries(instance.steps.map((s) => [s.id, s.state]));
  const until = (id: number, what: string, check: (i: WorkflowInstance) => boolean) =>
    waitFor(
      async () => {
        const got = await get(id);
        return check(got) ? got : undefined;
      },
      30_000,
      `instance ${id}: ${what}`,
    );

  it('pauses an instance (a running step ends, its child is held), resumes it, and audits both', async () => {
    const group = `pause-${dialect}`;
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const worker = testWorker(node, group)
      .handle('slow', async () => {
        await released;
        return { done: true };
      })
      .handle('next', async (ctx) => ({
        parents: Object.keys((ctx.params.$workflow as { parents: JsonObject }).parents),
      }));
    await worker.start();
    try {
      await put('pausing', {
        steps: [
          { id: 'a', handler: 'slow', group },
          { id: 'b', handler: 'next', group, after: ['a'] },
        ],
      });
      const started = await start('pausing');
      await waitFor(
        async () => (await admin.getRun(started.steps[0]!.runId!)).status === 'running',
        30_000,
        'a running',
      );
      const paused = await act(started.id, 'pause');
      expect(paused).toMatchObject({ state: 'paused', finishedAt: null });
      expect(await act(started.id, 'pause')).toEqual(paused);
      release();
      // a's end advances the paused instance: b is held, without a run.
      const held = await until(started.id, 'a ended', (i) => i.steps[0]!.state === 'succeeded');
      expect(held).toMatchObject({
        state: 'paused',
        steps: [{}, { id: 'b', state: 'waiting', runId: null }],
      });
      const resumed = await act(started.id, 'resume');
      expect(resumed.state).toBe('running');
      expect(resumed.steps[1]).toMatchObject({ state: 'ready', runId: expect.any(Number) });
      const done = await until(started.id, 'end', (i) => i.state !== 'running');
      expect(done).toMatchObject({ state: 'succeeded' });
      expect(await admin.getRun(done.steps[1]!.runId!)).toMatchObject({ result: { parents: ['a'] } });
      for (const action of ['pause', 'resume']) {
        expect(await apiError(act(started.id, action))).toMatchObject({
          status: 409,
          code: 'WORKFLOW_INSTANCE_FINISHED',
        });
      }
      const audit = (await admin.listAudit({ limit: 50 })).items.filter(
        (e) => e.target === `workflow-instances:${started.id}`,
      );
      expect(audit.map((e) => e.action).sort()).toEqual([
        'workflow-instances.pause',
        'workflow-instances.pause',
        'workflow-instances.resume',
      ]);
    } finally {
      await worker.stop();
    }
  });

  it('retries a failed instance from its failed step; re-runs one step and what follows it', async () => {
    const group = `retry-${dialect}`;
    const calls: Record<string, number> = {};
    let failLoad = true;
    const worker = testWorker(node, group, { concurrency: 4 })
      .handle('extract', async () => {
        calls.extract = (calls.extract ?? 0) + 1;
        return { rows: calls.extract };
      })
      .handle('load', async (ctx) => {
        calls.load = (calls.load ?? 0) + 1;
        if (failLoad) throw new Error('warehouse down');
        return {
          loaded: (ctx.params.$workflow as { parents: { extract: { result: JsonObject } } }).parents.extract
            .result,
        };
      })
      .handle('report', async () => {
        calls.report = (calls.report ?? 0) + 1;
        return null;
      });
    await worker.start();
    try {
      await put('etl', {
        steps: [
          { id: 'extract', handler: 'extract', group },
          { id: 'load', handler: 'load', group, after: ['extract'], retry: { maxAttempts: 1 } },
          { id: 'report', handler: 'report', group, after: ['load'] },
        ],
      });
      const started = await start('etl');
      const failed = await until(started.id, 'failed', (i) => i.state === 'failed');
      expect(states(failed)).toEqual({ extract: 'succeeded', load: 'failed', report: 'skipped' });
      expect(
        await apiError(act(started.id, 'steps/load/skip').then(() => act(started.id, 'retry'))),
      ).toMatchObject({
        status: 409,
        code: 'WORKFLOW_INSTANCE_NOT_RETRYABLE',
      });
      // The skip above ended load as a success with no result: report ran and the instance succeeded.
      const skipped = await until(started.id, 'skipped through', (i) => i.state === 'succeeded');
      expect(skipped.steps[1]).toMatchObject({ state: 'succeeded', skipped: true });
      expect(calls).toEqual({ extract: 1, load: 1, report: 1 });

      // Another instance fails at load; this time a retry, with the warehouse back.
      const second = await start('etl');
      await until(second.id, 'failed', (i) => i.state === 'failed');
      failLoad = false;
      const retried = await act(second.id, 'retry');
      expect(retried).toMatchObject({ state: 'running', finishedAt: null });
      expect(states(retried)).toEqual({ extract: 'succeeded', load: 'ready', report: 'waiting' });
      const done = await until(second.id, 'end', (i) => i.state !== 'running');
      expect(done.state).toBe('succeeded');
      expect(calls).toEqual({ extract: 2, load: 3, report: 2 });
      expect(await admin.getRun(done.steps[1]!.runId!)).toMatchObject({ result: { loaded: { rows: 2 } } });

      // Re-running extract runs it and everything after it again, with new runs.
      const rerun = await act(second.id, 'steps/extract/rerun');
      expect(rerun.state).toBe('running');
      expect(rerun.steps[0]!.runId).not.toBe(done.steps[0]!.runId);
      expect(states(rerun)).toEqual({ extract: 'ready', load: 'waiting', report: 'waiting' });
      const again = await until(second.id, 'end again', (i) => i.state !== 'running');
      expect(again.state).toBe('succeeded');
      expect(calls).toEqual({ extract: 3, load: 4, report: 3 });
      expect(await admin.getRun(again.steps[1]!.runId!)).toMatchObject({ result: { loaded: { rows: 3 } } });

      expect(await apiError(act(second.id, 'steps/nope/rerun'))).toMatchObject({
        status: 404,
        code: 'WORKFLOW_STEP_NOT_FOUND',
      });
      expect(await apiError(act(second.id, 'steps/extract/skip'))).toMatchObject({
        status: 409,
        code: 'WORKFLOW_STEP_NOT_SKIPPABLE',
      });
      const audit = (await admin.listAudit({ limit: 100 })).items.filter(
        (e) => e.target === `workflow-instances:${second.id}`,
      );
      expect(audit.map((e) => [e.action, e.details])).toEqual([
        ['workflow-instances.steps.rerun', { step: 'extract' }],
        ['workflow-instances.retry', {}],
      ]);
    } finally {
      await worker.stop();
    }
  });

  it('skips a step nobody serves: its run is cancelled, its child runs; a running step is not re-run', async () => {
    const group = `skip-${dialect}`;
    const worker = testWorker(node, group).handle(
      'after',
      async (ctx) => (ctx.params.$workflow as JsonObject).parents as JsonObject,
    );
    await worker.start();
    try {
      await put('stuck', {
        steps: [
          { id: 'stuck', handler: 'nobody-serves-this', group: `empty-${dialect}` },
          { id: 'after', handler: 'after', group, after: ['stuck'] },
        ],
      });
      const started = await start('stuck');
      expect(await apiError(act(started.id, 'steps/stuck/rerun'))).toMatchObject({
        status: 409,
        code: 'WORKFLOW_STEP_NOT_ENDED',
      });
      const skipped = await act(started.id, 'steps/stuck/skip');
      expect(skipped.steps[0]).toMatchObject({
        id: 'stuck',
        state: 'succeeded',
        runId: started.steps[0]!.runId,
        skipped: true,
      });
      expect(await admin.getRun(started.steps[0]!.runId!)).toMatchObject({ status: 'cancelled' });
      const done = await until(started.id, 'end', (i) => i.state !== 'running');
      expect(done.state).toBe('succeeded');
      expect(await admin.getRun(done.steps[1]!.runId!)).toMatchObject({
        result: { stuck: { runId: started.steps[0]!.runId, state: 'succeeded', result: null } },
      });

      // Another namespace sees no such instance, and cannot repair it.
      await admin.createNamespace({ name: `repair-${dialect}`, description: '' });
      const other = new KairosClient({ url: node.url, token: 'admin-t', namespace: `repair-${dialect}` });
      for (const action of ['pause', 'resume', 'retry', 'steps/after/rerun', 'steps/after/skip']) {
        expect(
          await apiError(other.request('POST', `/v1/workflow-instances/${started.id}/${action}`)),
        ).toMatchObject({
          status: 404,
          code: 'WORKFLOW_INSTANCE_NOT_FOUND',
        });
      }
      expect(await get(started.id)).toEqual(done);
      for (const action of ['pause', 'retry', 'steps/a/skip']) {
        expect(await apiError(act(987_654, action))).toMatchObject({
          status: 404,
          code: 'WORKFLOW_INSTANCE_NOT_FOUND',
        });
      }
      const long = await apiError(act(started.id, `steps/${'x'.repeat(65)}/skip`));
      expect(long).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
    } finally {
      await worker.stop();
    }
  });
});
