import pg from 'pg';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  dropTestSchemas,
  succeededOutcome,
  testDatabaseUrl,
  testSchema,
} from '../../../test/test-database.ts';
import { compileJob } from '../../core/job.ts';
import { compileWorkflow } from '../../core/workflow.ts';
import type { AttemptOutcome } from '../store.ts';
import { PostgresStore } from './postgres-store.ts';

afterAll(dropTestSchemas);

// Workflow instances on PostgreSQL against a second connection that holds an instance's lock, so
// that two transactions meet in a chosen order (store/postgres/workflows.ts).
describe('PostgreSQL workflow instances, concurrently', () => {
  const T0 = Date.UTC(2026, 0, 1);
  let store: PostgresStore;
  let other: pg.Client;
  let probe: pg.Client;

  beforeEach(async () => {
    const schema = testSchema();
    store = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
    await store.migrate();
    other = new pg.Client({ connectionString: testDatabaseUrl(), options: `-c search_path=${schema}` });
    probe = new pg.Client({ connectionString: testDatabaseUrl() });
    await Promise.all([other.connect(), probe.connect()]);
    await store.registerWorker(
      {
        id: 'w',
        name: 'w',
        group: 'default',
        handlers: ['h'],
        capacity: 50,
        labels: {},
        version: 't',
        host: 'h',
      },
      3_600_000,
      T0,
    );
  });
  afterEach(async () => {
    await other.query('ROLLBACK').catch(() => undefined);
    await Promise.all([other.end(), probe.end()]);
    await store.close();
  });

  const succeeded = (runId: number, now: number): AttemptOutcome => succeededOutcome(runId, now, 'w');

  /** Resolves once `depth` sessions wait in a chain behind `other` (1: one waits on it; 2: one more on that one). */
  async function waitingBehindOther(depth: 1 | 2): Promise<void> {
    const pid = (await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    for (;;) {
      const { rows } = await probe.query<{ first: number; second: number }>(
        `WITH first AS (SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)))
         SELECT (SELECT count(*) FROM first)::int AS first,
           (SELECT count(*) FROM pg_stat_activity a
            WHERE EXISTS (SELECT 1 FROM first f WHERE f.pid = ANY(pg_blocking_pids(a.pid))))::int AS second`,
        [pid],
      );
      if ((depth === 1 ? rows[0]!.first : rows[0]!.second) > 0) return;
      await probe.query('SELECT pg_sleep(0.005)');
    }
  }

  /** Resolves once `count` sessions wait on `other`, directly or behind one that does. */
  async function waitersOnOther(count: number): Promise<void> {
    const pid = (await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    for (;;) {
      const { rows } = await probe.query<{ n: number }>(
        `WITH RECURSIVE behind(pid) AS (
           SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))
           UNION
           SELECT a.pid FROM pg_stat_activity a JOIN behind b ON b.pid = ANY(pg_blocking_pids(a.pid)))
         SELECT count(*)::int AS n FROM behind`,
        [pid],
      );
      if (rows[0]!.n >= count) return;
      await probe.query('SELECT pg_sleep(0.005)');
    }
  }

  async function chain(name: string) {
    await store.workflows.put(
      compileWorkflow({
        name,
        steps: [
          { id: 'a', handler: 'h' },
          { id: 'b', handler: 'h', after: ['a'] },
        ],
      }),
      'default',
      T0,
    );
    const instance = (await store.workflows.start('default', name, { context: {} }, T0))!;
    const [a] = await store.claimRuns('w', 10, T0 + 1);
    return { instance, a: a! };
  }

  it('a skip racing its step’s own end: whichever is first, the step ends once and its child is queued once', async () => {
    for (const first of ['end', 'skip'] as const) {
      const { instance, a } = await chain(`skip-after-${first}`);
      // `other` holds the instance. The first of the two waits on it, holding a's run; the second
      // waits on a's run (the end updates it, the skip locks it first).
      await other.query('BEGIN');
      await other.query('SELECT 1 FROM workflow_instances WHERE id = $1 FOR UPDATE', [instance.id]);
      const settle = <T>(p: Promise<T>) =>
        p.then(
          (value) => ({ value }),
          (error: { code?: string }) => ({ error: error.code }),
        );
      const ending = () => settle(store.finishAttempts([succeeded(a.runId, T0 + 2)], T0 + 2));
      const skipping = () =>
        settle(store.workflows.repairInstance(instance.id, { kind: 'skip', step: 'a' }, T0 + 3));
      const one = first === 'end' ? ending() : skipping();
      await waitingBehindOther(1);
      const two = first === 'end' ? skipping() : ending();
      await waitingBehindOther(2);
      await other.query('COMMIT');
      const [end, skip] = first === 'end' ? [await one, await two] : [await two, await one];
      const after = (await store.workflows.getInstance(instance.id))!;
      if (first === 'end') {
        expect(end).toEqual({ value: [true] });
        expect(skip).toEqual({ error: 'WORKFLOW_STEP_NOT_SKIPPABLE' });
        expect(after.steps[0]).toMatchObject({ id: 'a', state: 'succeeded', runId: a.runId });
        expect(after.steps[0]!.skipped).toBeUndefined();
        expect(await store.getRun(a.runId)).toMatchObject({ status: 'succeeded' });
      } else {
        expect(skip).toMatchObject({ value: { state: 'running' } });
        expect(end).toEqual({ value: [false] });
        expect(after.steps[0]).toMatchObject({ id: 'a', state: 'succeeded', runId: a.runId, skipped: true });
        expect(await store.getRun(a.runId)).toMatchObject({ status: 'cancelled' });
      }
      const next = await store.claimRuns('w', 10, T0 + 4);
      expect(next.map((r) => [r.runId, (r.params.$workflow as { step: string }).step])).toEqual([
        [after.steps[1]!.runId, 'b'],
      ]);
      await store.finishAttempts([succeeded(next[0]!.runId, T0 + 5)], T0 + 5);
      expect(await store.workflows.getInstance(instance.id)).toMatchObject({ state: 'succeeded' });
    }
  });

  it('a resume racing the end of a paused instance’s step: the held child is queued once, in either order', async () => {
    for (const first of ['end', 'resume'] as const) {
      const { instance, a } = await chain(`resume-after-${first}`);
      await store.workflows.repairInstance(instance.id, { kind: 'pause' }, T0 + 1);
      await other.query('BEGIN');
      await other.query('SELECT 1 FROM workflow_instances WHERE id = $1 FOR UPDATE', [instance.id]);
      const ending = () => store.finishAttempts([succeeded(a.runId, T0 + 2)], T0 + 2);
      const resuming = () => store.workflows.repairInstance(instance.id, { kind: 'resume' }, T0 + 3);
      // Both wait on the instance's lock, and get it in the order they asked.
      const one = first === 'end' ? ending() : resuming();
      await waitersOnOther(1);
      const two = first === 'end' ? resuming() : ending();
      await waitersOnOther(2);
      await other.query('COMMIT');
      await Promise.all([one, two]);
      const after = (await store.workflows.getInstance(instance.id))!;
      expect(after).toMatchObject({ state: 'running', steps: [{ state: 'succeeded' }, { state: 'ready' }] });
      const next = await store.claimRuns('w', 10, T0 + 4);
      expect(next.map((r) => [r.runId, (r.params.$workflow as { step: string }).step])).toEqual([
        [after.steps[1]!.runId, 'b'],
      ]);
      expect(
        (await store.listRuns({ limit: 10 })).filter((r) => r.cause === 'workflow' && r.status === 'queued'),
      ).toEqual([]);
    }
  });

  it('a resume racing an item end of a paused map: each next item is queued once, never past maxParallel, in either order', async () => {
    for (const first of ['end', 'resume'] as const) {
      const name = `map-resume-after-${first}`;
      await store.workflows.put(
        compileWorkflow({
          name,
          steps: [
            { id: 'list', handler: 'h' },
            { id: 'one', handler: 'h', after: ['list'], map: { from: 'list', maxParallel: 2 } },
          ],
        }),
        'default',
        T0,
      );
      const instance = (await store.workflows.start('default', name, { context: {} }, T0))!;
      const [list] = await store.claimRuns('w', 10, T0 + 1);
      await store.finishAttempts([{ ...succeeded(list!.runId, T0 + 2), result: [1, 2, 3, 4] }], T0 + 2);
      const items = await store.claimRuns('w', 10, T0 + 3);
      expect(items).toHaveLength(2);
      await store.workflows.repairInstance(instance.id, { kind: 'pause' }, T0 + 4);
      await other.query('BEGIN');
      await other.query('SELECT 1 FROM workflow_instances WHERE id = $1 FOR UPDATE', [instance.id]);
      const ending = () => store.finishAttempts([succeeded(items[0]!.runId, T0 + 5)], T0 + 5);
      const resuming = () => store.workflows.repairInstance(instance.id, { kind: 'resume' }, T0 + 6);
      // Both wait on the instance's lock, and get it in the order they asked.
      const one = first === 'end' ? ending() : resuming();
      await waitersOnOther(1);
      const two = first === 'end' ? resuming() : ending();
      await waitersOnOther(2);
      await other.query('COMMIT');
      await Promise.all([one, two]);
      // One item runs still, one ended: exactly one next item (index 2) is queued.
      const next = await store.claimRuns('w', 10, T0 + 7);
      expect(next.map((r) => (r.params.$workflow as { index: number }).index)).toEqual([2]);
      expect(await store.claimRuns('w', 10, T0 + 8)).toEqual([]);
    }
  });

  it('a re-run racing the end of a step after it: the late end never advances the instance, the step runs once', async () => {
    for (const first of ['end', 'rerun'] as const) {
      const name = `rerun-after-${first}`;
      await store.workflows.put(
        compileWorkflow({
          name,
          steps: [
            { id: 'a', handler: 'h' },
            { id: 'b', handler: 'h', after: ['a'] },
            { id: 'c', handler: 'h', after: ['b'] },
          ],
        }),
        'default',
        T0,
      );
      const instance = (await store.workflows.start('default', name, { context: {} }, T0))!;
      const [a] = await store.claimRuns('w', 10, T0 + 1);
      await store.finishAttempts([succeeded(a!.runId, T0 + 2)], T0 + 2);
      const [b] = await store.claimRuns('w', 10, T0 + 3);
      await store.finishAttempts([succeeded(b!.runId, T0 + 4)], T0 + 4);
      const [c] = await store.claimRuns('w', 10, T0 + 5);
      await other.query('BEGIN');
      await other.query('SELECT 1 FROM workflow_instances WHERE id = $1 FOR UPDATE', [instance.id]);
      const ending = () => store.finishAttempts([succeeded(c!.runId, T0 + 6)], T0 + 6);
      const rerunning = () =>
        store.workflows.repairInstance(instance.id, { kind: 'rerun', step: 'b' }, T0 + 7);
      const one = first === 'end' ? ending() : rerunning();
      await waitingBehindOther(1);
      const two = first === 'end' ? rerunning() : ending();
      await waitingBehindOther(2);
      await other.query('COMMIT');
      const [end, rerun] = first === 'end' ? [await one, await two] : [await two, await one];
      expect(end).toEqual([first === 'end']);
      expect(rerun).toMatchObject({
        state: 'running',
        finishedAt: null,
        steps: [{ state: 'succeeded' }, { state: 'ready' }, { state: 'waiting', runId: null }],
      });
      const next = await store.claimRuns('w', 10, T0 + 8);
      expect(next.map((r) => (r.params.$workflow as { step: string }).step)).toEqual(['b']);
      expect(next[0]!.runId).not.toBe(b!.runId);
      expect(await store.getRun(c!.runId)).toMatchObject({
        status: first === 'end' ? 'succeeded' : 'cancelled',
      });
    }
  });

  it('a cancel that waits on a step run’s end also cancels the run that end queued', async () => {
    await store.workflows.put(
      compileWorkflow({
        name: 'chain',
        steps: [
          { id: 'a', handler: 'h' },
          { id: 'b', handler: 'h', after: ['a'] },
        ],
      }),
      'default',
      T0,
    );
    const instance = (await store.workflows.start('default', 'chain', { context: {} }, T0))!;
    const [a] = await store.claimRuns('w', 10, T0 + 1);
    // `other` holds the instance: a's end locks a's run, then waits for the instance; the cancel
    // locks the instance's active runs first and so waits for a's end, which then queues b.
    await other.query('BEGIN');
    await other.query('SELECT 1 FROM workflow_instances WHERE id = $1 FOR UPDATE', [instance.id]);
    const ending = store.finishAttempts([succeeded(a!.runId, T0 + 2)], T0 + 2);
    await waitingBehindOther(1);
    const cancelling = store.workflows.cancelInstance(instance.id, T0 + 3);
    await waitingBehindOther(2);
    await other.query('COMMIT');
    expect(await ending).toEqual([true]);
    const cancelled = await cancelling;
    expect(cancelled).toMatchObject({ state: 'cancelled' });
    const b = cancelled!.steps.find((s) => s.id === 'b')!;
    expect(b).toMatchObject({ state: 'cancelled' });
    expect(b.runId).not.toBeNull();
    expect((await store.getRun(b.runId!))?.status).toBe('cancelled');
    expect(await store.claimRuns('w', 10, T0 + 4)).toEqual([]);
  });
  it('a job deleted while an advance queues a step run of it fails that step: never a step left waiting', async () => {
    const job = await store.createJob(
      compileJob({ name: 'x', handler: 'h', trigger: { kind: 'manual' } }),
      null,
      T0,
    );
    await store.workflows.put(
      compileWorkflow({
        name: 'uses-x',
        steps: [
          { id: 'a', handler: 'h' },
          { id: 'k', job: 'x', after: ['a'] },
          { id: 'cleanup', handler: 'h', after: [{ step: 'k', on: 'failure' }] },
        ],
      }),
      'default',
      T0,
    );
    const instance = (await store.workflows.start('default', 'uses-x', { context: {} }, T0))!;
    const [a] = await store.claimRuns('w', 10, T0 + 1);
    // `other` holds k's step row: a's end queues k's run of job x, then waits to write k's state.
    await other.query('BEGIN');
    await other.query(`SELECT 1 FROM workflow_steps WHERE instance_id = $1 AND step_id = 'k' FOR UPDATE`, [
      instance.id,
    ]);
    const ending = store.finishAttempts([succeeded(a!.runId, T0 + 2)], T0 + 2);
    await waitingBehindOther(1);
    // The delete waits on that uncommitted run's hold on job x.
    const deleting = store.deleteJob('x', undefined, T0 + 3);
    await waitingBehindOther(2);
    await other.query('COMMIT');
    expect(await ending).toEqual([true]);
    expect(await deleting).toBe(true);
    expect(await store.listRuns({ jobId: job.id, limit: 10 })).toEqual([]);
    const after = await store.workflows.getInstance(instance.id);
    expect(Object.fromEntries(after!.steps.map((s) => [s.id, s.state]))).toEqual({
      a: 'succeeded',
      k: 'failed',
      cleanup: 'ready',
    });
  });
});
