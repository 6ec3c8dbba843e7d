import { join } from 'node:path';
import type { JobSpec } from '@kairos/client';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers.ts';
import { dispatchFromColumn, isPlainDispatch } from '../../core/dispatch-policy.ts';
import { compileJob } from '../../core/job.ts';
import * as hot from './hot-statements.ts';
import { SqliteStore } from './sqlite-store.ts';

const path = join(tempDir(), 'hot.db');
let db: Database.Database;

beforeAll(async () => {
  const store = new SqliteStore(path);
  await store.migrate();
  const specs: Array<Partial<JobSpec>> = [
    {},
    { routing: { strategy: 'round-robin' } },
    { routing: { strategy: 'any', selector: { region: 'eu' } } },
    { maxConcurrency: 2 },
    { rateLimit: { limit: 5, per: '1s' } },
    { scheduleToStartTimeout: '30s' },
    { resources: { cpu: 1 } },
  ];
  for (const [i, spec] of specs.entries()) {
    await store.createJob(
      compileJob({ name: `j${i}`, handler: 'h', trigger: { kind: 'manual' }, ...spec } as JobSpec),
      null,
      0,
    );
  }
  await store.close();
  db = new Database(path);
});

afterAll(() => db?.close());

function plan(sql: string, params: unknown[] | Record<string, unknown>): string[] {
  const statement = db.prepare(`EXPLAIN QUERY PLAN ${sql}`);
  const rows = (Array.isArray(params) ? statement.all(...params) : statement.all(params)) as Array<{
    detail: string;
  }>;
  return rows.map((row) => row.detail);
}

const claimParams = {
  namespace: 'default',
  group: 'g',
  now: 0,
  handlers: '[]',
  worker: 'w',
  max: 1,
  ids: '[]',
  seq: null,
  ends: '[]',
};

