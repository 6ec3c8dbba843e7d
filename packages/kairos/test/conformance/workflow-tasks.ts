import type { JsonObject, WorkflowSpec } from '@kairos/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob } from '../../src/core/job.ts';
import { compileResources } from '../../src/core/resources.ts';
import { compileWorkflow } from '../../src/core/workflow.ts';
import type { AttemptOutcome, ClaimedRun, Store } from '../../src/store/store.ts';

/**
 * Workflow task steps (docs/workflows.md#steps) in the store conformance suite: a step that names
 * a shell command or an HTTP call queues a run of the built-in kind's handler that carries its task
 * (`runs.task`); every claim path (the fast one, the planner's, fire ahead) delivers it as it
 * delivers a job's task, to a worker that registered the kind only; its end advances the instance
 * as any step's. Run by `describeWorkflowsConformance` on every dialect, unchanged.
 */
export function describeWorkflowTasksConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, workflow task steps: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);
    let now = T0;

    beforeEach(async () => {
      store = await open();
      await store.migrate();
      now = T0;
    });
    afterEach(async () => {
      await store.close();
    });

    async function worker(id: string, handlers: string[], resources: Record<string, number> | null = null) {
      await store.registerWorker(
        {
          id,
          name: id,
          group: 'default',
          handlers,
          capacity: 100,
          labels: {},
          version: 't',
          host: 'h',
          ...(resources ? { resources: compileResources(resources, 'resources', { zero: true }) } : {}),
        },
        3_600_000,
        T0,
      );
    }

    const define = (name: string, steps: WorkflowSpec['steps']) =>
      store.workflows.put(compileWorkflow({ name, steps }), 'default', now);

    const byStep = (runs: readonly ClaimedRun[]) =>
      new Map(runs.map((run) => [(run.params.$workflow as { step: string }).step, run]));

    async function poll(workerId: string): Promise<Map<string, ClaimedRun>> {
      now += 1000;
      return byStep((await store.dispatchForPoll(workerId, 100, now, 0)).runs);
    }

    async function end(run: ClaimedRun, workerId: string, outcome: Partial<AttemptOutcome> = {}) {
      now += 1000;
      const [applied] = await store.finishAttempts(
        [
          {
            runId: run.runId,
            attempt: run.attempt,
            group: 'default',
            attemptStatus: 'succeeded',
            error: null,
            result: null,
            run: { status: 'succeeded' },
            workerId,
            ...outcome,
          } as AttemptOutcome,
        ],
        now,
      );
      return applied;
    }

    const SHELL = { kind: 'shell' as const, command: 'sh', args: ['-c', 'echo hi'], env: { WHO: 'kairos' } };
    const HTTP = {
      kind: 'http' as const,
      method: 'POST' as const,
      url: 'http://127.0.0.1:9/hook',
      body: '{}',
    };

    it('queues a run of the kind`s handler carrying its task; only a worker with the kind claims it; a child gets its result', async () => {
      await worker('plain', ['collect']);
      await worker('tasks', ['collect', 'kairos:shell', 'kairos:http']);
      // A job step whose job has a task of its own: its run takes the job's task, as before.
      await store.createJob(
        compileJob({
          name: 'hook',
          trigger: { kind: 'manual' },
          task: { kind: 'http', url: 'http://127.0.0.1:9/job' },
        }),
        null,
        now,
      );
      await define('tasks', [
        { id: 'dump', task: SHELL, params: { note: 'n' }, retry: { maxAttempts: 2 }, timeout: '1m' },
        { id: 'ping', task: HTTP },
        { id: 'hook', job: 'hook' },
        { id: 'collect', handler: 'collect', after: ['dump', 'ping', 'hook'] },
      ]);
      const instance = (await store.workflows.start('default', 'tasks', { context: {} }, now))!;
      expect((await poll('plain')).size).toBe(0);
      const runs = await poll('tasks');
      expect([...runs.keys()].sort()).toEqual(['dump', 'hook', 'ping']);
      expect(runs.get('dump')).toMatchObject({
        jobName: 'workflow/default/tasks',
        handler: 'kairos:shell',
        task: { ...SHELL, cwd: null },
        params: { note: 'n', $workflow: { instanceId: instance.id, step: 'dump' } },
        timeoutMs: 60_000,
        maxAttempts: 2,
      });
      expect(runs.get('ping')).toMatchObject({
        handler: 'kairos:http',
        task: { ...HTTP, headers: {}, timeoutMs: 30_000, expectStatus: [] },
      });
      expect(runs.get('hook')).toMatchObject({
        jobName: 'hook',
        handler: 'kairos:http',
        task: { kind: 'http', url: 'http://127.0.0.1:9/job' },
      });
      await end(runs.get('dump')!, 'tasks', { result: { exitCode: 0 } });
      await end(runs.get('ping')!, 'tasks', { result: { status: 200, body: { ok: true } } });
      await end(runs.get('hook')!, 'tasks', { result: { status: 204, body: null } });
      const collect = (await poll('plain')).get('collect')!;
      expect(collect.task ?? null).toBeNull();
      expect((collect.params.$workflow as { parents: JsonObject }).parents).toEqual({
        dump: { runId: runs.get('dump')!.runId, state: 'succeeded', result: { exitCode: 0 } },
        ping: {
          runId: runs.get('ping')!.runId,
          state: 'succeeded',
          result: { status: 200, body: { ok: true } },
        },
        hook: { runId: runs.get('hook')!.runId, state: 'succeeded', result: { status: 204, body: null } },
      });
      await end(collect, 'plain', { result: { done: true } });
      expect(await store.workflows.getInstance(instance.id)).toMatchObject({ state: 'succeeded' });
    });

    it('a retried task step`s run keeps its task, claimed ahead of its instant too; its failure takes the failure edge', async () => {
      await worker('tasks', ['kairos:shell', 'page']);
      await define('retried', [
        { id: 'dump', task: SHELL, retry: { maxAttempts: 2 } },
        { id: 'page', handler: 'page', after: [{ step: 'dump', on: 'failure' }] },
      ]);
      const instance = (await store.workflows.start('default', 'retried', { context: {} }, now))!;
      const first = (await poll('tasks')).get('dump')!;
      const retryAt = now + 60_000;
      await end(first, 'tasks', {
        attemptStatus: 'failed',
        error: { name: 'CommandFailed', message: 'sh failed (exit code 1)' },
        run: { status: 'queued', availableAt: retryAt },
      });
      const ahead = await store.dispatchAhead('tasks', 10, retryAt, now + 1);
      expect(ahead).toHaveLength(1);
      expect(ahead[0]).toMatchObject({
        runId: first.runId,
        attempt: 2,
        handler: 'kairos:shell',
        task: { ...SHELL, cwd: null },
        startAt: retryAt,
      });
      now = retryAt;
      await end(ahead[0]!, 'tasks', {
        attemptStatus: 'failed',
        error: { name: 'CommandFailed', message: 'sh failed (exit code 1)' },
        run: { status: 'failed' },
      });
      expect((await store.workflows.getInstance(instance.id))!.steps.map((s) => [s.id, s.state])).toEqual([
        ['dump', 'failed'],
        ['page', 'ready'],
      ]);
    });

    it('the planner`s claim (a task step that requests resources) delivers the task as well', async () => {
      await worker('small', ['kairos:http'], { cpu: 1 });
      await worker('big', ['kairos:http'], { cpu: 4 });
      await define('heavy', [{ id: 'ping', task: HTTP, resources: { cpu: 2 } }]);
      await store.workflows.start('default', 'heavy', { context: {} }, now);
      expect((await poll('small')).size).toBe(0);
      expect((await poll('big')).get('ping')).toMatchObject({
        handler: 'kairos:http',
        task: { kind: 'http', url: HTTP.url },
      });
    });
  });
}
