import pg from 'pg';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob } from '../../core/job.ts';
import { describeStoreConformance } from '../conformance.ts';
import { PostgresStore } from './postgres-store.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

afterAll(dropTestSchemas);

// The real PostgreSQL of the machine, a schema of its own per test.
describeStoreConformance(
  'postgres',
  async () => new PostgresStore({ connectionString: testDatabaseUrl(), schema: testSchema() }),
);

// A connection that PostgreSQL ends (a restart, a failover, `pg_terminate_backend`) must cost the node
// at most the statement in flight: neither a client checked out of the pool nor the LISTEN connection
// may end the process with an unhandled 'error' event.
describe('PostgreSQL store: connections ended by the server', () => {
  const T0 = Date.UTC(2026, 0, 1);
  const job = (name: string) => compileJob({ name, handler: 'h', trigger: { kind: 'manual' } });
  let schema: string;
  let admin: pg.Client;
  let stores: PostgresStore[];

  /** A store whose connections carry `application_name`, so that the test ends only its own. */
  async function open(name: string): Promise<PostgresStore> {
    const url = new URL(testDatabaseUrl());
    url.searchParams.set('application_name', name);
    const store = new PostgresStore({ connectionString: url.toString(), schema });
    stores.push(store);
    await store.migrate();
    return store;
  }

  /** Backends of `name` whose last statement matches `query` (a LIKE pattern). */
  async function backends(name: string, query = '%'): Promise<number[]> {
    const { rows } = await admin.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE $2',
      [name, query],
    );
    return rows.map((r) => r.pid);
  }

  async function until<T>(find: () => Promise<T | undefined>, what: string): Promise<T> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = await find();
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  beforeEach(async () => {
    schema = testSchema();
    stores = [];
    admin = new pg.Client({ connectionString: testDatabaseUrl() });
    await admin.connect();
  });
  afterEach(async () => {
    await admin.end();
    for (const store of stores) await store.close();
  });

  it('a transaction whose connection is terminated fails with STORE_UNAVAILABLE; the store goes on', async () => {
    const name = `${schema}_tx`;
    const store = await open(name);
    const created = await store.createJob(job('j'), null, T0);
    // Hold the runs table so that the store's transaction waits inside it, on a checked-out client.
    const holder = new pg.Client({ connectionString: testDatabaseUrl() });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE "${schema}".runs IN ACCESS EXCLUSIVE MODE`);
      const enqueued = store.enqueueRuns(created.id, [{ params: {}, priority: 0 }], T0);
      const outcome = enqueued.then(
        () => 'enqueued',
        (error: { code?: string }) => error.code,
      );
      const [pid] = await until(async () => {
        const { rows } = await admin.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
          [name],
        );
        return rows.length ? rows.map((r) => r.pid) : undefined;
      }, 'the transaction to wait for the lock');
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      expect(await outcome).toBe('STORE_UNAVAILABLE');
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    // The pool replaced the connection it lost.
    const [id] = await store.enqueueRuns(created.id, [{ params: {}, priority: 0 }], T0);
    expect((await store.getRun(id!))?.status).toBe('queued');
  });

  it('the LISTEN connection reconnects after it is terminated, and events from other nodes arrive again', async () => {
    const name = `${schema}_listen`;
    const listening = await open(name);
    const other = await open(`${schema}_other`);
    const [first] = await until(async () => {
      const pids = await backends(name, 'LISTEN %');
      return pids.length ? pids : undefined;
    }, 'the LISTEN connection');
    await admin.query('SELECT pg_terminate_backend($1)', [first]);
    await until(async () => {
      const pids = (await backends(name, 'LISTEN %')).filter((pid) => pid !== first);
      return pids.length ? pids : undefined;
    }, 'a new LISTEN connection');

    // The reconnected store tells its own loops `jobs`; runs made by the other node come as `runs`.
    const created = await other.createJob(job('elsewhere'), null, T0);
    const events: string[] = [];
    const unsubscribe = listening.subscribe((event) => events.push(event.type));
    try {
      await other.enqueueRuns(created.id, [{ params: {}, priority: 0 }], T0);
      await until(async () => (events.includes('runs') ? true : undefined), "the other node's event");
    } finally {
      unsubscribe();
    }
  });
});
