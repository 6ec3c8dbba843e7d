// A fresh PostgreSQL database per contestant run, on the machine's server (BENCH_DATABASE_URL or
// postgres://postgres@127.0.0.1:5432/postgres).
import pg from 'pg';

export const SERVER_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
let made = 0;

/** A database made for one run: its URL, a small pool for the harness's counts, and how to drop it. */
export interface FreshDatabase {
  url: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

/** A client of the server's whose lost connection fails its statement instead of ending the harness
 * (pg.Client emits 'error' when its connection ends, whatever it was doing). */
export function serverClient(url = SERVER_URL): pg.Client {
  const client = new pg.Client({ connectionString: url });
  client.on('error', (error) => console.error(`bench database client: ${error.message}`));
  return client;
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = serverClient();
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Creates an empty database named after `prefix` and this process. */
export async function createDatabase(prefix: string): Promise<FreshDatabase> {
  const name = `bench_${prefix.replace(/\W/g, '_')}_${process.pid}_${made++}`;
  await admin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
  // An idle client whose connection ends (a server restart) must not end the harness.
  pool.on('error', (error) => console.error(`bench pool: ${error.message}`));
  // `pool.end()` resolves once it has asked its clients to end, before their connections have closed:
  // a DROP … WITH (FORCE) right after it would terminate them (and end the harness, had the pool no
  // error listener). drop() waits for every connection to close first.
  const closed: Promise<void>[] = [];
  pool.on('connect', (client) => closed.push(new Promise((resolve) => client.once('end', () => resolve()))));
  return {
    url: url.toString(),
    pool,
    async drop() {
      await pool.end();
      await Promise.all(closed);
      await admin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/** The PostgreSQL settings that bear on a queue's speed and durability, as the live server reports them. */
export const POSTGRES_SETTINGS = [
  'server_version',
  'synchronous_commit',
  'fsync',
  'full_page_writes',
  'wal_level',
  'wal_sync_method',
  'commit_delay',
  'shared_buffers',
  'work_mem',
  'effective_cache_size',
  'max_wal_size',
  'checkpoint_timeout',
  'autovacuum',
  'autovacuum_naptime',
  'max_connections',
  'jit',
  'shared_preload_libraries',
] as const;

/** The server's version and {@link POSTGRES_SETTINGS}, read from the live server. */
export async function postgresInfo(): Promise<Record<string, string>> {
  return admin(async (client) => {
    const { rows } = await client.query<{ name: string; value: string }>(
      'SELECT name, current_setting(name) AS value FROM unnest($1::text[]) AS name',
      [POSTGRES_SETTINGS],
    );
    return Object.fromEntries(rows.map((row) => [row.name, row.value]));
  });
}
