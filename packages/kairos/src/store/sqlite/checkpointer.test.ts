import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Checkpointer, FALLBACK_PAGES, WalCheckpoints } from './checkpointer.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function database(): { db: Database.Database; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'kairos-checkpoints-'));
  dirs.push(dir);
  const path = join(dir, 'kairos.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)');
  return { db, path };
}

/** Writes `pages` 4-KiB pages' worth of rows, one transaction per row, as the node's commits do. */
function write(db: Database.Database, pages: number): void {
  const insert = db.prepare('INSERT INTO t (body) VALUES (?)');
  for (let i = 0; i < pages; i++) insert.run(Buffer.alloc(3000, i));
}

async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

// The log's pages reach the database file through the thread's checkpoints, while the node's own
// connection checkpoints only past FALLBACK_PAGES: the file grows though the main connection does
// not checkpoint.
describe('SQLite: write-ahead log checkpoints off the event loop', () => {
  it('start once the log grows and copy it into the database file from their own thread', async () => {
    const { db, path } = database();
    // No checkpoint of the main connection until the thread starts (then it keeps FALLBACK_PAGES).
    db.pragma('wal_autocheckpoint = 0');
    const checkpoints = new WalCheckpoints(db, path);
    try {
      const before = statSync(path).size;
      write(db, 600); // a log of several MiB
      expect(statSync(path).size).toBe(before);
      expect(await until(() => checkpoints.started, 30_000)).toBe(true);
      expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(FALLBACK_PAGES);
      expect(await until(() => statSync(path).size > 1_500_000, 30_000)).toBe(true);
    } finally {
      await checkpoints.stop();
      db.close();
    }
    const reopened = new Database(path, { readonly: true });
    expect(reopened.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 600 });
    reopened.close();
  }, 90_000);

  it('start no thread for a store that writes little, and stop at once', async () => {
    const { db, path } = database();
    // The log is watched by a timer: fake time lets it look a few times without waiting.
    vi.useFakeTimers();
    try {
      const checkpoints = new WalCheckpoints(db, path);
      write(db, 10);
      vi.advanceTimersByTime(5_000);
      expect(checkpoints.started).toBe(false);
      await checkpoints.stop();
    } finally {
      vi.useRealTimers();
      db.close();
    }
  });

  it('give the checkpoints back to the node’s connection, with a warning, when the thread fails', async () => {
    const { db, path } = database();
    const warnings: string[] = [];
    const onWarning = (warning: Error & { code?: string }) => {
      if (warning.code === 'KAIROS_SQLITE_CHECKPOINTS') warnings.push(warning.message);
    };
    process.on('warning', onWarning);
    // The thread's connection cannot open a file that is not there.
    const checkpointer = new Checkpointer(db, `${path}.missing`);
    try {
      expect(await until(() => warnings.length > 0, 30_000)).toBe(true);
      expect(warnings[0]).toContain("back on the node's thread");
      expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    } finally {
      process.off('warning', onWarning);
      await checkpointer.stop();
      db.close();
    }
  }, 60_000);
});
