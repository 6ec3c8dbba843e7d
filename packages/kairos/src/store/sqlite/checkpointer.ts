// Checkpoints of the SQLite write-ahead log on a thread of their own.
//
// In WAL mode a commit appends the pages it changed to the `-wal` file; a checkpoint copies them back
// into the database file and, with synchronous=NORMAL, syncs the log before and the database after.
// SQLite runs one automatically in the commit that takes the log past `wal_autocheckpoint` pages
// (1,000 by default): on the node's one thread, whose event loop then waits for two fsyncs and the
// copy. Here a second connection, on a worker thread, checkpoints every `everyMs` in PASSIVE mode
// (it copies what no reader still needs, never waits for the writer), and the node's connection
// checkpoints itself only past FALLBACK_PAGES, should that thread fall behind or stop. The thread
// starts once the log passes WATCH_BYTES (a store that writes little, a test's or a command's, never
// starts one).

import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

/** The node's own connection checkpoints only past this many log pages (~40 MiB of 4-KiB pages). */
export const FALLBACK_PAGES = 10_000;

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
      if ((statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0) <= WATCH_BYTES) return;
      clearInterval(this.#watch);
      this.#checkpointer = new Checkpointer(db, path);
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

  constructor(db: Database.Database, path: string, everyMs = 250) {
    db.pragma(`wal_autocheckpoint = ${FALLBACK_PAGES}`);
    let warned = false;
    const onError = (message: string) => {
      if (warned) return;
      warned = true;
      process.emitWarning(
        `SQLite checkpoints of ${path} fall back to the node's thread (past ${FALLBACK_PAGES} log pages): ${message}`,
        { code: 'KAIROS_SQLITE_CHECKPOINTS' },
      );
    };
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.#worker = new Worker(THREAD, { eval: true, workerData: { driver, path, everyMs } });
    this.#worker.on('message', (message: { error?: string }) => {
      if (message.error) onError(message.error);
    });
    this.#worker.on('error', (error) => onError(error.message));
    this.#exited = new Promise((resolve) => this.#worker.once('exit', () => resolve()));
    // A store left open does not keep the process alive for its checkpoints.
    this.#worker.unref();
  }

  /** Stops the thread and waits for it to close its connection. */
  async stop(): Promise<void> {
    this.#worker.ref();
    this.#worker.postMessage('stop');
    await this.#exited;
  }
}
