import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { undoSinceAttemptRows } from '../../test/rewind.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../../test/test-database.ts';
import { compileJob } from '../core/job.ts';
import { PostgresStore } from './postgres/postgres-store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import type { AttemptOutcome, Store } from './store.ts';

afterAll(dropTestSchemas);
const dir = tempDir();

// Before the attempts-written-once migration a claim inserted a 'running' attempt row. A store
// upgraded with such runs in flight must end them with one row each, and no key conflict.

/** Raw SQL on a dialect's store, below the contract. */
interface Raw {
  exec(sql: string): Promise<void>;
  attempts(): Promise<Array<{ run_id: number; attempt: number; worker_id: string; status: string }>>;
}

/** What the claims of the starting commit wrote: a 'running' row per running run. */
const OLD_CLAIM_ROWS = `INSERT INTO attempts (run_id, attempt, worker_id, status, started_at)
  SELECT id, attempt, worker_id, 'running', started_at FROM runs WHERE status = 'running'`;

const dialects: Array<{ name: string; open: () => { store: Store; raw: Raw; rewind: string } }> = [
  {
    name: 'sqlite',
    open: () => {
      const path = join(dir, 'upgrade.db');
      const raw = (): Database.Database => new Database(path);
      return {
        store: new SqliteStore(path),
        // Back before 0011, and so before the migrations after it (0012 schema_meta, 0013 nodes.name, 0014 claims and late reports, 0015 retention).
        rewind: `${undoSinceAttemptRows('sqlite')}; PRAGMA user_version = 10`,
        raw: {
          async exec(sql) {
            const db = raw();
            db.exec(sql);
            db.close();
          },
          async attempts() {
            const db = raw();
            const rows = db
              .prepare('SELECT run_id, attempt, worker_id, status FROM attempts ORDER BY run_id, attempt')
              .all() as Awaited<ReturnType<Raw['attempts']>>;
            db.close();
            return rows;
          },
        },
      };
    },
  },
  {
    name: 'postgres',
    open: () => {
      const schema = testSchema('kairos_upgrade');
      const query = async (sql: string) => {
        const client = new pg.Client({
          connectionString: testDatabaseUrl(),
          options: `-c search_path=${schema}`,
        });
        await client.connect();
        try {
          return (await client.query(sql)).rows;
        } finally {
          await client.end();
        }
      };
      return {
        store: new PostgresStore({ connectionString: testDatabaseUrl(), schema }),
        rewind: `${undoSinceAttemptRows('postgres')}; DELETE FROM kairos_migrations WHERE version >= 12`,
        raw: {
          async exec(sql) {
            await query(sql);
          },
          async attempts() {
            return query(
              'SELECT run_id::int, attempt, worker_id, status FROM attempts ORDER BY run_id, attempt',
            ) as Promise<Awaited<ReturnType<Raw['attempts']>>>;
          },
        },
      };
    },
  },
];

describe.each(dialects)('upgrading a $name store with running attempts', ({ open }) => {
  it('drops their running rows, and their ends insert one row each', async () => {
    const { store, raw, rewind } = open();
    const T0 = Date.UTC(2026, 0, 1);
    try {
      await store.migrate();
      const job = await store.createJob(
        compileJob({ name: 'j', handler: 'h', trigger: { kind: 'manual' } }),
        null,
        T0,
      );
      const ids = await store.enqueueRuns(
        job.id,
        [0, 1, 2].map(() => ({ params: {}, priority: 0 })),
        T0,
      );
      await store.registerWorker(
        {
          id: 'w1',
          name: 'w1',
          group: 'default',
          handlers: ['h'],
          capacity: 10,
          labels: {},
          version: 't',
          host: 'h',
        },
        5000,
        T0,
      );
      await store.claimRuns('w1', 3, T0 + 10);
      // The store as the starting commit left it, one migration back (and before schema_meta).
      await raw.exec(`${OLD_CLAIM_ROWS}; ${rewind}`);
      expect(await raw.attempts()).toHaveLength(3);
      await store.migrate();
      expect(await raw.attempts()).toEqual([]);
      const [a, b, c] = ids as [number, number, number];
      expect(await store.getAttempts(a)).toMatchObject([{ attempt: 1, workerId: 'w1', status: 'running' }]);
      const end = (runId: number, status: 'succeeded' | 'lost'): AttemptOutcome => ({
        runId,
        attempt: 1,
        group: 'default',
        attemptStatus: status,
        error: null,
        result: null,
        run: { status: status === 'lost' ? 'failed' : 'succeeded' },
      });
      expect(await store.finishAttempts([end(a, 'succeeded')], T0 + 20)).toEqual([true]);
      await store.cancelRun(b, T0 + 30);
      expect(await store.finishAttempts([end(c, 'lost')], T0 + 40)).toEqual([true]);
      // The success is its run's row; the others have rows of their own.
      expect(await raw.attempts()).toEqual([
        { run_id: b, attempt: 1, worker_id: 'w1', status: 'cancelled' },
        { run_id: c, attempt: 1, worker_id: 'w1', status: 'lost' },
      ]);
      const listed = await store.getAttempts(a);
      expect(listed).toMatchObject([
        { attempt: 1, workerId: 'w1', status: 'succeeded', finishedAt: T0 + 20 },
      ]);
      // A success that an earlier version ended has its row: listed once.
      await raw.exec(
        `INSERT INTO attempts (run_id, attempt, worker_id, status, started_at, finished_at) VALUES (${a}, 1, 'w1', 'succeeded', ${T0 + 10}, ${T0 + 20})`,
      );
      expect(await store.getAttempts(a)).toEqual(listed);
    } finally {
      await store.close();
    }
  });
});
