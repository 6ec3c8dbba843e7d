// The connection of the PostgreSQL store: the pool, migrations, the named-statement wrapper that
// retries a statement PostgreSQL aborted and wraps driver errors with the operation's name,
// transactions, and change events (LISTEN/NOTIFY). Every section of the store (jobs.ts, runs.ts …)
// takes a PostgresConnection as its first parameter.

import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { KairosError, StoreUnavailableError } from '../../errors.ts';
import { VERSION } from '../../version.ts';
import { planMigrations, readMigrations, type SchemaMeta } from '../migrations.ts';
import { LeaseLostError, type StoreEvent } from '../store.ts';

export interface PostgresStoreOptions {
  /** `postgres://user@host:port/database`. */
  connectionString: string;
  /** A schema of its own (created by `migrate()`); default: the connection's search path. */
  schema?: string;
  /** Pool size. Default 10. */
  poolSize?: number;
  /**
   * PostgreSQL ends a session of this node that sits idle inside a transaction for longer, releasing
   * its locks (`idle_in_transaction_session_timeout`): a node frozen mid-fire (a stopped process, a
   * paused VM) must not hold its partition leases locked. The node passes its partition lease.
   * Default 5,000 ms; 0 turns it off.
   */
  idleInTransactionTimeoutMs?: number;
}

/** The channel of change events, shared by every schema of the server. */
export const CHANNEL = 'kairos_events';

/** What to do when the connection cannot carry a node's session (STORE_UNSUPPORTED). */
const POOLER_ADVICE =
  'Kairos keeps session state (advisory locks, LISTEN/NOTIFY, search_path and session settings), which transaction pooling does not carry: connect the node directly to PostgreSQL, or through a pool in session mode (PgBouncer: pool_mode = session, ignore_startup_parameters = options, and the settings on the role with ALTER ROLE … SET); see docs/operations.md, "Connection poolers"';

/** The schema's `schema_meta` row; null before the migration that creates it. */
async function readSchemaMeta(client: pg.PoolClient): Promise<SchemaMeta | null> {
  if (!(await client.query("SELECT to_regclass('schema_meta') AS t")).rows[0].t) return null;
  const [row] = (
    await client.query('SELECT schema_version, min_code_version, migrated_by FROM schema_meta WHERE id = 1')
  ).rows;
  return row
    ? { schemaVersion: row.schema_version, minCodeVersion: row.min_code_version, migratedBy: row.migrated_by }
    : null;
}

/** The nodes whose membership lease has not ended, on the database's clock (none before the table exists). */
async function readLiveNodes(client: pg.PoolClient): Promise<Array<{ id: string; version: string }>> {
  if (!(await client.query("SELECT to_regclass('nodes') AS t")).rows[0].t) return [];
  return (
    await client.query(
      'SELECT id, version FROM nodes WHERE expires_at > extract(epoch FROM clock_timestamp()) * 1000',
    )
  ).rows;
}
const MIGRATION_LOCK = 7_245_100_001;
/** How long a migration waits for one table lock (ms) before it rolls back and tries again. */
const MIGRATION_LOCK_TIMEOUT = 2000;
/** Tries of a migration that met running transactions' locks, a few minutes in all at most. */
const MIGRATION_TRIES = 40;

/** A deadlock (40P01) or a lock wait past lock_timeout (55P03): the migration rolled back whole. */
function isLockConflict(error: unknown): boolean {
  const code = (error as { code?: string } | undefined)?.code;
  return code === '40P01' || code === '55P03';
}

/**
 * The pool of one store, and what every section borrows from it: one-statement queries and
 * transactions (both retried and wrapped), and change events (this process at once, the other
 * nodes through LISTEN/NOTIFY). int8 and jsonb come back unparsed-to-number / as text so that rows
 * map the same way as SQLite's.
 */
export class PostgresConnection {
  readonly pool: pg.Pool;
  private readonly events = new EventEmitter();
  /** This process: its own notifications come back to it, and are skipped. */
  readonly origin = randomUUID();
  private listener: pg.Client | undefined;
  /**
   * Whether another node may be listening: false once this node's heartbeat found it alone, true
   * again at a heartbeat that counts another node or at a notification from one of its schema (a
   * node announces itself when its first heartbeat finds others). Events are NOTIFYed only then: a commit that
   * sends a NOTIFY takes PostgreSQL's one notify lock, for the whole cluster, and holds it until
   * its WAL flush, so every NOTIFYing commit, of any database on the server, waits for the one
   * before it. A node alone skips that on each trigger. A node that joins may miss events until
   * the others hear of it, which costs its polls at most one backstop interval, never a run.
   */
  peers = true;
  /** Whether this node told the others it is there (cluster.ts, heartbeatNode). */
  announced = false;
  private listening = false;
  private closed = false;

