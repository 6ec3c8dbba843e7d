import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers.ts';
import { freePort, spawnKairos, waitFor } from '../../../test/processes.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../../../test/test-database.ts';
import { KairosError } from '../../errors.ts';
import { PostgresStore } from './postgres-store.ts';

// A real PgBouncer between the node and PostgreSQL (scripts/ensure-test-tools.mjs installs the
// Debian package). Kairos needs session state, so transaction pooling must be refused at start.
const PGBOUNCER = '/usr/sbin/pgbouncer';
const bouncers: ChildProcess[] = [];
const roles: string[] = [];

afterAll(async () => {
  for (const bouncer of bouncers) bouncer.kill('SIGKILL');
  await dropTestSchemas();
  const client = new pg.Client({ connectionString: testDatabaseUrl() });
  await client.connect();
  try {
    for (const role of roles) await client.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
  } finally {
    await client.end();
  }
});

/** Starts a PgBouncer (as the postgres user: it refuses root) in front of the test server; answers its URL. */
async function startPgBouncer(mode: 'transaction' | 'session', extra: string[] = [], users = ['postgres']) {
  expect(existsSync(PGBOUNCER), `${PGBOUNCER} (Debian package pgbouncer)`).toBe(true);
  const dir = tempDir('kairos-pgbouncer-');
  const port = await freePort();
  const server = new URL(testDatabaseUrl());
  writeFileSync(join(dir, 'users.txt'), users.map((user) => `"${user}" ""\n`).join(''));
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${server.hostname} port=${server.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'users.txt')}`,
      `pool_mode = ${mode}`,
      ...extra,
      '',
    ].join('\n'),
  );
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const id = (flag: string): number => Number(execFileSync('id', [flag, 'postgres']).toString());
    chownSync(dir, id('-u'), id('-g'));
  }
  const bouncer = spawn(PGBOUNCER, [...(asRoot ? ['-u', 'postgres'] : []), join(dir, 'pgbouncer.ini')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  bouncers.push(bouncer);
  let output = '';
  bouncer.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  bouncer.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  await waitFor(async () => output.includes('process up'), 30_000, `pgbouncer to start: ${output}`);
  server.host = `127.0.0.1:${port}`;
  return server;
}

/** Tables and schemas of `public` and `schema`, read on a direct connection. */
async function tablesIn(...schemas: string[]): Promise<string[]> {
  const client = new pg.Client({ connectionString: testDatabaseUrl() });
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT table_schema || '.' || table_name AS name FROM information_schema.tables WHERE table_schema = ANY($1)
       UNION ALL SELECT nspname FROM pg_namespace WHERE nspname = ANY($1)`,
      [schemas],
    );
    return rows.map((row) => row.name as string);
  } finally {
    await client.end();
  }
}

async function refusal(store: PostgresStore): Promise<KairosError> {
  try {
    const error = await store.migrate().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KairosError);
    return error as KairosError;
  } finally {
    await store.close();
  }
}

describe('PostgreSQL through PgBouncer', () => {
  const publicBefore = tablesIn('public');

  /** A `kairos server` on that store exits 1 with the error, and writes nothing anywhere. */
  async function expectServerRefusal(url: URL | string, schema: string, message: string) {
    const child = spawnKairos(['server', '--port', '0'], {
      KAIROS_DATABASE_URL: `${url}?schema=${schema}`,
      KAIROS_ADMIN_TOKEN: 'a',
      KAIROS_WORKER_TOKEN: 'w',
    });
    expect(await child.exited).toBe(1);
    expect(child.output()).toContain('error STORE_UNSUPPORTED: ');
    expect(child.output()).toContain(message);
    expect(await tablesIn(schema)).toEqual([]);
    expect(await tablesIn('public')).toEqual(await publicBefore);
  }

  it('in transaction mode with its defaults (the startup parameter refused): refused at start', async () => {
    const url = await startPgBouncer('transaction');
    const schema = testSchema('kairos_pgbouncer');
    const error = await refusal(new PostgresStore({ connectionString: url.toString(), schema }));
    expect(error.code).toBe('STORE_UNSUPPORTED');
    expect(error.message).toContain('unsupported startup parameter: options');
    expect(error.message).toContain('PgBouncer');
    expect(error.message).toContain('session');
    expect(await tablesIn(schema)).toEqual([]);
    expect(await tablesIn('public')).toEqual(await publicBefore);

    await expectServerRefusal(url, schema, 'unsupported startup parameter: options');
  });

  it('in transaction mode with ignore_startup_parameters = options (the schema silently dropped): refused at start', async () => {
    const url = await startPgBouncer('transaction', ['ignore_startup_parameters = options']);
    const schema = testSchema('kairos_pgbouncer');
    const error = await refusal(new PostgresStore({ connectionString: url.toString(), schema }));
    expect(error.code).toBe('STORE_UNSUPPORTED');
    expect(error.message).toContain(`search_path is "$user", public, not ${schema}`);
    expect(error.message).toContain('PgBouncer');
    expect(await tablesIn(schema)).toEqual([]);
    expect(await tablesIn('public')).toEqual(await publicBefore);

    await expectServerRefusal(url, schema, 'search_path is');
  });

  it('in transaction mode with the settings on the role: refused at start (two sessions share one backend)', async () => {
    const schema = testSchema('kairos_pgbouncer');
    const role = await roleWithSettings(schema);
    const url = await startPgBouncer('transaction', ['ignore_startup_parameters = options'], [role]);
    url.username = role;
    const error = await refusal(new PostgresStore({ connectionString: url.toString(), schema }));
    expect(error.code).toBe('STORE_UNSUPPORTED');
    expect(error.message).toContain('transaction pooling');
    expect(await tablesIn(schema)).toEqual([]);
  });

  it('in session mode (ignore_startup_parameters = options, the settings on the role): the node migrates and runs', async () => {
    const schema = testSchema('kairos_pgbouncer');
    const role = await roleWithSettings(schema);
    const url = await startPgBouncer('session', ['ignore_startup_parameters = options'], [role]);
    url.username = role;
    const store = new PostgresStore({ connectionString: url.toString(), schema });
    try {
      await store.migrate();
      expect(await tablesIn(schema)).toContain(`${schema}.kairos_migrations`);
      expect(await tablesIn('public')).toEqual(await publicBefore);
    } finally {
      await store.close();
    }
  });
});

/** A login role whose sessions carry the schema and the timeout the store asks for (ALTER ROLE … SET). */
async function roleWithSettings(schema: string): Promise<string> {
  const role = `kairos_pgb_${process.pid}_${roles.length}`;
  roles.push(role);
  const client = new pg.Client({ connectionString: testDatabaseUrl() });
  await client.connect();
  try {
    const database = new URL(testDatabaseUrl()).pathname.slice(1) || 'postgres';
    await client.query(`CREATE ROLE ${role} LOGIN`);
    await client.query(`GRANT CREATE ON DATABASE "${database}" TO ${role}`);
    await client.query(`ALTER ROLE ${role} SET search_path = "${schema}"`);
    await client.query(`ALTER ROLE ${role} SET idle_in_transaction_session_timeout = 5000`);
  } finally {
    await client.end();
  }
  return role;
}
