import pg from 'pg';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeStoreConformance, type StoredAttempt } from '../../../test/conformance/suite.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../../../test/test-database.ts';
import { compileJob } from '../../core/job.ts';
import { PostgresStore } from './postgres-store.ts';

afterAll(dropTestSchemas);

// The real PostgreSQL of the machine, a schema of its own per test.
let conformanceSchema = '';
describeStoreConformance(
  'postgres',
  async () => {
    conformanceSchema = testSchema();
    return new PostgresStore({ connectionString: testDatabaseUrl(), schema: conformanceSchema });
  },
  {
    // Every write of a row makes a new version of it, with the writing transaction's id as its xmin.
    async runRowVersion(runId) {
      const client = new pg.Client({
        connectionString: testDatabaseUrl(),
        options: `-c search_path=${conformanceSchema}`,
      });
      await client.connect();
      try {
        const { rows } = await client.query<{ xmin: string }>('SELECT xmin::text FROM runs WHERE id = $1', [
          runId,
        ]);
        return rows[0]?.xmin ?? 'none';
      } finally {
        await client.end();
      }
    },
    handsOff: false,
    async attemptRows(runId) {
      const client = new pg.Client({
        connectionString: testDatabaseUrl(),
        options: `-c search_path=${conformanceSchema}`,
      });
      await client.connect();
      try {
        const { rows } = await client.query<StoredAttempt>(
          `SELECT attempt, worker_id AS "workerId", status, started_at::float8 AS "startedAt",
             finished_at::float8 AS "finishedAt"
           FROM attempts WHERE run_id = $1 ORDER BY attempt`,
          [runId],
        );
        return rows;
      } finally {
        await client.end();
      }
    },
  },
);

// Nodes of a new cluster often start together (a deployment of three replicas): each migrates.
describe('PostgreSQL store: migrations of nodes that start together', () => {
  it('every node migrates a new schema, none fails on the race to create it', async () => {
    for (let round = 0; round < 5; round++) {
      const schema = testSchema();
      const stores = [1, 2, 3].map(() => new PostgresStore({ connectionString: testDatabaseUrl(), schema }));
      try {
        const results = await Promise.allSettled(stores.map((store) => store.migrate()));
        expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      } finally {
        await Promise.all(stores.map((store) => store.close()));
      }
    }
  });
});