  /** `idle_in_transaction_session_timeout` that this node's sessions ask for; 0: none. */
  private readonly idleMs: number;
  /** The startup parameter `options` that sets this node's session settings. */
  private readonly startupOptions: string | undefined;

  constructor(readonly options: PostgresStoreOptions) {
    this.idleMs = Math.ceil(options.idleInTransactionTimeoutMs ?? 5000);
    const settings = [
      ...(options.schema ? [`-c search_path=${quoteIdent(options.schema)}`] : []),
      ...(this.idleMs > 0 ? [`-c idle_in_transaction_session_timeout=${this.idleMs}`] : []),
    ];
    this.startupOptions = settings.length > 0 ? settings.join(' ') : undefined;
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? 10,
      options: this.startupOptions,
      types: { getTypeParser },
      connectionTimeoutMillis: 5000,
    });
    // A client that loses its connection must not crash the node. The pool listens for errors of idle
    // clients only: a checked-out one (inside a transaction) gets a listener of its own; its statement
    // fails (STORE_UNAVAILABLE), the pool drops it when it is released, and the next query reconnects.
    this.pool.on('error', () => {});
    this.pool.on('connect', (client) => client.on('error', () => {}));
    this.events.setMaxListeners(0);
  }

  /**
   * Applies the pending migrations in one transaction. On a live cluster (a rolling upgrade) the
   * migration's table locks meet the running nodes' transactions: it waits at most
   * {@link MIGRATION_LOCK_TIMEOUT} for each lock, so that a queued ALTER does not stall every query
   * of its table behind it, and a lock timeout or a deadlock rolls the migration back whole and
   * runs it again a little later, for up to {@link MIGRATION_TRIES} tries.
   */
  async migrate(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.migrateOnce();
        break;
      } catch (error) {
        if (attempt >= MIGRATION_TRIES || !isLockConflict((error as { cause?: unknown }).cause)) throw error;
        await new Promise((resolve) =>
          setTimeout(resolve, Math.min(5000, 100 * 2 ** attempt) * Math.random()),
        );
      }
    }
    await this.listen();
  }

  private async migrateOnce(): Promise<void> {
    await this.withClient('migrate', async (client) => {
      await this.checkSession(client);
      await client.query('BEGIN');
      try {
        await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
        await client.query(`SET LOCAL lock_timeout = ${MIGRATION_LOCK_TIMEOUT}`);
        // Under the lock: two nodes that start together would race `IF NOT EXISTS`, and one of them
        // fail on pg_namespace's unique index.
        if (this.options.schema)
          await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.options.schema)}`);
        await client.query(
          'CREATE TABLE IF NOT EXISTS kairos_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
        );
        const applied = (await client.query('SELECT version FROM kairos_migrations')).rows.map(
          (r) => r.version as number,
        );
        const plan = planMigrations({
          known: readMigrations('postgres'),
          applied,
          meta: await readSchemaMeta(client),
          codeVersion: VERSION,
          liveNodes: await readLiveNodes(client),
        });
        for (const migration of plan.pending) {
          await client.query(migration.sql);
          await client.query('INSERT INTO kairos_migrations (version, name) VALUES ($1, $2)', [
            migration.version,
            migration.name,
          ]);
        }
        if (plan.meta)
          await client.query(
            `INSERT INTO schema_meta (id, schema_version, min_code_version, migrated_by) VALUES (1, $1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET schema_version = $1, min_code_version = $2, migrated_by = $3`,
            [plan.meta.schemaVersion, plan.meta.minCodeVersion, plan.meta.migratedBy],
          );
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  }

  /**
   * Refuses (STORE_UNSUPPORTED), before anything is written, a connection that cannot carry this
   * node's session: the schema and settings it asked for are missing (a pooler dropped the startup
   * parameter), or two of its sessions share one server process (transaction pooling: advisory locks,
   * LISTEN and session settings would land on whichever session serves the next transaction).
   */
  private async checkSession(client: pg.PoolClient): Promise<void> {
    const asked = (): string => `this node asked for ${this.askedSettings()}`;
    const row = (
      await client.query(
        `SELECT current_setting('search_path') AS search_path, pg_backend_pid() AS pid,
           (SELECT setting FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout') AS idle_ms`,
      )
    ).rows[0] as { search_path: string; pid: number; idle_ms: string };
    const wrong: string[] = [];
    const schema = this.options.schema;
    if (schema && !searchPathIs(row.search_path, schema))
      wrong.push(`search_path is ${row.search_path}, not ${schema}`);
    if (this.idleMs > 0 && Number(row.idle_ms) !== this.idleMs)
      wrong.push(`idle_in_transaction_session_timeout is ${row.idle_ms} ms, not ${this.idleMs} ms`);
    if (wrong.length > 0)
      throw new KairosError(
        'STORE_UNSUPPORTED',
        `the database session does not carry the settings this node set in the startup parameter "options" (${wrong.join('; ')}): a connection pooler dropped them (PgBouncer with ignore_startup_parameters = options?); nothing was written. ${POOLER_ADVICE} (${asked()})`,
      );
    // A second session, inside a transaction, while the first is idle: a pooler in transaction
    // mode hands it the server process the first just used (or the first moves to another one).
    const other = new pg.Client({
      connectionString: this.options.connectionString,
      options: this.startupOptions,
      connectionTimeoutMillis: 5000,
    });
    other.on('error', () => {});
    let shared: boolean;
    try {
      await other.connect();
      await other.query('BEGIN');
      const otherPid = (await other.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      const pidAgain = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      shared = otherPid === row.pid || pidAgain !== row.pid;
      await other.query('ROLLBACK');
    } finally {
      await other.end().catch(() => undefined);
    }
    if (shared)
      throw new KairosError(
        'STORE_UNSUPPORTED',
        `two sessions of this node share one PostgreSQL server process: a connection pooler in transaction (or statement) pooling mode sits between the node and PostgreSQL (PgBouncer pool_mode = transaction?); nothing was written. ${POOLER_ADVICE} (${asked()})`,
      );
  }

  /** The settings this node's sessions ask for, for messages. */
  private askedSettings(): string {
    const settings = [
      ...(this.options.schema ? [`search_path = ${this.options.schema}`] : []),
      ...(this.idleMs > 0 ? [`idle_in_transaction_session_timeout = ${this.idleMs}`] : []),
    ];
    return settings.length > 0 ? settings.join(', ') : 'no session settings';
  }

  /** STORE_UNSUPPORTED for a connection that the server (a pooler) refused for a startup parameter. */
  private refusedParameter(error: unknown): KairosError | undefined {
    const message = (error as Error | undefined)?.message ?? '';
    if (!/unsupported startup parameter/i.test(message)) return undefined;
    return new KairosError(
      'STORE_UNSUPPORTED',
      `the server refused this node's connection: ${message} (a connection pooler such as PgBouncer refuses the startup parameter "options" that sets the node's session settings); nothing was written. ${POOLER_ADVICE} (this node asks for ${this.askedSettings()})`,
      undefined,
      { cause: error },
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.listener?.end().catch(() => undefined);
    await this.pool.end();
  }

  // Notifications ------------------------------------------------------------

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.events.on('event', listener);
    return () => this.events.off('event', listener);
  }

  /** Tells this process at once and the other nodes through NOTIFY (delivered after commit). */
  async notify(events: StoreEvent[]): Promise<void> {
    if (events.length === 0) return;
    this.emit(events);
    if (!this.peers) return;
    // Best effort, and not awaited: the change is committed and this node's waiters already know;
    // a lost notification costs other nodes at most one backstop interval, never correctness.
    void this.pool
      .query('SELECT pg_notify($1, $2)', [
        CHANNEL,
        JSON.stringify({ origin: this.origin, schema: this.options.schema ?? null, events }),
      ])
      .catch(() => undefined);
  }

  /** Tells this process only: for changes whose statement sent the NOTIFY itself. */
  emit(events: StoreEvent[]): void {
    for (const event of events) this.events.emit('event', event);
  }

  /** One dedicated connection LISTENs for other nodes' events; it reconnects by itself. */
  private async listen(): Promise<void> {
    if (this.listening || this.closed) return;
    this.listening = true;
    let delay = 100;
    const connect = async (): Promise<void> => {
      if (this.closed) return;
      const client = new pg.Client({
        connectionString: this.options.connectionString,
        options: this.options.schema ? `-c search_path=${quoteIdent(this.options.schema)}` : undefined,
      });
      client.on('notification', (message) => {
        if (!message.payload) return;
        const { origin, schema, events } = JSON.parse(message.payload) as {
          origin: string;
          schema?: string | null;
          events: StoreEvent[];
        };
        if (origin === this.origin) return;
        // The channel is shared by every schema of the server: another schema's events are another
        // cluster's (a payload without one comes from a node older than this rule: heard as before).
        if (schema !== undefined) {
          if (schema !== (this.options.schema ?? null)) return;
          this.peers = true;
        }
        for (const event of events) this.events.emit('event', event);
      });
      client.on('error', () => {});
      client.on('end', () => {
        if (this.closed) return;
        setTimeout(() => void connect(), delay).unref();
        delay = Math.min(delay * 2, 5000);
      });
      try {
        await client.connect();
        await client.query(`LISTEN ${CHANNEL}`);
        // Closed while connecting: close() ended the previous connection, not this one.
        if (this.closed) {
          await client.end();
          return;
        }
        this.listener = client;
        delay = 100;
        // Whatever happened while we were deaf: let every loop look again.
        this.events.emit('event', { type: 'jobs' } satisfies StoreEvent);
      } catch {
        await client.end().catch(() => undefined);
      }
    };
    await connect();
  }

  // Statements and transactions --------------------------------------------

  /** One statement (its own transaction), retried like {@link transaction} when PostgreSQL aborts it. */
  query<R>(operation: string, text: string, values: unknown[]): Promise<R[]> {
    return this.retrying(operation, async () => preparedQuery<R>(this.pool, operation, text, values));
  }

  /** Runs `work` (one statement), again when PostgreSQL aborted it as a deadlock or serialization failure. */
  async retrying<T>(operation: string, work: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await work();
      } catch (error) {
        if (attempt < RETRIES && isRetryable(error)) {
          await backoff(attempt);
          continue;
        }
        throw wrap(operation, error);
      }
    }
  }

  private async withClient<T>(operation: string, body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.refusedParameter(error) ?? wrap(operation, error);
    }
    try {
      return await body(client);
    } catch (error) {
      throw wrap(operation, error);
    } finally {
      client.release();
    }
  }

  /** BEGIN … COMMIT, retried on deadlock or serialization failure (nothing of it stays until COMMIT). */
  async transaction<T>(operation: string, body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.withClient(operation, async (client) => {
          await client.query('BEGIN');
          try {
            const result = await body(client);
            await client.query('COMMIT');
            return result;
          } catch (error) {
            await client.query('ROLLBACK').catch(() => undefined);
            throw error;
          }
        });
      } catch (error) {
        if (attempt < RETRIES && isRetryable((error as { cause?: unknown }).cause)) {
          await backoff(attempt);
          continue;
        }
        throw error;
      }
    }
  }
}

