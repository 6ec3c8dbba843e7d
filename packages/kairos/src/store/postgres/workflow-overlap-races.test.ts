import type { OverlapPolicy } from '@kairos/client';
import pg from 'pg';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  dropTestSchemas,
  succeededOutcome,
  testDatabaseUrl,
  testSchema,
} from '../../../test/test-database.ts';
import { compileWorkflow } from '../../core/workflow.ts';
import type { AttemptOutcome, FireEntry } from '../store.ts';
import { PostgresStore } from './postgres-store.ts';

afterAll(dropTestSchemas);

// Held fires of workflows on PostgreSQL (docs/workflows.md#triggers): fires and instance ends that
// meet, made to meet in a chosen order by a second connection that holds a lock, and two stores
// (two pools, as two nodes) firing and ending at once. Each held fire must start once, in fire
// order, one instance at a time (store/postgres/workflows.ts, startHeldFires).
describe('PostgreSQL workflow overlap: held fires, concurrently', () => {
  const T0 = Date.UTC(2026, 0, 1);
  let store: PostgresStore;
  let peer: PostgresStore;
  let other: pg.Client;
  let probe: pg.Client;

  beforeEach(async () => {
    const schema = testSchema();
    store = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
    await store.migrate();
    peer = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
    other = new pg.Client({ connectionString: testDatabaseUrl(), options: `-c search_path=${schema}` });
    probe = new pg.Client({ connectionString: testDatabaseUrl() });
    await Promise.all([other.connect(), probe.connect()]);
    await store.registerWorker(
      {
        id: 'w',
        name: 'w',
        group: 'default',
        handlers: ['h'],
        capacity: 1000,
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
    await Promise.all([store.close(), peer.close()]);
  });

  const succeeded = (runId: number, now: number): AttemptOutcome => succeededOutcome(runId, now, 'w');

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

  async function define(name: string, overlap: OverlapPolicy) {
    return (
      await store.workflows.put(
        compileWorkflow({
          name,
          steps: [{ id: 'a', handler: 'h' }],
          trigger: { kind: 'every', every: '1s' },
          schedule: { overlap },
        }),
        'default',
        T0,
        undefined,
        { next: T0 + 1000 },
      )
    ).workflow;
  }

  const entry = (jobId: number, overlap: FireEntry['overlap'], fireTime: number): FireEntry => ({
    jobId,
    expected: fireTime,
    next: fireTime + 1000,
    fires: [fireTime],
    workflow: true,
    overlap,
    ...(overlap === 'buffer-all' ? {} : { previousFire: fireTime - 1000 }),
  });

  async function heldFires(workflowId: number): Promise<number[]> {
    const { rows } = await other.query<{ fire_time: string }>(
      'SELECT fire_time FROM workflow_held_fires WHERE workflow_id = $1 ORDER BY fire_time',
      [workflowId],
    );
    return rows.map((r) => Number(r.fire_time) - T0);
  }

  const scheduled = async (workflowId: number) =>
    (await store.workflows.listInstances(workflowId, undefined, 1000))
      .map((i) => [i.scheduledFor === null ? null : i.scheduledFor - T0, i.state])
      .sort((x, y) => Number(x[0]) - Number(y[0]));

  it('a fire racing the end of the instance it would wait for: the fire starts once, in either order', async () => {
    for (const first of ['end', 'fire'] as const) {
      const workflow = await define(`fire-vs-end-${first}`, 'buffer-one');
      await store.fire([entry(workflow.jobId, 'buffer-one', T0 + 1000)], null, T0 + 1000);
      const [instance] = await store.workflows.listInstances(workflow.id, undefined, 10);
      const [run] = await store.claimRuns('w', 10, T0 + 1001);
      // `other` holds the instance: the end waits on it (its advance), and so does the fire (FOR SHARE).
      await other.query('BEGIN');
      await other.query('SELECT 1 FROM workflow_instances WHERE id = $1 FOR UPDATE', [instance!.id]);
      const ending = () => store.finishAttempts([succeeded(run!.runId, T0 + 2000)], T0 + 2000);
      const firing = () => peer.fire([entry(workflow.jobId, 'buffer-one', T0 + 2000)], null, T0 + 2000);
      const one = first === 'end' ? ending() : firing();
      await waitersOnOther(1);
      const two = first === 'end' ? firing() : ending();
      await waitersOnOther(2);
      await other.query('COMMIT');
      await Promise.all([one, two]);
      // Held and started by the end (fire first), or started by the fire (end first): once either way.
      expect(await scheduled(workflow.id)).toEqual([
        [1000, 'succeeded'],
        [2000, 'running'],
      ]);
      expect(await heldFires(workflow.id)).toEqual([]);
      const next = await store.claimRuns('w', 10, T0 + 2001);
      expect(next).toHaveLength(1);
    }
  });

  it('the ends of the last two unfinished instances at once: the held fire starts once', async () => {
    const workflow = await define('two-ends', 'buffer-one');
    await store.fire([entry(workflow.jobId, 'buffer-one', T0 + 1000)], null, T0 + 1000);
    // A manual instance is unfinished too: the next fire is held behind both.
    await store.workflows.start('default', 'two-ends', { context: {} }, T0 + 1500);
    await store.fire([entry(workflow.jobId, 'buffer-one', T0 + 2000)], null, T0 + 2000);
    expect(await heldFires(workflow.id)).toEqual([2000]);
    const runs = await store.claimRuns('w', 10, T0 + 2001);
    expect(runs).toHaveLength(2);
    // `other` holds the held fire's row: both ends have ended their instances and wait on it.
    await other.query('BEGIN');
    await other.query('SELECT 1 FROM workflow_held_fires WHERE workflow_id = $1 FOR UPDATE', [workflow.id]);
    const ends = [
      store.finishAttempts([succeeded(runs[0]!.runId, T0 + 3000)], T0 + 3000),
      peer.finishAttempts([succeeded(runs[1]!.runId, T0 + 3000)], T0 + 3000),
    ];
    await waitersOnOther(2);
    await other.query('COMMIT');
    expect(await Promise.all(ends)).toEqual([[true], [true]]);
    expect(await scheduled(workflow.id)).toEqual([
      [null, 'succeeded'],
      [1000, 'succeeded'],
      [2000, 'running'],
    ]);
    expect(await heldFires(workflow.id)).toEqual([]);
  });

  it('two nodes firing and ending a buffer-all workflow at once: each fire starts once, in order, one at a time', async () => {
    const workflow = await define('serial', 'buffer-all');
    const FIRES = 30;
    let now = T0 + 1000;
    /** Claims what is queued and ends it, through one store. */
    const drain = async (through: PostgresStore, at: number) => {
      const claimed = await through.claimRuns('w', 100, at);
      if (claimed.length > 0)
        await through.finishAttempts(
          claimed.map((r) => succeeded(r.runId, at + 1)),
          at + 1,
        );
      return claimed.length;
    };
    for (let i = 1; i <= FIRES; i++) {
      now = T0 + i * 1000;
      // The fire on one node while both nodes end what runs (their clocks a little behind: an
      // instance's start is never before the end of the one before it, whichever commits first).
      await Promise.all([
        store.fire([entry(workflow.jobId, 'buffer-all', now)], null, now),
        drain(peer, now - 500),
        drain(store, now - 400),
      ]);
    }
    for (let idle = 0; idle < 3; ) {
      now += 10;
      const [x, y] = await Promise.all([drain(store, now), drain(peer, now)]);
      idle = x + y === 0 ? idle + 1 : 0;
    }
    const instances = (await store.workflows.listInstances(workflow.id, undefined, 1000)).sort(
      (a, b) => a.scheduledFor! - b.scheduledFor!,
    );
    expect(instances.map((i) => i.scheduledFor! - T0)).toEqual(
      Array.from({ length: FIRES }, (_, i) => (i + 1) * 1000),
    );
    expect(instances.every((i) => i.state === 'succeeded')).toBe(true);
    // One at a time, in fire order: each started once the one before had ended.
    for (let i = 1; i < instances.length; i++) {
      expect(instances[i]!.id).toBeGreaterThan(instances[i - 1]!.id);
      expect(instances[i]!.startedAt).toBeGreaterThanOrEqual(instances[i - 1]!.finishedAt!);
    }
    expect(await heldFires(workflow.id)).toEqual([]);
    const runs = await store.listRuns({ jobId: workflow.jobId, limit: 1000 });
    expect(runs).toHaveLength(FIRES);
  });
});
