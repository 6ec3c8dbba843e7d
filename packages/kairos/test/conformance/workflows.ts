import type { JsonObject, WorkflowSpec } from '@kairos/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob } from '../../src/core/job.ts';
import { checkJobCountAndRate, NO_QUOTAS } from '../../src/core/quotas.ts';
import type { Trigger } from '../../src/core/trigger.ts';
import { compileWorkflow } from '../../src/core/workflow.ts';
import type { ClaimedRun, Store } from '../../src/store/store.ts';
import { describeWorkflowRepairConformance } from './workflow-repair.ts';
import { openWithWorker } from './workflow-setup.ts';
import { describeWorkflowTasksConformance } from './workflow-tasks.ts';

/**
 * The workflows part of the store conformance suite (docs/workflows.md): definitions, instances,
 * and how an instance advances in the transaction that ends a step run: joins, conditions, skips,
 * end states, cancellation, and two ends racing on one instance. Run by `describeStoreConformance`
 * on every dialect, unchanged.
 */
export function describeWorkflowsConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, workflows: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);
    let now = T0;

    beforeEach(async () => {
      now = T0;
      store = await openWithWorker(open, T0, { handlers: ['h', 'j'] });
    });
    afterEach(async () => {
      await store.close();
    });

    const define = (name: string, steps: WorkflowSpec['steps'], namespace = 'default') =>
      store.workflows.put(compileWorkflow({ name, steps }), namespace, now);
    const handler = (
      id: string,
      after: NonNullable<WorkflowSpec['steps'][number]['after']> = [],
      extra = {},
    ) => ({
      id,
      handler: 'h',
      after,
      ...extra,
    });

    const tick = () => {
      now += 1000;
      return now;
    };

    /** Claims every queued run, by step id. */
    async function claim(): Promise<Map<string, ClaimedRun>> {
      now += 1000;
      const runs = await store.claimRuns('w1', 100, now);
      return new Map(runs.map((run) => [(run.params.$workflow as { step: string }).step, run]));
    }

    /** Ends an attempt as the worker reports it: success with a result, or failure (retried when `retry`). */
    async function end(run: ClaimedRun, ok: boolean, result: JsonObject | null = null, retry = false) {
      now += 1000;
      const [applied] = await store.finishAttempts(
        [
          {
            runId: run.runId,
            attempt: run.attempt,
            group: 'default',
            attemptStatus: ok ? 'succeeded' : 'failed',
            error: ok ? null : { name: 'Error', message: 'boom' },
            result: ok ? result : null,
            run: ok
              ? { status: 'succeeded' }
              : retry
                ? { status: 'queued', availableAt: now }
                : { status: 'failed' },
            workerId: 'w1',
          },
        ],
        now,
      );
      return applied;
    }

    async function states(instanceId: number): Promise<Record<string, string>> {
      const instance = await store.workflows.getInstance(instanceId);
      return Object.fromEntries(instance!.steps.map((s) => [s.id, s.state]));
    }

    it('keeps definitions by namespace and name, bumps the version on replace, and hides their own job', async () => {
      await store.namespaces.create({ name: 'blue', description: '' }, T0);
      const first = await define('etl', [handler('a')]);
      expect(first).toMatchObject({
        created: true,
        workflow: { name: 'etl', version: 1, namespace: 'default' },
      });
      const replaced = await define('etl', [handler('a'), handler('b', ['a'])]);
      expect(replaced).toMatchObject({ created: false, workflow: { version: 2 } });
      expect(replaced.workflow.steps.map((s) => s.id)).toEqual(['a', 'b']);
      const blue = await define('etl', [handler('x')], 'blue');
      expect(blue.created).toBe(true);
      expect((await store.workflows.get('blue', 'etl'))?.steps.map((s) => s.id)).toEqual(['x']);
      expect((await store.workflows.list({ namespace: 'default', limit: 10 })).map((w) => w.name)).toEqual([
        'etl',
      ]);
      expect(await store.workflows.list({ limit: 10 })).toHaveLength(2);
      expect(await store.listJobs({ limit: 100 })).toEqual([]);
      expect(await store.workflows.delete('blue', 'etl')).toBe(true);
      expect(await store.workflows.delete('blue', 'etl')).toBe(false);
      expect(await store.workflows.get('blue', 'etl')).toBeNull();
      expect(await store.workflows.get('default', 'etl')).not.toBeNull();
      // Two creates of one name at once: one creates it, the other replaces it.
      const both = await Promise.all([define('twice', [handler('a')]), define('twice', [handler('b')])]);
      expect(both.map((p) => p.created).sort()).toEqual([false, true]);
      expect((await store.workflows.get('default', 'twice'))?.version).toBe(2);
    });

    it('runs a diamond with join all, passing parents` results and the context to each step', async () => {
      await define('diamond', [
        handler('a'),
        handler('b', ['a']),
        handler('c', ['a']),
        handler('d', ['b', 'c'], { params: { keep: true } }),
      ]);
      const instance = await store.workflows.start(
        'default',
        'diamond',
        { context: { day: '2026-01-01' } },
        now,
      );
      expect(instance).toMatchObject({ state: 'running', version: 1, context: { day: '2026-01-01' } });
      expect(await states(instance!.id)).toEqual({ a: 'ready', b: 'waiting', c: 'waiting', d: 'waiting' });
      let runs = await claim();
      expect([...runs.keys()]).toEqual(['a']);
      const a = runs.get('a')!;
      expect(a.params.$workflow).toEqual({
        instanceId: instance!.id,
        step: 'a',
        context: { day: '2026-01-01' },
        parents: {},
      });
      expect(await store.getRun(a.runId)).toMatchObject({
        cause: 'workflow',
        handler: 'h',
        group: 'default',
      });
      await end(a, true, { rows: 3 });
      runs = await claim();
      expect([...runs.keys()].sort()).toEqual(['b', 'c']);
      expect((runs.get('b')!.params.$workflow as JsonObject).parents).toEqual({
        a: { runId: a.runId, state: 'succeeded', result: { rows: 3 } },
      });
      await end(runs.get('b')!, true, { b: 1 });
      expect(await claim()).toEqual(new Map());
      expect(await states(instance!.id)).toMatchObject({ b: 'succeeded', c: 'ready', d: 'waiting' });
      await end(runs.get('c')!, true, { c: 2 });
      runs = await claim();
      const d = runs.get('d')!;
      expect(d.params).toMatchObject({ keep: true });
      expect(Object.keys((d.params.$workflow as { parents: JsonObject }).parents).sort()).toEqual(['b', 'c']);
      expect((await store.workflows.getInstance(instance!.id))?.state).toBe('running');
      await end(d, true);
      const done = await store.workflows.getInstance(instance!.id);
      expect(done).toMatchObject({ state: 'succeeded', finishedAt: now });
      expect(done!.steps.every((s) => s.state === 'succeeded' && s.runId !== null)).toBe(true);
    });

    it('runs a join any once, at the first parent that ends as its edge asks', async () => {
      await define('any', [handler('a'), handler('b'), { ...handler('c', ['a', 'b']), join: 'any' }]);
      const instance = await store.workflows.start('default', 'any', { context: {} }, now);
      const roots = await claim();
      await end(roots.get('a')!, true);
      const c = await claim();
      expect([...c.keys()]).toEqual(['c']);
      await end(roots.get('b')!, true);
      expect(await claim()).toEqual(new Map());
      await end(c.get('c')!, true);
      expect(await store.workflows.getInstance(instance!.id)).toMatchObject({ state: 'succeeded' });
    });

    it('follows a failure edge, skips the success branch, and succeeds when the failure is handled', async () => {
      await define('fail', [
        handler('a'),
        handler('next', ['a']),
        handler('after-next', ['next']),
        handler('cleanup', [{ step: 'a', on: 'failure' }]),
      ]);
      const instance = await store.workflows.start('default', 'fail', { context: {} }, now);
      await end((await claim()).get('a')!, false);
      expect(await states(instance!.id)).toEqual({
        a: 'failed',
        next: 'skipped',
        'after-next': 'skipped',
        cleanup: 'ready',
      });
      const cleanup = (await claim()).get('cleanup')!;
      expect((cleanup.params.$workflow as { parents: JsonObject }).parents).toEqual({
        a: { runId: expect.any(Number), state: 'failed', result: null },
      });
      await end(cleanup, true);
      expect(await store.workflows.getInstance(instance!.id)).toMatchObject({ state: 'succeeded' });
    });

    it('fails an instance whose failed step has no failure edge; a retried step advances only at its last attempt', async () => {
      await define('retry', [handler('a', [], { retry: { maxAttempts: 2, delay: 0 } }), handler('b', ['a'])]);
      const instance = await store.workflows.start('default', 'retry', { context: {} }, now);
      const first = (await claim()).get('a')!;
      expect(await end(first, false, null, true)).toBe(true);
      expect(await states(instance!.id)).toEqual({ a: 'ready', b: 'waiting' });
      const second = (await claim()).get('a')!;
      expect(second).toMatchObject({ runId: first.runId, attempt: 2 });
      await end(second, false);
      expect(await store.workflows.getInstance(instance!.id)).toMatchObject({
        state: 'failed',
        steps: [
          { id: 'a', state: 'failed', runId: first.runId },
          { id: 'b', state: 'skipped', runId: null },
        ],
      });
    });

    it('reads each step with its run`s first start, final end and attempts; none when the run is gone', async () => {
      await define('timed', [handler('a', [], { retry: { maxAttempts: 3, delay: 0 } }), handler('b', ['a'])]);
      const instance = await store.workflows.start('default', 'timed', { context: {} }, now);
      expect(instance!.steps).toEqual([
        {
          id: 'a',
          state: 'ready',
          runId: expect.any(Number),
          startedAt: null,
          finishedAt: null,
          attempts: 0,
          error: null,
        },
        {
          id: 'b',
          state: 'waiting',
          runId: null,
          startedAt: null,
          finishedAt: null,
          attempts: 0,
          error: null,
        },
      ]);
      const first = (await claim()).get('a')!;
      const firstStart = now;
      await end(first, false, null, true);
      const second = (await claim()).get('a')!;
      // Running its second attempt: the run started with its first, and has not ended.
      expect((await store.workflows.getInstance(instance!.id))!.steps[0]).toMatchObject({
        startedAt: firstStart,
        finishedAt: null,
        attempts: 2,
      });
      await end(second, true, { ok: 1 });
      const aEnd = now;
      const b = (await claim()).get('b')!;
      const bStart = now;
      await end(b, true);
      const done = await store.workflows.getInstance(instance!.id);
      expect(done).toMatchObject({ state: 'succeeded' });
      expect(done!.steps).toEqual([
        {
          id: 'a',
          state: 'succeeded',
          runId: first.runId,
          startedAt: firstStart,
          finishedAt: aEnd,
          attempts: 2,
          error: null,
        },
        {
          id: 'b',
          state: 'succeeded',
          runId: b.runId,
          startedAt: bStart,
          finishedAt: now,
          attempts: 1,
          error: null,
        },
      ]);
      const [listed] = await store.workflows.listInstances(instance!.workflowId, undefined, 10);
      expect(listed!.steps).toEqual(done!.steps);
      // Retention deleted a's run: its step keeps its state and run id, without times.
      expect(await store.deleteFinishedRuns([first.runId])).toBe(1);
      expect((await store.workflows.getInstance(instance!.id))!.steps[0]).toEqual({
        id: 'a',
        state: 'succeeded',
        runId: first.runId,
        startedAt: null,
        finishedAt: null,
        attempts: 0,
        error: null,
      });
    });

    it('follows a predicate edge on the parent`s result and skips the other branch transitively', async () => {
      await define('branch', [
        handler('size'),
        handler('big', [{ step: 'size', on: { path: 'kind', equals: 'big' } }]),
        handler('small', [{ step: 'size', on: { path: 'kind', equals: 'small' } }]),
        handler('after-small', ['small']),
        { ...handler('report', ['big', 'small']), join: 'any' },
      ]);
      const instance = await store.workflows.start('default', 'branch', { context: {} }, now);
      await end((await claim()).get('size')!, true, { kind: 'big' });
      expect(await states(instance!.id)).toMatchObject({
        big: 'ready',
        small: 'skipped',
        'after-small': 'skipped',
      });
      await end((await claim()).get('big')!, true);
      await end((await claim()).get('report')!, true);
      expect(await store.workflows.getInstance(instance!.id)).toMatchObject({ state: 'succeeded' });
    });

    it('runs a step that names a job with that job`s handler and params under the step`s; a missing job fails its step', async () => {
      await store.createJob(
        compileJob({
          name: 'load',
          handler: 'j',
          params: { table: 't', mode: 'full' },
          trigger: { kind: 'manual' },
        }),
        null,
        now,
      );
      await define('jobs', [
        { id: 'load', job: 'load', params: { mode: 'delta' } },
        { id: 'gone', job: 'no-such-job', after: ['load'] },
        handler('after-gone', [{ step: 'gone', on: 'failure' }]),
      ]);
      const instance = await store.workflows.start('default', 'jobs', { context: {} }, now);
      const load = (await claim()).get('load')!;
      expect(load).toMatchObject({ jobName: 'load', handler: 'j', params: { table: 't', mode: 'delta' } });
      await end(load, true);
      expect(await states(instance!.id)).toMatchObject({ gone: 'failed', 'after-gone': 'ready' });
      await end((await claim()).get('after-gone')!, true);
      expect(await store.workflows.getInstance(instance!.id)).toMatchObject({ state: 'succeeded' });
    });

    it('answers the same instance for a second start with the same idempotency key', async () => {
      await define('once', [handler('a')]);
      const first = await store.workflows.start('default', 'once', { context: {}, idempotencyKey: 'k' }, now);
      const again = await store.workflows.start(
        'default',
        'once',
        { context: { x: 1 }, idempotencyKey: 'k' },
        now,
      );
      expect(again?.id).toBe(first?.id);
      const other = await store.workflows.start('default', 'once', { context: {} }, now);
      const workflow = await store.workflows.get('default', 'once');
      const listed = await store.workflows.listInstances(workflow!.id, undefined, 10);
      expect(listed.map((i) => [i.id, i.steps.length])).toEqual([
        [other!.id, 1],
        [first!.id, 1],
      ]);
      expect((await store.workflows.listInstances(workflow!.id, other!.id, 10)).map((i) => i.id)).toEqual([
        first!.id,
      ]);
      expect(await store.claimRuns('w1', 100, tick())).toHaveLength(2);
      expect(await store.workflows.start('default', 'nope', { context: {} }, now)).toBeNull();
    });

    it('cancels an instance: its step runs, its waiting steps, and nothing runs after', async () => {
      await define('stop', [handler('a'), handler('b'), handler('c', ['a', 'b'])]);
      const instance = await store.workflows.start('default', 'stop', { context: {} }, now);
      const runs = await store.claimRuns('w1', 1, tick());
      expect(runs).toHaveLength(1);
      const cancelled = await store.workflows.cancelInstance(instance!.id, tick());
      expect(cancelled).toMatchObject({ state: 'cancelled', finishedAt: now });
      expect(Object.fromEntries(cancelled!.steps.map((s) => [s.id, s.state]))).toEqual({
        a: 'cancelled',
        b: 'cancelled',
        c: 'cancelled',
      });
      for (const step of cancelled!.steps.filter((s) => s.runId !== null)) {
        expect((await store.getRun(step.runId!))?.status).toBe('cancelled');
      }
      // The worker's late report is fenced out; nothing is queued.
      expect(await end(runs[0]!, true)).toBe(false);
      expect(await claim()).toEqual(new Map());
      await expect(store.workflows.cancelInstance(instance!.id, now)).rejects.toMatchObject({
        code: 'WORKFLOW_INSTANCE_FINISHED',
      });
      expect(await store.workflows.cancelInstance(999_999, now)).toBeNull();
    });

    it('a cancelled step run fails its step (cancelling one run, not the instance)', async () => {
      await define('one', [handler('a'), handler('b', [{ step: 'a', on: 'always' }])]);
      const instance = await store.workflows.start('default', 'one', { context: {} }, now);
      const a = await store.workflows.getInstance(instance!.id);
      await store.cancelRun(a!.steps[0]!.runId!, tick());
      expect(await states(instance!.id)).toEqual({ a: 'failed', b: 'ready' });
    });

    it('deleting a workflow deletes its instances and handler steps` runs; a job step`s run then ends alone', async () => {
      const job = await store.createJob(
        compileJob({ name: 'kept', handler: 'j', trigger: { kind: 'manual' } }),
        null,
        now,
      );
      await define('gone', [handler('a'), { id: 'k', job: 'kept' }, handler('after', ['a', 'k'])]);
      const instance = await store.workflows.start('default', 'gone', { context: {} }, now);
      const runs = await claim();
      expect(await store.workflows.delete('default', 'gone')).toBe(true);
      expect(await store.workflows.getInstance(instance!.id)).toBeNull();
      expect(await store.getRun(runs.get('a')!.runId)).toBeNull();
      expect(await end(runs.get('a')!, true)).toBe(false);
      expect(await end(runs.get('k')!, true)).toBe(true);
      expect((await store.getRun(runs.get('k')!.runId))?.status).toBe('succeeded');
      expect(await store.listRuns({ jobId: job.id, limit: 10 })).toHaveLength(1);
      expect(await claim()).toEqual(new Map());
    });

    it('deleting a job that a step is running fails that step: its instance advances, nothing waits', async () => {
      for (const claimed of [false, true]) {
        const name = claimed ? 'busy-running' : 'busy-queued';
        await store.createJob(compileJob({ name, handler: 'j', trigger: { kind: 'manual' } }), null, now);
        await define(`uses-${name}`, [
          { id: 'k', job: name },
          handler('cleanup', [{ step: 'k', on: 'failure' }]),
          handler('next', ['k']),
          // The same job again, due when k fails: it is gone too, so this step fails without a run.
          { id: 'again', job: name, after: [{ step: 'k', on: 'failure' }] },
          handler('after-again', [{ step: 'again', on: 'failure' }]),
        ]);
        const instance = await store.workflows.start('default', `uses-${name}`, { context: {} }, now);
        const k = claimed ? (await claim()).get('k')! : null;
        expect(await store.deleteJob(name, undefined, tick())).toBe(true);
        expect(await states(instance!.id)).toEqual({
          k: 'failed',
          cleanup: 'ready',
          next: 'skipped',
          again: 'failed',
          'after-again': 'ready',
        });
        if (k) expect(await end(k, true)).toBe(false);
        const rest = await claim();
        expect([...rest.keys()].sort()).toEqual(['after-again', 'cleanup']);
        for (const run of rest.values()) await end(run, true);
        expect(await store.workflows.getInstance(instance!.id)).toMatchObject({ state: 'succeeded' });
      }
    });

    it('retention leaves a parent’s run while its instance runs; the parent decides its edges and hands its result on', async () => {
      await define('pruned', [
        handler('a'),
        handler('b'),
        handler('big', [{ step: 'a', on: { path: 'kind', equals: 'big' } }, 'b']),
      ]);
      const instance = await store.workflows.start('default', 'pruned', { context: {} }, now);
      const roots = await claim();
      await end(roots.get('a')!, true, { kind: 'big' });
      // The retention of a's job (a job step's job may keep its runs for minutes) would delete a's
      // run while the instance still waits on b: the delete leaves every step run of an unfinished
      // instance (docs/retention.md#workflow-instances). A run gone all the same (a step's result on
      // its row) is read by workflow-retention.ts and the planner's property test.
      expect(await store.deleteFinishedRuns([roots.get('a')!.runId])).toBe(0);
      await end(roots.get('b')!, true, { n: 2 });
      expect(await states(instance!.id)).toMatchObject({ big: 'ready' });
      const big = (await claim()).get('big')!;
      expect((big.params.$workflow as { parents: JsonObject }).parents).toMatchObject({
        a: { state: 'succeeded', result: { kind: 'big' } },
        b: { state: 'succeeded', result: { n: 2 } },
      });
    });

    it('a start judges maxQueuedRuns in its write: a refusal writes nothing, a key already used answers its instance', async () => {
      await define('flood', [handler('a'), handler('b'), handler('c', ['a'])]);
      const first = await store.workflows.start(
        'default',
        'flood',
        { context: {}, idempotencyKey: 'k' },
        now,
        3,
      );
      expect(first?.steps.filter((s) => s.state === 'ready')).toHaveLength(2);
      await expect(store.workflows.start('default', 'flood', { context: {} }, now, 3)).rejects.toMatchObject({
        code: 'QUOTA_EXCEEDED',
        quota: 'maxQueuedRuns',
      });
      const workflow = await store.workflows.get('default', 'flood');
      expect((await store.workflows.listInstances(workflow!.id, undefined, 10)).map((i) => i.id)).toEqual([
        first!.id,
      ]);
      expect(await store.listRuns({ status: 'queued', limit: 10 })).toHaveLength(2);
      const again = await store.workflows.start(
        'default',
        'flood',
        { context: {}, idempotencyKey: 'k' },
        now,
        1,
      );
      expect(again?.id).toBe(first?.id);
      expect((await store.workflows.start('default', 'flood', { context: {} }, now, null))?.state).toBe(
        'running',
      );
    });

    it('creating a workflow judges maxJobs in its write (its own job is one); a replace adds none', async () => {
      await store.createJob(
        compileJob({ name: 'one', handler: 'j', trigger: { kind: 'manual' } }),
        null,
        now,
      );
      const quotas = { ...NO_QUOTAS, maxJobs: 2 };
      const check = (triggers: readonly Trigger[]) =>
        checkJobCountAndRate(quotas, { kind: 'manual' }, triggers, true);
      const wf = (name: string) => compileWorkflow({ name, steps: [handler('a')] });
      expect((await store.workflows.put(wf('first'), 'default', now, check)).created).toBe(true);
      await expect(store.workflows.put(wf('second'), 'default', now, check)).rejects.toMatchObject({
        code: 'QUOTA_EXCEEDED',
        quota: 'maxJobs',
      });
      expect(await store.workflows.get('default', 'second')).toBeNull();
      expect((await store.workflows.put(wf('first'), 'default', now, check)).created).toBe(false);
    });

    it('queues a join`s step once when its parents` runs end in two transactions at once', async () => {
      await define('race', [handler('a'), handler('b'), handler('c', ['a', 'b'])]);
      for (let i = 0; i < 5; i++) {
        const instance = await store.workflows.start('default', 'race', { context: {} }, now);
        const roots = await claim();
        now += 1000;
        const report = (run: ClaimedRun) =>
          store.finishAttempts(
            [
              {
                runId: run.runId,
                attempt: run.attempt,
                group: 'default',
                attemptStatus: 'succeeded',
                error: null,
                result: null,
                run: { status: 'succeeded' },
                workerId: 'w1',
              },
            ],
            now,
          );
        expect(await Promise.all([report(roots.get('a')!), report(roots.get('b')!)])).toEqual([
          [true],
          [true],
        ]);
        const next = await store.claimRuns('w1', 100, tick());
        expect(next.map((r) => (r.params.$workflow as { step: string }).step)).toEqual(['c']);
        expect(await states(instance!.id)).toEqual({ a: 'succeeded', b: 'succeeded', c: 'ready' });
      }
    });
  });
  describeWorkflowRepairConformance(dialect, open);
  describeWorkflowTasksConformance(dialect, open);
}
