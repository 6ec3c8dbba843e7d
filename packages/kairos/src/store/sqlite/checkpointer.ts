// Checkpoints of the SQLite write-ahead log on a thread of their own.
//
// In WAL mode a commit appends the pages it changed to the `-wal` file; a checkpoint copies them back
// into the database file and, with synchronous=NORMAL, syncs the log before and the database after.
// SQLite runs one automatically in the commit that takes the log past `wal_autocheckpoint` pages
// (1,000 by default): on the node's one thread, whose event loop then waits for two fsyncs and the
// copy. Here a second connection, on a worker thread, checkpoints every `everyMs` in PASSIVE mode
// (it copies what no reader still needs, never waits for the writer), and the node's connection
// checkpoints itself only past FALLBACK_PAGES, should that thread fall behind; should it fail, the
// node's connection goes back to SQLite's own 1,000 pages (and warns once). The thread
// starts once the log passes WATCH_BYTES (a store that writes little, a test's or a command's, never
// starts one).

import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

/** The node's own connection checkpoints only past this many log pages (~40 MiB of 4-KiB pages). */
export const FALLBACK_PAGES = 10_000;

/** SQLite's own threshold, which the node's connection goes back to should the thread fail. */
const SQLITE_DEFAULT_PAGES = 1000;

function warn(path: string, message: string): void {
  process.emitWarning(`SQLite checkpoints of ${path} are back on the node's thread: ${message}`, {
    code: 'KAIROS_SQLITE_CHECKPOINTS',
  });
}

/** The log's size past which the thread starts: a quarter of SQLite's own 1,000-page checkpoint. */
const WATCH_BYTES = 1 << 20;
const WATCH_EVERY_MS = 500;

// The thread's code, in CommonJS: no file to find next to this one, in source or built.
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
}, workerData.everyMs);
parentPort.on('message', () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

/** Starts a {@link Checkpointer} for the database at `path` once its log grows past WATCH_BYTES. */
export class WalCheckpoints {
  #checkpointer: Checkpointer | null = null;
  readonly #watch: NodeJS.Timeout;

  constructor(db: Database.Database, path: string) {
    this.#watch = setInterval(() => {
      try {
        if ((statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0) <= WATCH_BYTES) return;
        clearInterval(this.#watch);
        this.#checkpointer = new Checkpointer(db, path);
      } catch (error) {
        // SQLite's own checkpoints go on as before; a timer's throw would end the process.
        clearInterval(this.#watch);
        warn(path, `the checkpoint thread did not start: ${(error as Error).message}`);
      }
    }, WATCH_EVERY_MS);
    this.#watch.unref();
  }

  /** Whether the thread runs. */
  get started(): boolean {
    return this.#checkpointer !== null;
  }

  async stop(): Promise<void> {
    clearInterval(this.#watch);
    await this.#checkpointer?.stop();
  }
}

/** A thread that checkpoints the log of the database at `path`, until `stop()`. */
export class Checkpointer {
  readonly #worker: Worker;
  readonly #exited: Promise<void>;

  #stopping = false;

  constructor(db: Database.Database, path: string, everyMs = 250) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.#worker = new Worker(THREAD, { eval: true, workerData: { driver, path, everyMs } });
    db.pragma(`wal_autocheckpoint = ${FALLBACK_PAGES}`);
    let failed = false;
    // The thread failed: the node's connection checkpoints as SQLite does by default again.
    const fail = (message: string) => {
      if (failed) return;
      failed = true;
      try {
        if (db.open) db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_PAGES}`);
      } catch {
        // The store is closing.
      }
      warn(path, message);
    };
    this.#worker.on('message', (message: { error?: string }) => {
      if (message.error) fail(message.error);
    });
    this.#worker.on('error', (error) => fail(error.message));
    this.#exited = new Promise((resolve) =>
      this.#worker.once('exit', () => {
        if (!this.#stopping) fail('the checkpoint thread exited');
        resolve();
      }),
    );
    // A store left open does not keep the process alive for its checkpoints.
    this.#worker.unref();
  }

  /** Stops the thread and waits for it to close its connection. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#worker.ref();
    this.#worker.postMessage('stop');
    await this.#exited;
  }
}
