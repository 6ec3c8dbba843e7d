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

// Dependencies on PostgreSQL with two stores (two pools, as two nodes) on one database, writing at
// once (docs/schedules.md#dependencies): each round races two transactions; the store must order
// them, whatever order they meet in.
describe('PostgreSQL dependencies, concurrently', () => {
  const T0 = Date.UTC(2026, 0, 1);
  const ROUNDS = 25;
  const ended = (runId: number, now: number): AttemptOutcome => succeededOutcome(runId, now);
  let one: PostgresStore;
  let two: PostgresStore;

  beforeEach(async () => {
    const schema = testSchema();
    one = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
    await one.migrate();
    two = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
  });
  afterEach(async () => {
    await Promise.all([one.close(), two.close()]);
  });

  it('two definitions that close a cycle between them: never both written, one is DEPENDENCY_CYCLE', async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const [a, b] = [`a${i}`, `b${i}`];
      const results = await Promise.allSettled([
        one.createJob(compileJob({ name: a, handler: 'h', trigger: { kind: 'after', job: b } }), null, T0),
        two.createJob(compileJob({ name: b, handler: 'h', trigger: { kind: 'after', job: a } }), null, T0),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(refused.reason).toMatchObject({ code: 'DEPENDENCY_CYCLE' });
    }
  });

  it('two edits that close a cycle between them: never both written', async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const [a, b] = [`a${i}`, `b${i}`];
      const ja = await one.createJob(
        compileJob({ name: a, handler: 'h', trigger: { kind: 'manual' } }),
        null,
        T0,
      );
      const jb = await one.createJob(
        compileJob({ name: b, handler: 'h', trigger: { kind: 'manual' } }),
        null,
        T0,
      );
      const results = await Promise.allSettled([
        one.updateJob(
          ja.id,
          compileJob({ name: a, handler: 'h', trigger: { kind: 'after', job: b } }),
          null,
          T0,
        ),
        two.updateJob(
          jb.id,
          compileJob({ name: b, handler: 'h', trigger: { kind: 'after', job: a } }),
          null,
          T0,
        ),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).toMatchObject({
        code: 'DEPENDENCY_CYCLE',
      });
    }
  });

  it('the last two shards of a broadcast ending at once on two nodes set off its child once', async () => {
    const parent = await one.createJob(
      compileJob({
        name: 'bc',
        handler: 'h',
        trigger: { kind: 'manual' },
        routing: { strategy: 'broadcast' },
      }),
      null,
      T0,
    );
    const child = await one.createJob(
      compileJob({ name: 'child', handler: 'c', trigger: { kind: 'after', job: 'bc' } }),
      null,
      T0,
    );
    for (const id of ['w1', 'w2']) {
      await one.registerWorker(
        {
          id,
          name: id,
          group: 'default',
          handlers: ['h'],
          capacity: 10,
          labels: {},
          version: 't',
          host: 'h',
        },
        3_600_000,
        T0,
      );
    }
    for (let i = 0; i < ROUNDS; i++) {
      const now = T0 + 1000 * (i + 1);
      const [first] = await one.enqueueRuns(parent.id, [{ params: {}, priority: 0 }], now);
      const [s1] = await one.dispatchRuns('w1', 10, now + 1, 0);
      const [s2] = await two.dispatchRuns('w2', 10, now + 1, 0);
      expect([s1?.shard?.total, s2?.shard?.total]).toEqual([2, 2]);
      const applied = await Promise.all([
        one.finishAttempts([ended(s1!.runId, now + 2)], now + 2),
        two.finishAttempts([ended(s2!.runId, now + 2)], now + 2),
      ]);
      expect(applied).toEqual([[true], [true]]);
      const runs = await one.listRuns({ jobId: child.id, limit: 100 });
      expect(runs.filter((r) => (r.params.parent as { runId: number }).runId === first)).toHaveLength(1);
      for (const run of runs.filter((r) => r.status === 'queued')) await one.cancelRun(run.id, now + 3);
    }
  });

  it('the last two shards of a workflow `job` step ending at once on two nodes end the step once', async () => {
    await one.createJob(
      compileJob({
        name: 'bc',
        handler: 'h',
        trigger: { kind: 'manual' },
        routing: { strategy: 'broadcast' },
      }),
      null,
      T0,
    );
    for (const id of ['w1', 'w2']) {
      await one.registerWorker(
        {
          id,
          name: id,
          group: 'default',
          handlers: ['h'],
          capacity: 10,
          labels: {},
          version: 't',
          host: 'h',
        },
        3_600_000,
        T0,
      );
    }
    await one.workflows.put(
      compileWorkflow({
        name: 'flow',
        steps: [
          { id: 'fan', job: 'bc' },
          { id: 'next', handler: 'n', after: ['fan'] },
        ],
      }),
      'default',
      T0,
    );
    for (let i = 0; i < ROUNDS; i++) {
      const now = T0 + 1000 * (i + 1);
      const instance = (await one.workflows.start('default', 'flow', { context: {} }, now))!;
      const [s1] = await one.dispatchRuns('w1', 10, now + 1, 0);
      const [s2] = await two.dispatchRuns('w2', 10, now + 1, 0);
      expect([s1?.shard?.total, s2?.shard?.total]).toEqual([2, 2]);
      await Promise.all([
        one.finishAttempts([ended(s1!.runId, now + 2)], now + 2),
        two.finishAttempts([ended(s2!.runId, now + 2)], now + 2),
      ]);
      const after = await one.workflows.getInstance(instance.id);
      expect(Object.fromEntries(after!.steps.map((s) => [s.id, s.state]))).toEqual({
        fan: 'succeeded',
        next: 'ready',
      });
      await one.workflows.cancelInstance(instance.id, now + 3);
    }
  });
});
