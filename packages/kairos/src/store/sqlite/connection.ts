// The SQLite connection every section of the store takes: the database opened with its pragmas,
// the migrations, the statement cache, the error wrapper and the change events.

import { EventEmitter } from 'node:events';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { KairosError, StoreUnavailableError } from '../../errors.ts';
import { VERSION } from '../../version.ts';
import { planMigrations, readMigrations } from '../migrations.ts';
import { LeaseLostError, type StoreEvent } from '../store.ts';

export type Statement = Database.Statement<unknown[], unknown>;

/** What a section of the store borrows from it: the database, its statement cache, its error wrapper, its events. */
export interface SqliteConnection {
  readonly db: Database.Database;
  /** The prepared statement of `text`, prepared once per connection. */
  sql(text: string): Statement;
  /**
   * Runs one operation. Transient driver errors (busy, I/O, disk full) become STORE_UNAVAILABLE;
   * any other driver error is a bug and keeps its cause under the operation's name.
   */
  run<T>(operation: string, body: () => T): T;
  emit(event: StoreEvent): void;
  subscribe(listener: (event: StoreEvent) => void): () => void;
}

/** Opens (creating it if need be) the database at `path`, or an in-memory one for `:memory:`. */
export function openConnection(path: string): SqliteConnection {
  if (path !== ':memory:') createPrivateFile(path);
  const db = new Database(path);
  // Retention frees pages; a database created incremental can give them back (reclaimSpace). The
  // mode is chosen before the first table: on an older database this changes nothing.
  db.pragma('auto_vacuum = INCREMENTAL');
  db.pragma('journal_mode = WAL');
  // NORMAL is durable across process crashes in WAL mode; only an OS crash can lose the last commits.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const statements = new Map<string, Statement>();
  return {
    db,
    sql(text: string): Statement {
      let statement = statements.get(text);
      if (!statement) {
        statement = db.prepare(text);
        statements.set(text, statement);
      }
      return statement;
    },
    run<T>(operation: string, body: () => T): T {
      try {
        return body();
      } catch (error) {
        if (error instanceof KairosError || error instanceof LeaseLostError) throw error;
        if (
          error instanceof Database.SqliteError &&
          /^SQLITE_(BUSY|IOERR|FULL|CANTOPEN|LOCKED)/.test(error.code)
        ) {
          throw new StoreUnavailableError(operation, error);
        }
        throw new Error(`sqlite ${operation}: ${(error as Error).message}`, { cause: error });
      }
    },
    emit(event: StoreEvent): void {
      events.emit('event', event);
    },
    subscribe(listener: (event: StoreEvent) => void): () => void {
      events.on('event', listener);
      return () => events.off('event', listener);
    },
  };
}

export function migrate(c: SqliteConnection): void {
  const db = c.db;
  db.transaction(() => {
    // user_version is the highest migration applied; the write lock of IMMEDIATE keeps another
    // process on the same file from migrating at the same time.
    const current = db.pragma('user_version', { simple: true }) as number;
    const hasMeta = db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_meta'")
      .get();
    const row = hasMeta
      ? (db
          .prepare('SELECT schema_version, min_code_version, migrated_by FROM schema_meta WHERE id = 1')
          .get() as { schema_version: number; min_code_version: string; migrated_by: string } | undefined)
      : undefined;
    const plan = planMigrations({
      known: readMigrations('sqlite'),
      applied: Array.from({ length: current }, (_, i) => i + 1),
      meta: row
        ? {
            schemaVersion: row.schema_version,
            minCodeVersion: row.min_code_version,
            migratedBy: row.migrated_by,
          }
        : null,
      codeVersion: VERSION,
    });
    for (const migration of plan.pending) {
      db.exec(migration.sql);
      db.pragma(`user_version = ${migration.version}`);
    }
    if (plan.meta)
      db.prepare(
        `INSERT INTO schema_meta (id, schema_version, min_code_version, migrated_by) VALUES (1, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET schema_version = excluded.schema_version,
                 min_code_version = excluded.min_code_version, migrated_by = excluded.migrated_by`,
      ).run(plan.meta.schemaVersion, plan.meta.minCodeVersion, plan.meta.migratedBy);
  }).immediate();
}

export function close(c: SqliteConnection): void {
  c.db.close();
}

/**
 * Creates the database file readable by this user only (0600), in a folder of the same kind when
 * the folder is new (0700). SQLite gives the `-wal` and `-shm` files the database file's mode; the
 * ones an older version left are tightened too.
 */
function createPrivateFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, 0o600);
}
