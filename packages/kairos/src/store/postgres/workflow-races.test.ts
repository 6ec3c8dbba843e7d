import pg from 'pg';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob } from '../../core/job.ts';
import { decideOutcome } from '../../core/outcome.ts';
import { compileWorkflow } from '../../core/workflow.ts';
import type { AttemptOutcome } from '../store.ts';
import { PostgresStore } from './postgres-store.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

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

  function succeeded(runId: number, now: number): AttemptOutcome {
    const retry = {
      maxAttempts: 1,
      backoff: 'fixed' as const,
      delay: 0,
      maxDelay: 0,
      jitter: false,
      nonRetryable: [],
    };
    return {
      ...decideOutcome(retry, 1, { kind: 'succeeded', result: null }, now, 0),
      runId,
      attempt: 1,
      group: 'default',
      workerId: 'w',
    };
  }

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
