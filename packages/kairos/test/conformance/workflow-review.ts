import type { JsonObject, WorkflowSpec } from '@kairos/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob } from '../../src/core/job.ts';
import { compileWorkflow } from '../../src/core/workflow.ts';
import type { ClaimedRun, Store } from '../../src/store/store.ts';

/**
 * Defects found in review of the workflow store; each test states what docs/workflows.md says and
 * fails while the code does otherwise. Run on SQLite (sqlite/workflow-review.test.ts) and
 * PostgreSQL (postgres/workflow-review.test.ts).
 */
export function describeWorkflowReview(dialect: string, open: () => Promise<Store>): void {
  describe(`workflows, review findings: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);
    let now = T0;
    const tick = () => (now += 1000);

    const worker = (id: string) =>
      store.registerWorker(
        {
          id,
          name: id,
          group: 'default',
          handlers: ['h', 'j'],
          capacity: 100,
          labels: {},
          version: 't',
          host: id,
        },
        3_600_000,
        now,
      );

    beforeEach(async () => {
      store = await open();
      await store.migrate();
      now = T0;
      await worker('w1');
    });
    afterEach(async () => {
      await store.close();
    });

    const define = (name: string, steps: WorkflowSpec['steps']) =>
      store.workflows.put(compileWorkflow({ name, steps }), 'default', now);

    async function claim(workerId = 'w1'): Promise<ClaimedRun[]> {
      tick();
      return store.claimRuns(workerId, 100, now);
    }
    const stepOf = (run: ClaimedRun) => (run.params.$workflow as { step?: string } | undefined)?.step;

    async function end(run: ClaimedRun, ok: boolean, result: unknown = null, workerId = 'w1') {
      tick();
      const [applied] = await store.finishAttempts(
        [
          {
            runId: run.runId,
            attempt: run.attempt,
            group: 'default',
            attemptStatus: ok ? 'succeeded' : 'failed',
            error: ok ? null : { name: 'Error', message: 'boom' },
            result: ok ? (result as JsonObject) : null,
            run: ok ? { status: 'succeeded' } : { status: 'failed' },
            workerId,
          },
        ],
        now,
      );
      return applied;
    }

    it('an instance started after its workflow was deleted and put again gets a run for its job step', async () => {
      // SQLite reuses the highest rowid of a deleted row (workflow_instances.id has no AUTOINCREMENT);
      // the deleted instance's `job` step run stays (docs: "runs of job steps stay") and still holds
      // the key `workflow:<id>:k` on job `kept`. The new instance with the same id then inserts its
      // step run ON CONFLICT DO NOTHING, gets none, and waits for ever (PostgreSQL never reuses ids).
      await store.createJob(
        compileJob({ name: 'kept', handler: 'j', trigger: { kind: 'manual' } }),
        null,
        now,
      );
      await define('wf', [{ id: 'k', job: 'kept' }]);
      const first = await store.workflows.start('default', 'wf', { context: {} }, tick());
      const oldRun = first!.steps[0]!.runId;
      expect(oldRun).not.toBeNull();
      expect(await store.workflows.delete('default', 'wf')).toBe(true);
      await define('wf', [{ id: 'k', job: 'kept' }]);
      const second = await store.workflows.start('default', 'wf', { context: {} }, tick());
      expect(second!.steps[0]).toMatchObject({ id: 'k', state: 'ready' });
      expect(second!.steps[0]!.runId).not.toBeNull();
      expect(second!.steps[0]!.runId).not.toBe(oldRun);
    });

    it('a failed step stays failed for its children when its deleted run`s id is reused by a run that succeeded', async () => {
      // A `job` step's run is cancelled and deleted with its job (the step fails); the step row keeps
      // run_id. SQLite hands the id to the next run; readSteps LEFT JOINs it and stepsFrom takes that
      // unrelated run's status as the step's end: a `success` edge of a failed step is then met.
      await store.createJob(
        compileJob({ name: 'kept', handler: 'j', trigger: { kind: 'manual' } }),
        null,
        now,
      );
      const other = await store.createJob(
        compileJob({ name: 'other', handler: 'j', trigger: { kind: 'manual' } }),
        null,
        now,
      );
      await define('wf', [
        { id: 'g', handler: 'h' },
        { id: 'k', job: 'kept' },
        { id: 'x', handler: 'h', join: 'any', after: ['k', 'g'] },
      ]);
      const instance = await store.workflows.start('default', 'wf', { context: {} }, tick());
      const g = (await claim()).find((r) => stepOf(r) === 'g')!;
      const kRun = (await store.workflows.getInstance(instance!.id))!.steps[1]!.runId!;
      expect(await store.deleteJob('kept', undefined, tick())).toBe(true);
      expect((await store.workflows.getInstance(instance!.id))!.steps.map((s) => s.state)).toEqual([
        'ready',
        'failed',
        'waiting',
      ]);
      // Another job's run takes the freed id, and succeeds.
      const [reused] = await store.enqueueRuns(other.id, [{ params: {}, priority: 0 }], tick());
      // SQLite hands out the freed id again (PostgreSQL never does: there the test passes).
      if (dialect === 'sqlite') expect(reused).toBe(kRun);
      const [otherRun] = await claim();
      expect(await end(otherRun!, true, { unrelated: true })).toBe(true);
      // g fails: both of x's edges are dead (k failed, g failed), so x is skipped and the instance fails.
      expect(await end(g, false)).toBe(true);
      const after = await store.workflows.getInstance(instance!.id);
      expect(after!.steps.map((s) => [s.id, s.state])).toEqual([
        ['g', 'failed'],
        ['k', 'failed'],
        ['x', 'skipped'],
      ]);
      expect(after!.state).toBe('failed');
    });

    it('a map step over a broadcast job shards every item run, not only the first maxParallel', async () => {
      // writePlan shards the first item runs (shardNewRuns); settleMaps queues the next ones with
      // insertStepRuns alone, so they run on one worker only.
      await worker('w2');
      const bc = await store.createJob(
        compileJob({
          name: 'bc',
          handler: 'j',
          trigger: { kind: 'manual' },
          routing: { strategy: 'broadcast' },
        }),
        null,
        now,
      );
      await define('fan', [
        { id: 'list', handler: 'h' },
        { id: 'each', job: 'bc', after: ['list'], map: { from: 'list', maxParallel: 1 } },
      ]);
      await store.workflows.start('default', 'fan', { context: {} }, tick());
      const [list] = await claim('w1');
      expect(await end(list!, true, [10, 20])).toBe(true);
      const shardsOf = async (index: number) =>
        (await store.listRuns({ jobId: bc.id, limit: 100 })).filter(
          (r) => (r.params.$workflow as { index: number }).index === index,
        );
      expect(await shardsOf(0)).toHaveLength(2);
      for (const w of ['w1', 'w2'])
        for (const run of await claim(w)) expect(await end(run, true, 1, w)).toBe(true);
      expect(await shardsOf(1)).toHaveLength(2);
    });
    it('a step failed by its context write (its run succeeded) counts as failed when its children are decided later', async () => {
      // planInstance fails the step with CONTEXT_INVALID, but its run's status stays `succeeded` and no
      // result is kept on its row; stepsFrom (store/workflows.ts) then rebuilds its end from the run:
      // ok. A `join: any` child decided at a later end sees a `success` edge from a failed step met,
      // and a `failure` edge dead.
      await define('ctx', [
        { id: 'f', handler: 'h' },
        { id: 'g', handler: 'h' },
        { id: 'onSuccess', handler: 'h', join: 'any', after: ['f', 'g'] },
        { id: 'onFailure', handler: 'h', after: [{ step: 'f', on: 'failure' }, 'g'] },
      ]);
      const instance = await store.workflows.start('default', 'ctx', { context: {} }, tick());
      const runs = await claim();
      const f = runs.find((r) => stepOf(r) === 'f')!;
      const g = runs.find((r) => stepOf(r) === 'g')!;
      expect(await end(f, true, { $context: 5 })).toBe(true);
      expect((await store.workflows.getInstance(instance!.id))!.steps[0]).toMatchObject({
        state: 'failed',
        error: { code: 'CONTEXT_INVALID' },
      });
      expect(await end(g, true)).toBe(true);
      // g succeeded: onSuccess runs through g (join any), onFailure runs (f failed, g succeeded).
      expect(
        Object.fromEntries(
          (await store.workflows.getInstance(instance!.id))!.steps.map((s) => [s.id, s.state]),
        ),
      ).toEqual({
        f: 'failed',
        g: 'succeeded',
        onSuccess: 'ready',
        onFailure: 'ready',
      });
    });
    it('a `join: any` map step over a parent is refused at definition (it could be ready before its list)', async () => {
      // compileWorkflow accepted a map whose `from` is one parent of a `join: any` step; the step was
      // ready at its first met edge and startMap read the list of a parent still running: nothing,
      // MAP_NOT_A_LIST. Such a definition is now refused (map-source-unended, details.problems[].field).
      expect(() =>
        compileWorkflow({
          name: 'anymap',
          steps: [
            { id: 'list', handler: 'h' },
            { id: 'other', handler: 'h' },
            { id: 'each', handler: 'h', join: 'any', after: ['list', 'other'], map: { from: 'list' } },
          ],
        }),
      ).toThrow(
        expect.objectContaining({
          code: 'WORKFLOW_INVALID',
          details: {
            problems: [expect.objectContaining({ kind: 'map-source-unended', field: 'steps[2].map.from' })],
          },
        }),
      );
      // An `always` edge from the list's parent is refused too; `join: all` with `success` is not.
      expect(() =>
        compileWorkflow({
          name: 'alwaysmap',
          steps: [
            { id: 'list', handler: 'h' },
            { id: 'each', handler: 'h', after: [{ step: 'list', on: 'always' }], map: { from: 'list' } },
          ],
        }),
      ).toThrow(expect.objectContaining({ code: 'WORKFLOW_INVALID' }));
      await define('allmap', [
        { id: 'list', handler: 'h' },
        { id: 'other', handler: 'h' },
        { id: 'each', handler: 'h', after: ['list', 'other'], map: { from: 'list' } },
      ]);
    });
    it('a step whose run key another run holds fails with STEP_RUN_CONFLICT, and its instance goes on', async () => {
      // A run of the step's job holds `workflow:1:k` (the key of the first instance's step k): the
      // step run is not inserted. The step fails with a stable reason instead of staying ready without
      // a run for ever; its failure edge is followed.
      const kept = await store.createJob(
        compileJob({ name: 'kept', handler: 'j', trigger: { kind: 'manual' } }),
        null,
        now,
      );
      await store.enqueueRuns(kept.id, [{ params: {}, priority: 0, idempotencyKey: 'workflow:1:k' }], tick());
      await define('wf', [
        { id: 'k', job: 'kept' },
        { id: 'onFailure', handler: 'h', after: [{ step: 'k', on: 'failure' }] },
      ]);
      const instance = await store.workflows.start('default', 'wf', { context: {} }, tick());
      expect(instance!.id).toBe(1);
      expect(instance!.steps).toMatchObject([
        { id: 'k', state: 'failed', runId: null, error: { code: 'STEP_RUN_CONFLICT' } },
        { id: 'onFailure', state: 'ready' },
      ]);
    });
    it('a map step whose next item run key another run holds fails with STEP_RUN_CONFLICT', async () => {
      const kept = await store.createJob(
        compileJob({ name: 'kept', handler: 'j', trigger: { kind: 'manual' } }),
        null,
        now,
      );
      await store.enqueueRuns(
        kept.id,
        [{ params: {}, priority: 0, idempotencyKey: 'workflow:1:each:1' }],
        tick(),
      );
      await define('fan', [
        { id: 'list', handler: 'h' },
        { id: 'each', job: 'kept', after: ['list'], map: { from: 'list', maxParallel: 1 } },
      ]);
      const instance = await store.workflows.start('default', 'fan', { context: {} }, tick());
      expect(instance!.id).toBe(1);
      const list = (await claim()).find((r) => stepOf(r) === 'list')!;
      expect(await end(list, true, [10, 20])).toBe(true);
      const first = (await claim()).find((r) => stepOf(r) === 'each')!;
      expect(await end(first, true, 1)).toBe(true);
      const after = await store.workflows.getInstance(instance!.id);
      expect(after!.steps[1]).toMatchObject({
        id: 'each',
        state: 'failed',
        error: { code: 'STEP_RUN_CONFLICT' },
      });
      expect(after!.state).toBe('failed');
    });
    it('skipping a ready `job` step of a broadcast job cancels every shard of its run, not only the first', async () => {
      // planRepair cancels `row.run_id` of a replaced ready step: the first shard. The other shards
      // (broadcast_run_id = the first) keep running on their workers.
      await worker('w2');
      const bc = await store.createJob(
        compileJob({
          name: 'bc',
          handler: 'j',
          trigger: { kind: 'manual' },
          routing: { strategy: 'broadcast' },
        }),
        null,
        now,
      );
      await define('skipbc', [{ id: 'fan', job: 'bc' }]);
      const instance = await store.workflows.start('default', 'skipbc', { context: {} }, tick());
      expect(await store.listRuns({ jobId: bc.id, limit: 10 })).toHaveLength(2);
      await store.workflows.repairInstance(instance!.id, { kind: 'skip', step: 'fan' }, tick());
      const runs = await store.listRuns({ jobId: bc.id, limit: 10 });
      expect(runs.map((r) => r.status)).toEqual(['cancelled', 'cancelled']);
    });
  });
}