describe('SQLite hot statements', () => {
  it('look runs up by id, never by walking runs or one of their status indexes', () => {
    expect(plan(hot.DECISION_INPUTS, ['[]'])).toContain('SEARCH r USING INTEGER PRIMARY KEY (rowid=?)');
    expect(plan(hot.END_RUNS, { now: 0, ends: '[]' })).toContain(
      'SEARCH runs USING INTEGER PRIMARY KEY (rowid=?)',
    );
    // An ended attempt's row is inserted from the end's input alone: no run or attempt row is read.
    // (The probe of late_reports is its foreign key's, which SQLite runs only while a violation
    // of it is outstanding: never, as the constraint is checked at once.)
    expect(plan(hot.END_ATTEMPTS, [0, '[]']).filter((d) => !d.startsWith('SEARCH late_reports '))).toEqual([
      expect.stringMatching(/^SCAN json_each VIRTUAL TABLE/),
    ]);
    expect(plan(hot.CLAIM_IDS, claimParams)).toContain('SEARCH runs USING INTEGER PRIMARY KEY (rowid=?)');
    for (const sql of [hot.DECISION_INPUTS, hot.END_RUNS, hot.CLAIM_IDS, hot.EXPIRED_ATTEMPTS]) {
      const details = plan(sql, sql === hot.DECISION_INPUTS ? ['[]'] : { ...claimParams, limit: 1 });
      expect(
        details.filter(
          (d) =>
            /^SCAN (r|runs)\b/.test(d) ||
            (/USING (COVERING )?INDEX/.test(d) && !/runs_(worker|deadline)/.test(d)),
        ),
      ).toEqual([]);
    }
  });

  it('find expired attempts through the workers, then runs_worker, and a range of runs_deadline only', () => {
    const details = plan(hot.EXPIRED_ATTEMPTS, { now: 0, limit: 1 });
    expect(details).toEqual(
      expect.arrayContaining([
        'SCAN w',
        'SEARCH r USING COVERING INDEX runs_worker (worker_id=?)',
        'SEARCH runs USING COVERING INDEX runs_deadline (deadline_at<?)',
      ]),
    );
    // The workers drive the lost half: runs are never the outer loop of the join.
    expect(details.indexOf('SCAN w')).toBeLessThan(
      details.indexOf('SEARCH r USING COVERING INDEX runs_worker (worker_id=?)'),
    );
  });

  it('find queued runs past their schedule-to-start timeout per job that has one, never walking the queue', () => {
    expect(plan(hot.EXPIRED_QUEUED, { now: 0, limit: 1 })).toEqual([
      'SCAN j USING INDEX jobs_schedule_to_start',
      'SEARCH r USING INDEX runs_active (job_id=? AND available_at<?)',
      'USE TEMP B-TREE FOR ORDER BY',
    ]);
  });

  it('write no attempt row at a claim: a running attempt is its run’s row', () => {
    expect(Object.values(hot).filter((v) => typeof v === 'string' && /INSERT INTO attempts/.test(v))).toEqual(
      [hot.END_ATTEMPTS],
    );
  });

  it('read a worker’s running attempts, for its heartbeat, through runs_worker', () => {
    expect(plan(hot.RUNNING_OF_WORKER, ['w'])).toEqual(['SEARCH runs USING INDEX runs_worker (worker_id=?)']);
  });

  it('keep no index of a run lease: a running attempt lives on its worker’s lease', () => {
    const columns = db.prepare('SELECT name FROM pragma_table_info(?)').all('runs') as Array<{
      name: string;
    }>;
    expect(columns.map((c) => c.name)).not.toContain('lease_expires_at');
    const indexes = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs'")
      .all();
    expect(indexes).not.toContainEqual({ name: 'runs_lease' });
  });

  it('fire: one pass over the input, each job looked up by id', () => {
    const details = plan(hot.INSERT_FIRES, { now: 0, fires: '[]' });
    expect(details.slice(0, 2)).toEqual([
      expect.stringMatching(/^SCAN v VIRTUAL TABLE/),
      'SEARCH j USING INTEGER PRIMARY KEY (rowid=?)',
    ]);
    expect(plan(hot.BROADCAST_JOBS, ['[]'])).toContain('SEARCH jobs USING INTEGER PRIMARY KEY (rowid=?)');
    // A batch's ledger rows: one pass over the input, nothing else read.
    expect(plan(hot.INSERT_SKIPPED, { now: 0, rows: '[]' })).toEqual([
      expect.stringMatching(/^SCAN v VIRTUAL TABLE/),
    ]);
  });

  it('find the run an idempotency key holds (to compare its params) in the partial runs_idempotency index', () => {
    expect(plan(hot.RUN_BY_IDEMPOTENCY_KEY, [1, 'k'])).toEqual([
      'SEARCH runs USING INDEX runs_idempotency (job_id=? AND idempotency_key=?)',
    ]);
    const indexes = db
      .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs'")
      .all() as Array<{ name: string; sql: string }>;
    const where = Object.fromEntries(indexes.map((i) => [i.name, i.sql.replace(/.*WHERE /s, '')]));
    expect(where).toMatchObject({
      runs_fire: 'fire_time IS NOT NULL',
      runs_idempotency: 'idempotency_key IS NOT NULL',
    });
  });

  it('pick ready runs from the claim index', () => {
    expect(plan(hot.PICK_PLAIN, claimParams)).toContain('SEARCH r USING INDEX runs_claim (group_name=?)');
  });

  it('say a job dispatches plainly exactly when the core does', () => {
    const rows = db
      .prepare(`SELECT j.dispatch, ${hot.PLAIN_DISPATCH} AS plain FROM jobs j, (SELECT NULL AS resources) r`)
      .all() as Array<{
      dispatch: string;
      plain: number;
    }>;
    expect(rows).toHaveLength(7);
    for (const row of rows) expect(row.plain === 1).toBe(isPlainDispatch(dispatchFromColumn(row.dispatch)));
    expect(rows.map((row) => row.plain)).toEqual([1, 0, 0, 0, 0, 1, 0]);
  });
});