/** Tries of a statement or transaction that PostgreSQL aborted as a deadlock or serialization failure. */
const RETRIES = 5;

/** A deadlock (40P01) or serialization failure (40001): the work was rolled back whole and can run again. */
function isRetryable(error: unknown): boolean {
  const code = (error as { code?: string } | undefined)?.code;
  return code === '40P01' || code === '40001';
}

/** A few random milliseconds, growing with the try, so that the transactions that collided do not collide again. */
function backoff(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * 2 ** attempt));
}

/** Errors of the connection become STORE_UNAVAILABLE (503); anything else keeps its cause under the operation's name. */
function wrap(operation: string, error: unknown): Error {
  if (error instanceof KairosError || error instanceof LeaseLostError) return error;
  if (error instanceof Error && error.message.startsWith('postgres ')) return error;
  if (isUnavailable(error)) return new StoreUnavailableError(operation, error);
  return new Error(`postgres ${operation}: ${(error as Error).message}`, { cause: error });
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '53400',
]);

function isUnavailable(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  if (code && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true;
  const message = (error as Error).message ?? '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i.test(
    message,
  );
}

function getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  if (oid === 20) return Number; // int8: epoch ms and ids stay below 2^53
  if (oid === 3802 || oid === 114) return (value: string) => value; // jsonb/json as text, like SQLite
  return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
}

