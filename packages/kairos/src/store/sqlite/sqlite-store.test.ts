import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describeStoreConformance, type StoredAttempt } from '../../../test/conformance/suite.ts';
import { tempDir } from '../../../test/helpers.ts';
import { SqliteStore } from './sqlite-store.ts';

const dir = tempDir();
let n = 0;
let path = '';

// A real SQLite file per test, in WAL mode, as the embedded node runs it.
describeStoreConformance(
  'sqlite',
  async () => {
    path = join(dir, `store-${n++}.db`);
    return new SqliteStore(path);
  },
  {
    // SQLite keeps no row version: the row's values, read through a connection of the probe's own.
    async runRowVersion(runId) {
      const db = new Database(path);
      try {
        return JSON.stringify(db.prepare('SELECT * FROM runs WHERE id = ?').get(runId));
      } finally {
        db.close();
      }
    },
    handsOff: true,
    async attemptRows(runId) {
      const db = new Database(path);
      try {
        return db
          .prepare(
            `SELECT attempt, worker_id AS workerId, status, started_at AS startedAt, finished_at AS finishedAt
             FROM attempts WHERE run_id = ? ORDER BY attempt`,
          )
          .all(runId) as StoredAttempt[];
      } finally {
        db.close();
      }
    },
  },
);
