import pg from 'pg';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  dropTestSchemas,
  succeededOutcome,
  testDatabaseUrl,
  testSchema,
} from '../../../test/test-database.ts';
import { compileJob, type JobDefinition } from '../../core/job.ts';
import type { AttemptOutcome } from '../store.ts';
import { PostgresStore } from './postgres-store.ts';
import { backfill } from './schedules.ts';

afterAll(dropTestSchemas);

// Run ends and triggers on PostgreSQL against a second connection that holds locks: the one-statement
// paths take no lock they must not take, and keep the ones the buffered runs and idempotency keys need.
describe('PostgreSQL run ends and triggers, concurrently', () => {
  const T0 = Date.UTC(2026, 0, 1);
  let store: PostgresStore;
  let other: pg.Client;

  beforeEach(async () => {
    const schema = testSchema();
    store = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
    await store.migrate();
    other = new pg.Client({ connectionString: testDatabaseUrl(), options: `-c search_path=${schema}` });
    await other.connect();
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
    await other.end();
    await store.close();
  });

  const job = (name: string, extra: Partial<Parameters<typeof compileJob>[0]> = {}): JobDefinition =>
    compileJob({ name, handler: 'h', trigger: { kind: 'manual' }, ...extra });

  /** A run of `jobId`, claimed: running, attempt 1. */
  async function running(jobId: number): Promise<number> {
    const [id] = await store.enqueueRuns(jobId, [{ params: {}, priority: 0 }], T0);
    const claimed = await store.claimRuns('w', 1, T0);
    expect(claimed.map((c) => c.runId)).toEqual([id]);
    return id!;
  }

  const succeeded = (runId: number, now: number): AttemptOutcome => succeededOutcome(runId, now);

  /** Resolves once a statement of another session waits for a lock that `other` holds. */
  async function blockedByOther(): Promise<void> {
    const pid = (await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const probe = new pg.Client({ connectionString: testDatabaseUrl() });
    await probe.connect();
    try {
      for (;;) {
        const { rows } = await probe.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))',
          [pid],
        );
        if (rows[0]!.n > 0) return;
        await probe.query('SELECT pg_sleep(0.005)');
      }
    } finally {
      await probe.end();
    }
  }

  /** `promise`, with whether it settled before `other` committed (once `promise` waited for its lock). */
  async function settledBeforeCommit<T>(promise: Promise<T>): Promise<[boolean, T]> {
    let settled = false;
    const watched = promise.finally(() => {
      settled = true;
    });
    await blockedByOther();
    await other.query('COMMIT');
    const early = settled;
    return [early, await watched];
  }

  it('a run of a job without buffered runs ends while another transaction holds its job’s row lock', async () => {
    const plain = await store.createJob(job('plain'), null, T0);
    const runId = await running(plain.id);
    await other.query('BEGIN');
    await other.query('SELECT id FROM jobs WHERE id = $1 FOR UPDATE', [plain.id]);
    expect(await store.finishAttempts([succeeded(runId, T0 + 1)], T0 + 1)).toEqual([true]);
    expect(await store.getRun(runId)).toMatchObject({ status: 'succeeded', finishedAt: T0 + 1 });
  });

  it('a run of a job that buffers runs waits for its job’s row lock, then promotes what was buffered', async () => {
    const serial = await store.createJob(job('serial', { schedule: { overlap: 'buffer-all' } }), null, T0);
    const runId = await running(serial.id);
    await store.backfillRuns(serial.id, [T0 - 1000], 'buffer-all', T0);
    await other.query('BEGIN');
    await other.query('SELECT id FROM jobs WHERE id = $1 FOR UPDATE', [serial.id]);
    const [early, applied] = await settledBeforeCommit(
      store.finishAttempts([succeeded(runId, T0 + 1)], T0 + 1),
    );
    expect(early).toBe(false);
    expect(applied).toEqual([true]);
    expect((await store.claimRuns('w', 5, T0 + 2)).map((c) => c.fireTime)).toEqual([T0 - 1000]);
  });

  it('a serial backfill that counted a run as in flight: the run’s end, held up by it, promotes the backfill', async () => {
    const plain = await store.createJob(job('plain'), null, T0);
    const runId = await running(plain.id);
    // The backfill buffers both runs behind the running one and has not committed yet.
    await other.query('BEGIN');
    const made = await backfill(
      other as unknown as pg.PoolClient,
      plain.id,
      [T0 - 2000, T0 - 1000],
      'buffer-all',
      T0,
    );
    expect(made.created).toHaveLength(2);
    const [early, applied] = await settledBeforeCommit(
      store.finishAttempts([succeeded(runId, T0 + 1)], T0 + 1),
    );
    expect(early).toBe(false);
    expect(applied).toEqual([true]);
    // The end read the backfill's mark on its run: the oldest buffered run is claimable, the other waits.
    expect((await store.claimRuns('w', 5, T0 + 2)).map((c) => c.fireTime)).toEqual([T0 - 2000]);
  });

  it('an idempotency key that another transaction commits meanwhile answers that transaction’s run', async () => {
    const keyed = await store.createJob(job('keyed'), null, T0);
    await other.query('BEGIN');
    const theirs = await other.query<{ id: string }>(
      `INSERT INTO runs (job_id, group_name, handler, cause, idempotency_key, params, priority, status, max_attempts,
         retry, timeout_ms, created_at, available_at)
       SELECT id, group_name, handler, 'manual', 'k', params, priority, 'queued', 1, retry, timeout_ms, $2, $2
       FROM jobs WHERE id = $1 RETURNING id`,
      [keyed.id, T0],
    );
    const [early, ids] = await settledBeforeCommit(
      store.enqueueRuns(
        keyed.id,
        [
          { params: {}, priority: 0, idempotencyKey: 'k' },
          { params: {}, priority: 0 },
        ],
        T0,
      ),
    );
    expect(early).toBe(false);
    expect(ids[0]).toBe(Number(theirs.rows[0]!.id));
    expect(ids[1]).toBeGreaterThan(ids[0]!);
    expect(await store.listRuns({ jobId: keyed.id, limit: 10 })).toHaveLength(2);
  });
});