/** Whether a session's `search_path` is the one schema `schema` (quoted or not). */
function searchPathIs(searchPath: string, schema: string): boolean {
  const names = searchPath.split(',').map((name) => name.trim().replace(/^"(.*)"$/, '$1'));
  return names.length === 1 && names[0] === schema;
}

function quoteIdent(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name))
    throw new KairosError('VALIDATION_FAILED', `invalid schema name ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/** Hashes of statement texts, which are constants of the store's modules: each is hashed once. */
const hashes = new Map<string, string>();

/**
 * One statement prepared once per connection under a name of its operation and text, then only
 * bound and run: a statement planned anew each time (an unnamed one) costs a large CTE ~1 ms.
 */
export async function preparedQuery<R>(
  db: pg.Pool | pg.PoolClient,
  operation: string,
  text: string,
  values: unknown[],
): Promise<R[]> {
  return (await db.query({ name: `kairos_${operation}_${hash(text)}`, text, values })).rows as R[];
}

export function hash(text: string): string {
  let known = hashes.get(text);
  if (known === undefined) {
    let h = 0;
    for (let i = 0; i < text.length; i++) h = (Math.imul(31, h) + text.charCodeAt(i)) | 0;
    known = (h >>> 0).toString(36);
    hashes.set(text, known);
  }
  return known;
}