describe('PostgreSQL store: space upkeep', () => {
  it('says whether autovacuum reuses the space of deleted rows, as the server is set', async () => {
    const store = new PostgresStore({ connectionString: testDatabaseUrl(), schema: testSchema() });
    const direct = new pg.Client({ connectionString: testDatabaseUrl() });
    await direct.connect();
    try {
      await store.migrate();
      const { rows } = await direct.query(
        "SELECT current_setting('autovacuum') = 'on' AND current_setting('track_counts') = 'on' AS on",
      );
      const upkeep = await store.spaceUpkeep();
      expect(upkeep.ok).toBe(rows[0].on);
      expect(upkeep.detail).toMatch(rows[0].on ? /^autovacuum on \(naptime / : /never reused/);
    } finally {
      await direct.end();
      await store.close();
    }
  });
});

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

// A node frozen inside a fire's transaction (SIGSTOP, a paused VM) holds its partition leases FOR
// SHARE: the others must neither wait for it (their own firing would stop) nor wait forever.
describe('PostgreSQL store: a node frozen inside a transaction', () => {
  const T0 = Date.UTC(2026, 0, 1);
  const names = ['trigger/0', 'trigger/1', 'trigger/2'];
  let schema: string;
  let stores: PostgresStore[];

  async function open(idleInTransactionTimeoutMs?: number): Promise<PostgresStore> {
    const store = new PostgresStore({
      connectionString: testDatabaseUrl(),
      schema,
      idleInTransactionTimeoutMs,
    });
    stores.push(store);
    await store.migrate();
    return store;
  }

  /** Begins a transaction on `client` that holds `name` as a fire does, and leaves it open. */
  async function holdAsAFire(client: pg.ClientBase, name: string): Promise<void> {
    await client.query('BEGIN');
    await client.query(`SELECT name FROM "${schema}".leases WHERE name = $1 FOR SHARE`, [name]);
  }

  beforeEach(() => {
    schema = testSchema();
    stores = [];
  });
  afterEach(async () => {
    for (const store of stores) await store.close();
  });

  it('an expired lease still locked by a fire is skipped, not waited for, and taken once the fire ends', async () => {
    const frozen = await open();
    const survivor = await open();
    expect(await frozen.acquireLeases(names, 'frozen', 1000, T0)).toHaveLength(3);
    const holder = new pg.Client({ connectionString: testDatabaseUrl() });
    await holder.connect();
    try {
      await holdAsAFire(holder, 'trigger/1');
      const taken = await survivor.acquireLeases(names, 'survivor', 1000, T0 + 2000);
      expect(taken.map((l) => [l.name, l.owner, l.epoch])).toEqual([
        ['trigger/0', 'survivor', 2],
        ['trigger/2', 'survivor', 2],
      ]);
      await holder.query('ROLLBACK');
      const later = await survivor.acquireLeases(['trigger/1'], 'survivor', 1000, T0 + 3000);
      expect(later.map((l) => [l.name, l.owner, l.epoch])).toEqual([['trigger/1', 'survivor', 2]]);
    } finally {
      await holder.end();
    }
  });

  it("the server ends a store session idle inside a transaction, and with it the session's locks", async () => {
    const frozen = await open(300);
    const survivor = await open();
    expect(await frozen.acquireLeases(names, 'frozen', 1000, T0)).toHaveLength(3);
    // One of the frozen store's own pooled sessions, stopped between two statements of a fire.
    const client = await (frozen as unknown as { c: { pool: pg.Pool } }).c.pool.connect();
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    try {
      await holdAsAFire(client, 'trigger/1');
      expect((await survivor.acquireLeases(['trigger/1'], 'survivor', 1000, T0 + 2000)).length).toBe(0);
      await ended;
      const taken = await survivor.acquireLeases(['trigger/1'], 'survivor', 1000, T0 + 2000);
      expect(taken.map((l) => [l.name, l.owner])).toEqual([['trigger/1', 'survivor']]);
    } finally {
      client.release(true);
    }
  });
});

// NOTIFY holds PostgreSQL's cluster-wide notify lock until the commit's WAL flush: a node that its
// heartbeat found alone sends none, and sends them again once another node announces itself.
describe('PostgreSQL store: NOTIFY only when another node may listen', () => {
  const T0 = Date.UTC(2026, 0, 1);
  const node = (id: string) => ({
    instance: id,
    id,
    address: '',
    version: 't',
    startedAt: T0,
    partitions: [],
    clockSkewMs: 0,
  });
  let schema: string;
  let stores: PostgresStore[];
  let listener: pg.Client;
  let sender: pg.Client;
  let heard: string[];

  async function open(): Promise<PostgresStore> {
    const store = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
    stores.push(store);
    await store.migrate();
    return store;
  }

  /** The payloads of this test's group heard on the channel, up to a marker sent now (delivery is in commit order). */
  async function heardSoFar(group: string): Promise<string[]> {
    const marker = `marker-${schema}-${heard.length}-${Math.random()}`;
    const arrived = new Promise<void>((resolve) => {
      const onMessage = (message: pg.Notification) => {
        if (message.payload !== marker) return;
        listener.off('notification', onMessage);
        resolve();
      };
      listener.on('notification', onMessage);
    });
    // On a channel of its own (the stores read every payload of theirs); one queue keeps the order.
    await sender.query('SELECT pg_notify($1, $2)', ['kairos_test_marker', marker]);
    await arrived;
    return heard.filter((p) => p.includes(group));
  }

  beforeEach(async () => {
    schema = testSchema();
    stores = [];
    heard = [];
    listener = new pg.Client({ connectionString: testDatabaseUrl() });
    sender = new pg.Client({ connectionString: testDatabaseUrl() });
    await Promise.all([listener.connect(), sender.connect()]);
    listener.on('notification', (message) => heard.push(message.payload ?? ''));
    await listener.query('LISTEN kairos_events');
    await listener.query('LISTEN kairos_test_marker');
  });
  afterEach(async () => {
    await Promise.all([listener.end(), sender.end()]);
    for (const store of stores) await store.close();
  });

  it('a node alone triggers without NOTIFY; a node that joins makes it NOTIFY again', async () => {
    const group = `g_${schema}`;
    const a = await open();
    await a.createJob(compileJob({ name: 'j', group, handler: 'h', trigger: { kind: 'manual' } }), null, T0);
    expect((await a.heartbeatNode(node('a'), 60_000, T0)).alive).toBe(1);
    const local: unknown[] = [];
    a.subscribe((event) => local.push(event));
    await a.triggerRun('j', { params: null, priority: null }, T0);
    await a.enqueueRuns((await a.getJob('j'))!.id, [{ params: {}, priority: 0 }], T0);
    // This node's own waiters still hear of the runs.
    expect(local).toEqual([
      { type: 'runs', group },
      { type: 'runs', group },
    ]);
    expect(await heardSoFar(group)).toEqual([]);

    const b = await open();
    const announced = new Promise<void>((resolve) =>
      a.subscribe((event) => {
        if (event.type === 'leases') resolve();
      }),
    );
    expect((await b.heartbeatNode(node('b'), 60_000, T0)).alive).toBe(2);
    await announced;
    await a.triggerRun('j', { params: null, priority: null }, T0);
    expect(await heardSoFar(group)).toHaveLength(1);
  });

  it("a node hears its own cluster's events, not those of another schema on the same server", async () => {
    const group = `g_${schema}`;
    const mine = await open();
    const ours = await open();
    const otherSchema = testSchema();
    const theirs = new PostgresStore({ connectionString: testDatabaseUrl(), schema: otherSchema });
    stores.push(theirs);
    await theirs.migrate();
    const spec = { name: 'j', group, handler: 'h', trigger: { kind: 'manual' as const } };
    const heard: unknown[] = [];
    mine.subscribe((event) => heard.push(event));
    const untilHeard = async (count: number) => {
      const deadline = Date.now() + 10_000;
      while (heard.length < count && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 20));
    };
    const jobOfTheirs = await theirs.createJob(compileJob(spec), null, T0);
    const jobOfOurs = await ours.createJob(compileJob(spec), null, T0);
    // Ours's job event arrives after anything theirs sent before it; only then start listening for real.
    await untilHeard(1);
    expect(heard).toEqual([{ type: 'jobs' }]);
    heard.length = 0;
    // Each statement's NOTIFY (enqueue and trigger) and the client-side one (cancel, through notify()).
    await theirs.enqueueRuns(jobOfTheirs.id, [{ params: {}, priority: 0 }], T0);
    await theirs.triggerRun('j', { params: null, priority: null }, T0);
    await theirs.createJob(compileJob({ ...spec, name: 'k' }), null, T0);
    await ours.enqueueRuns(jobOfOurs.id, [{ params: {}, priority: 0 }], T0);
    await ours.triggerRun('j', { params: null, priority: null }, T0);
    await ours.createJob(compileJob({ ...spec, name: 'k' }), null, T0);
    // Delivery is in commit order: once ours's last event is here, theirs's would have come before.
    await untilHeard(3);
    expect(heard).toEqual([{ type: 'runs', group }, { type: 'runs', group }, { type: 'jobs' }]);
  });
});
