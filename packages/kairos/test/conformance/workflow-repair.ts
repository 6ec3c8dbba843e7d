import type { JsonObject, WorkflowSpec } from '@kairos/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob } from '../../src/core/job.ts';
import { compileWorkflow } from '../../src/core/workflow.ts';
import type { ClaimedRun, Store } from '../../src/store/store.ts';
import { openWithWorker } from './workflow-setup.ts';

/**
 * The repairs of workflow instances in the store conformance suite (docs/workflows.md#repair):
 * pause and resume, retry of a failed or cancelled instance, re-run and skip of one step, each in
 * one transaction, and a late report of a run a repair replaced, which changes nothing. Run from
 * `describeWorkflowsConformance` on every dialect, unchanged.
 */
export function describeWorkflowRepairConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, workflow repairs: ${dialect}`, () => {
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

    const define = (name: string, steps: WorkflowSpec['steps']) =>
      store.workflows.put(compileWorkflow({ name, steps }), 'default', now);
    const h = (id: string, after: NonNullable<WorkflowSpec['steps'][number]['after']> = [], extra = {}) => ({
      id,
      handler: 'h',
      after,
      ...extra,
    });
    const tick = () => {
      now += 1000;
      return now;
    };
    const start = async (name: string) =>
      (await store.workflows.start('default', name, { context: {} }, now))!;
    const repair = (id: number, action: Parameters<Store['workflows']['repairInstance']>[1]) =>
      store.workflows.repairInstance(id, action, tick());

    /** Claims every queued run, by step id. */
    async function claim(): Promise<Map<string, ClaimedRun>> {
      const runs = await store.claimRuns('w1', 100, tick());
      return new Map(runs.map((run) => [(run.params.$workflow as { step: string }).step, run]));
    }

    /** Ends an attempt as the worker reports it; answers whether the report applied. */
    async function end(run: ClaimedRun, ok: boolean, result: JsonObject | null = null) {
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

    async function states(id: number): Promise<Record<string, string>> {
      const instance = await store.workflows.getInstance(id);
      return Object.fromEntries(instance!.steps.map((s) => [s.id, s.state]));
    }

    it('pauses: queued and running runs go on, what becomes ready is held; resume queues it once', async () => {
      await define('hold', [h('a'), h('b'), h('after-a', ['a']), h('after-b', ['b'])]);
      const instance = await start('hold');
      const roots = await claim();
      const paused = await repair(instance.id, { kind: 'pause' });
      expect(paused).toMatchObject({ state: 'paused', finishedAt: null });
      expect(await repair(instance.id, { kind: 'pause' })).toEqual(paused);
      // a's end still advances the instance: after-a is held (waiting, no run).
      expect(await end(roots.get('a')!, true, { n: 1 })).toBe(true);
      expect(await states(instance.id)).toEqual({
        a: 'succeeded',
        b: 'ready',
        'after-a': 'waiting',
        'after-b': 'waiting',
      });
      expect(await claim()).toEqual(new Map());
      const resumed = await repair(instance.id, { kind: 'resume' });
      expect(resumed).toMatchObject({ state: 'running' });
      expect(resumed!.steps.find((s) => s.id === 'after-a')).toMatchObject({ state: 'ready' });
      expect(await repair(instance.id, { kind: 'resume' })).toEqual(resumed);
      const held = await claim();
      expect([...held.keys()]).toEqual(['after-a']);
      expect((held.get('after-a')!.params.$workflow as { parents: JsonObject }).parents).toMatchObject({
        a: { state: 'succeeded', result: { n: 1 } },
      });
      // A second resume queues nothing more.
      expect(await claim()).toEqual(new Map());
      await end(held.get('after-a')!, true);
      await end(roots.get('b')!, true);
      await end((await claim()).get('after-b')!, true);
      const done = await store.workflows.getInstance(instance.id);
      expect(done).toMatchObject({ state: 'succeeded' });
      for (const kind of ['pause', 'resume'] as const) {
        await expect(repair(instance.id, { kind })).rejects.toMatchObject({
          code: 'WORKFLOW_INSTANCE_FINISHED',
        });
      }
      expect(await store.workflows.getInstance(instance.id)).toEqual(done);
      expect(await repair(999_999, { kind: 'pause' })).toBeNull();
    });

    it('a paused instance ends when its last run ends with nothing held, and a paused one can be cancelled', async () => {
      await define('last', [h('a'), h('b', [{ step: 'a', on: 'failure' }])]);
      const first = await start('last');
      const a = (await claim()).get('a')!;
      await repair(first.id, { kind: 'pause' });
      await end(a, true);
      expect(await store.workflows.getInstance(first.id)).toMatchObject({
        state: 'succeeded',
        finishedAt: now,
        steps: [{ state: 'succeeded' }, { state: 'skipped' }],
      });
      const second = await start('last');
      await repair(second.id, { kind: 'pause' });
      const cancelled = await store.workflows.cancelInstance(second.id, tick());
      expect(cancelled).toMatchObject({
        state: 'cancelled',
        steps: [{ state: 'cancelled' }, { state: 'cancelled' }],
      });
    });

    it('retries a failed instance from its failed step: succeeded steps keep their results and are not run again', async () => {
      await define('etl', [
        h('extract'),
        h('clean', ['extract']),
        h('stats', ['extract']),
        h('load', ['clean', 'stats']),
        h('page', [{ step: 'load', on: 'always' }]),
      ]);
      const instance = await start('etl');
      await end((await claim()).get('extract')!, true, { rows: 3 });
      const mid = await claim();
      await end(mid.get('clean')!, true);
      await end(mid.get('stats')!, false);
      const failed = await store.workflows.getInstance(instance.id);
      expect(failed).toMatchObject({ state: 'failed' });
      expect(await states(instance.id)).toEqual({
        extract: 'succeeded',
        clean: 'succeeded',
        stats: 'failed',
        load: 'skipped',
        page: 'skipped',
      });
      for (const kind of ['pause', 'resume'] as const) {
        await expect(repair(instance.id, { kind })).rejects.toMatchObject({
          code: 'WORKFLOW_INSTANCE_FINISHED',
        });
      }
      const retried = await repair(instance.id, { kind: 'retry' });
      expect(retried).toMatchObject({ state: 'running', finishedAt: null });
      expect(Object.fromEntries(retried!.steps.map((s) => [s.id, [s.state, s.runId === null]]))).toEqual({
        extract: ['succeeded', false],
        clean: ['succeeded', false],
        stats: ['ready', false],
        load: ['waiting', true],
        page: ['waiting', true],
      });
      await expect(repair(instance.id, { kind: 'retry' })).rejects.toMatchObject({
        code: 'WORKFLOW_INSTANCE_NOT_RETRYABLE',
      });
      const again = await claim();
      expect([...again.keys()]).toEqual(['stats']);
      const stats = again.get('stats')!;
      expect(stats.runId).not.toBe(failed!.steps[2]!.runId);
      expect((stats.params.$workflow as { parents: JsonObject }).parents).toMatchObject({
        extract: { state: 'succeeded', result: { rows: 3 } },
      });
      await end(stats, true);
      await end((await claim()).get('load')!, true);
      await end((await claim()).get('page')!, true);
      expect(await store.workflows.getInstance(instance.id)).toMatchObject({ state: 'succeeded' });
      await expect(repair(instance.id, { kind: 'retry' })).rejects.toMatchObject({
        code: 'WORKFLOW_INSTANCE_NOT_RETRYABLE',
      });
    });

    it('retries a cancelled instance: its cancelled steps run again', async () => {
      await define('stop', [h('a'), h('b', ['a'])]);
      const instance = await start('stop');
      const a = (await claim()).get('a')!;
      await end(a, true);
      await store.workflows.cancelInstance(instance.id, tick());
      const retried = await repair(instance.id, { kind: 'retry' });
      expect(retried).toMatchObject({
        state: 'running',
        steps: [{ state: 'succeeded' }, { state: 'ready' }],
      });
      await end((await claim()).get('b')!, true);
      expect(await store.workflows.getInstance(instance.id)).toMatchObject({ state: 'succeeded' });
    });

    it('re-runs one ended step and everything downstream; their replaced runs are cancelled and their late reports change nothing', async () => {
      await define('again', [
        h('a'),
        h('b', ['a']),
        h('c', ['b']),
        h('side', [{ step: 'a', on: 'always' }]),
        h('other'),
      ]);
      const instance = await start('again');
      const roots = await claim();
      await end(roots.get('other')!, true);
      await end(roots.get('a')!, true, { v: 1 });
      const second = await claim();
      await end(second.get('b')!, true, { v: 2 });
      const c = (await claim()).get('c')!;
      // c runs, side is queued: re-running b puts c back; a, side and other are not b's.
      await expect(repair(instance.id, { kind: 'rerun', step: 'c' })).rejects.toMatchObject({
        code: 'WORKFLOW_STEP_NOT_ENDED',
      });
      await expect(repair(instance.id, { kind: 'rerun', step: 'nope' })).rejects.toMatchObject({
        code: 'WORKFLOW_STEP_NOT_FOUND',
      });
      const rerun = await repair(instance.id, { kind: 'rerun', step: 'b' });
      expect(Object.fromEntries(rerun!.steps.map((s) => [s.id, s.state]))).toEqual({
        a: 'succeeded',
        b: 'ready',
        c: 'waiting',
        side: 'ready',
        other: 'succeeded',
      });
      expect((await store.getRun(c.runId))?.status).toBe('cancelled');
      expect(await end(c, true)).toBe(false);
      const next = await claim();
      expect([...next.keys()]).toEqual(['b']);
      const b = next.get('b')!;
      expect(b.runId).not.toBe(second.get('b')!.runId);
      expect((b.params.$workflow as { parents: JsonObject }).parents).toMatchObject({
        a: { state: 'succeeded', result: { v: 1 } },
      });
      await end(second.get('side')!, true);
      await end(b, true, { v: 3 });
      const c2 = (await claim()).get('c')!;
      expect((c2.params.$workflow as { parents: JsonObject }).parents).toMatchObject({
        b: { result: { v: 3 } },
      });
      await end(c2, true);
      expect(await store.workflows.getInstance(instance.id)).toMatchObject({ state: 'succeeded' });
      // A re-run of a step of a succeeded instance runs it again: its third run, with a key of its
      // own (the same key would insert no run).
      const third = await repair(instance.id, { kind: 'rerun', step: 'b' });
      expect(third).toMatchObject({ state: 'running', finishedAt: null });
      const b3 = (await claim()).get('b')!;
      expect(b3.runId).not.toBe(b.runId);
      // A late report of b's second run (ended already) is no news either.
      expect(await end(b, true)).toBe(false);
      await end(b3, false);
      expect(await store.workflows.getInstance(instance.id)).toMatchObject({
        state: 'failed',
        steps: [{ id: 'a' }, { id: 'b', state: 'failed' }, { id: 'c', state: 'skipped' }, {}, {}],
      });
    });

    it('re-running a step of a paused instance runs it: the instance runs again, held steps too', async () => {
      await define('paused', [h('a'), h('b', ['a']), h('x')]);
      const instance = await start('paused');
      const roots = await claim();
      await end(roots.get('x')!, true);
      await repair(instance.id, { kind: 'pause' });
      await end(roots.get('a')!, true);
      expect(await states(instance.id)).toEqual({ a: 'succeeded', b: 'waiting', x: 'succeeded' });
      const rerun = await repair(instance.id, { kind: 'rerun', step: 'x' });
      expect(rerun).toMatchObject({ state: 'running' });
      expect([...(await claim()).keys()].sort()).toEqual(['b', 'x']);
    });

    it('skips a ready step: its run is cancelled, it succeeds with no result, its children go on', async () => {
      await define('skip', [h('a'), h('b', ['a']), h('c', [{ step: 'a', on: 'failure' }])]);
      const instance = await start('skip');
      const a = (await claim()).get('a')!;
      const skipped = await repair(instance.id, { kind: 'skip', step: 'a' });
      expect(skipped!.steps).toMatchObject([
        { id: 'a', state: 'succeeded', runId: a.runId, skipped: true },
        { id: 'b', state: 'ready', runId: expect.any(Number) },
        { id: 'c', state: 'skipped', runId: null },
      ]);
      expect(skipped!.steps[1]!.skipped).toBeUndefined();
      expect((await store.getRun(a.runId))?.status).toBe('cancelled');
      // The worker's late report is fenced out and changes nothing.
      expect(await end(a, false)).toBe(false);
      await expect(repair(instance.id, { kind: 'skip', step: 'a' })).rejects.toMatchObject({
        code: 'WORKFLOW_STEP_NOT_SKIPPABLE',
      });
      const b = (await claim()).get('b')!;
      expect((b.params.$workflow as { parents: JsonObject }).parents).toEqual({
        a: { runId: a.runId, state: 'succeeded', result: null },
      });
      await end(b, true);
      const done = await store.workflows.getInstance(instance.id);
      expect(done).toMatchObject({ state: 'succeeded', steps: [{ skipped: true }, {}, {}] });
    });

    it('skipping a failed step of a failed instance revives what its failure skipped; skipping the last step ends it', async () => {
      await define('revive', [h('a'), h('b', ['a']), h('c', ['b']), h('w', ['a'])]);
      const instance = await start('revive');
      await end((await claim()).get('a')!, false);
      expect(await store.workflows.getInstance(instance.id)).toMatchObject({ state: 'failed' });
      const skipped = await repair(instance.id, { kind: 'skip', step: 'a' });
      expect(skipped).toMatchObject({ state: 'running', finishedAt: null });
      expect(await states(instance.id)).toEqual({ a: 'succeeded', b: 'ready', c: 'waiting', w: 'ready' });
      const revived = await claim();
      expect([...revived.keys()].sort()).toEqual(['b', 'w']);
      await end(revived.get('w')!, true);
      // Skipping a waiting step (c waits on b): it succeeds with no run.
      const c = await repair(instance.id, { kind: 'skip', step: 'c' });
      expect(c!.steps.find((s) => s.id === 'c')).toMatchObject({
        state: 'succeeded',
        skipped: true,
        runId: null,
      });
      const b = revived.get('b')!;
      // Skipping the last ready step ends the instance in the same write.
      const ended = await repair(instance.id, { kind: 'skip', step: 'b' });
      expect(ended).toMatchObject({ state: 'succeeded', finishedAt: now });
      expect(await end(b, true)).toBe(false);
      expect(await store.workflows.getInstance(instance.id)).toEqual(ended);
    });

    it('a re-run of a `job` step whose job is gone fails it at once, and a cancelled instance is not skipped into', async () => {
      await store.createJob(compileJob({ name: 'k', handler: 'j', trigger: { kind: 'manual' } }), null, now);
      await define('jobbed', [{ id: 'k', job: 'k' }, h('after', ['k'])]);
      const instance = await start('jobbed');
      await end((await claim()).get('k')!, true);
      await end((await claim()).get('after')!, true);
      expect(await store.deleteJob('k', undefined, tick())).toBe(true);
      const rerun = await repair(instance.id, { kind: 'rerun', step: 'k' });
      expect(rerun).toMatchObject({ state: 'failed', steps: [{ state: 'failed' }, { state: 'skipped' }] });
      await define('plain', [h('p'), h('q', ['p'])]);
      const other = await start('plain');
      await store.workflows.cancelInstance(other.id, tick());
      await expect(repair(other.id, { kind: 'skip', step: 'q' })).rejects.toMatchObject({
        code: 'WORKFLOW_INSTANCE_FINISHED',
      });
    });
  });
}
