import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { spawnKairos } from '../../test/processes.ts';
import { undoSinceAttemptRows } from '../../test/rewind.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../../test/test-database.ts';
import { compileJob } from '../core/job.ts';
import { KairosError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { readMigrations } from './migrations.ts';
import { PostgresStore } from './postgres/postgres-store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import type { Store } from './store.ts';

afterAll(dropTestSchemas);
const dir = tempDir();

/** Raw SQL on a dialect's store, below the contract, and how the dialect records its migrations. */
interface Raw {
  exec(sql: string): Promise<void>;
  meta(): Promise<unknown[]>;
  /** Records a migration this code does not know, as a newer node would have applied it. */
  addFutureMigration(version: number): string;
  /** Takes the store back to the schema that 0.1.0 left (no schema_meta). */
  rewindTo010: string;
}

const META = 'SELECT schema_version, min_code_version, migrated_by FROM schema_meta';
let files = 0;

const dialects: Array<{ name: string; known: number; open: () => { store: () => Store; raw: Raw } }> = [
  {
    name: 'sqlite',
    known: readMigrations('sqlite').length,
    open: () => {
      const path = join(dir, `schema-${files++}.db`);
      const withDb = <T>(body: (db: Database.Database) => T): T => {
        const db = new Database(path);
        try {
          return body(db);
        } finally {
          db.close();
        }
      };
      return {
        store: () => new SqliteStore(path),
        raw: {
          async exec(sql) {
            withDb((db) => db.exec(sql));
          },
          async meta() {
            return withDb((db) => db.prepare(META).all());
          },
          addFutureMigration: (version) => `PRAGMA user_version = ${version}`,
          rewindTo010: `${undoSinceAttemptRows('sqlite')}; PRAGMA user_version = 11`,
        },
      };
    },
  },
  {
    name: 'postgres',
    known: readMigrations('postgres').length,
    open: () => {
      const schema = testSchema('kairos_schema_version');
      const query = async (sql: string) => {
        const client = new pg.Client({
          connectionString: testDatabaseUrl(),
          options: `-c search_path=${schema}`,
        });
        await client.connect();
        try {
          return (await client.query(sql)).rows;
        } finally {
          await client.end();
        }
      };
      return {
        store: () => new PostgresStore({ connectionString: testDatabaseUrl(), schema }),
        raw: {
          async exec(sql) {
            await query(sql);
          },
          meta: () => query(META),
          addFutureMigration: (version) =>
            `INSERT INTO kairos_migrations (version, name) VALUES (${version}, '${version}_future.sql')`,
          rewindTo010: `${undoSinceAttemptRows('postgres')}; DELETE FROM kairos_migrations WHERE version > 12`,
        },
      };
    },
  },
];

/** The error a promise was rejected with; fails when it resolved. */
async function rejection(promise: Promise<unknown>): Promise<KairosError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KairosError);
  return error as KairosError;
}

describe.each(dialects)('the schema version of a $name store', ({ known, open }) => {
  it('a new store records its version and the oldest code that may run on it', async () => {
    const { store, raw } = open();
    const s = store();
    await s.migrate();
    await s.close();
    expect(await raw.meta()).toEqual([
      { schema_version: known, min_code_version: '0.1.0', migrated_by: VERSION },
    ]);
  });

  it('a store that 0.1.0 left is migrated and gets its version', async () => {
    const { store, raw } = open();
    let s = store();
    await s.migrate();
    await s.close();
    await raw.exec(raw.rewindTo010);
    s = store();
    await s.migrate();
    await s.createJob(compileJob({ name: 'j', handler: 'h', trigger: { kind: 'manual' } }), null, 0);
    await s.close();
    expect(await raw.meta()).toEqual([
      { schema_version: known, min_code_version: '0.1.0', migrated_by: VERSION },
    ]);
  });

  it('a newer schema that still supports this code is used as it is', async () => {
    const { store, raw } = open();
    let s = store();
    await s.migrate();
    await s.close();
    await raw.exec(
      `${raw.addFutureMigration(99)}; UPDATE schema_meta SET schema_version = 99, min_code_version = '${VERSION}', migrated_by = '99.1.0'`,
    );
    s = store();
    await s.migrate();
    await s.createJob(compileJob({ name: 'j', handler: 'h', trigger: { kind: 'manual' } }), null, 0);
    await s.close();
    expect(await raw.meta()).toEqual([
      { schema_version: 99, min_code_version: VERSION, migrated_by: '99.1.0' },
    ]);
  });

  it('a newer schema that needs newer code is refused, naming both versions and what to do', async () => {
    const { store, raw } = open();
    let s = store();
    await s.migrate();
    await s.close();
    await raw.exec(
      `${raw.addFutureMigration(99)}; UPDATE schema_meta SET schema_version = 99, min_code_version = '99.0.0', migrated_by = '99.1.0'`,
    );
    s = store();
    const error = await rejection(s.migrate());
    await s.close();
    expect(error.code).toBe('SCHEMA_UNSUPPORTED');
    expect(error.message).toBe(
      `the store's schema is version 99 (migrated by 99.1.0) and needs Kairos 99.0.0 or newer; this node is ` +
        `${VERSION} and knows schema versions up to ${known}: run this node at 99.0.0 or newer (to go back to ` +
        `${VERSION}, restore the backup taken before the upgrade)`,
    );
    expect(await raw.meta()).toEqual([
      { schema_version: 99, min_code_version: '99.0.0', migrated_by: '99.1.0' },
    ]);
  });
});

describe('a PostgreSQL node of an older release', () => {
  it('is not left behind: a node refuses a contract step while a node it no longer supports runs', async () => {
    const schema = testSchema('kairos_schema_version');
    const store = () => new PostgresStore({ connectionString: testDatabaseUrl(), schema });
    const client = new pg.Client({
      connectionString: testDatabaseUrl(),
      options: `-c search_path=${schema}`,
    });
    let s = store();
    await s.migrate();
    await s.close();
    await client.connect();
    try {
      // Before the last contract step (0012, for code 0.1.0 on), with a node of 0.0.9 alive.
      await client.query(`DROP INDEX workflow_instances_finished; DROP TABLE workflow_held_fires; ALTER TABLE runs DROP COLUMN task; DROP INDEX runs_queued_requests; DROP TABLE workflow_map_items; ALTER TABLE workflow_steps DROP COLUMN error; DROP INDEX workflow_instances_running; DROP INDEX workflow_instances_fire; ALTER TABLE workflow_instances DROP COLUMN scheduled_for; ALTER TABLE workflow_instances DROP COLUMN cause; ALTER TABLE runs DROP COLUMN resources; ALTER TABLE workers DROP COLUMN load; ALTER TABLE workers DROP COLUMN resources; DROP INDEX runs_broadcast; ALTER TABLE runs DROP COLUMN broadcast_run_id; ALTER TABLE workflow_steps DROP COLUMN hand_skipped; ALTER TABLE workflow_steps DROP COLUMN run_count; ALTER TABLE workflow_steps DROP COLUMN result; DROP INDEX runs_workflow_instance; ALTER TABLE runs DROP COLUMN workflow_step; ALTER TABLE runs DROP COLUMN workflow_instance_id; ALTER TABLE jobs DROP COLUMN workflow_id; DROP TABLE workflow_steps, workflow_instances, workflows; DROP TRIGGER group_limits_to_default ON group_limits; DROP FUNCTION kairos_group_limits_to_default(); DROP TABLE namespace_group_limits; DROP INDEX alert_deliveries_namespace; ALTER TABLE alert_deliveries DROP COLUMN namespace; ALTER TABLE alert_silences DROP COLUMN namespace; DROP INDEX audit_log_namespace; DROP INDEX alert_channels_namespace_name; DROP INDEX alert_rules_namespace_name; DROP INDEX calendars_namespace_name; DROP INDEX jobs_namespace_name; ALTER TABLE audit_log DROP COLUMN namespace; ALTER TABLE alert_channels DROP COLUMN namespace; ALTER TABLE alert_rules DROP COLUMN namespace; ALTER TABLE api_tokens DROP COLUMN namespace; ALTER TABLE workers DROP COLUMN namespace; ALTER TABLE calendars DROP COLUMN namespace; ALTER TABLE runs DROP COLUMN namespace; ALTER TABLE jobs DROP COLUMN namespace; DROP TABLE namespace_grants; DROP TABLE namespaces; DROP TABLE oidc_logins; DROP INDEX users_identity; ALTER TABLE users DROP COLUMN subject; ALTER TABLE users DROP COLUMN issuer; ALTER TABLE jobs DROP COLUMN secret_params; ALTER TABLE runs DROP COLUMN trace_context; DROP INDEX runs_queued_by_job; ALTER TABLE jobs DROP COLUMN revision; ALTER TABLE jobs DROP COLUMN owner; ALTER TABLE workers DROP COLUMN registered_by; DROP INDEX skipped_fires_recorded; DROP INDEX audit_log_at; ALTER TABLE jobs DROP COLUMN retention; DROP TRIGGER runs_alert_ended ON runs; DROP TRIGGER skipped_fires_alert_insert ON skipped_fires; DROP TRIGGER skipped_fires_alert_extend ON skipped_fires; DROP TRIGGER workers_alert ON workers; DROP TRIGGER jobs_alert_deleted ON jobs; DROP FUNCTION kairos_alert_run_ended(); DROP FUNCTION kairos_alert_fire_skipped(); DROP FUNCTION kairos_alert_worker(); DROP FUNCTION kairos_alert_job_deleted(); DROP TABLE alert_deliveries, alert_events, alert_silences, alert_states, alert_rules, alert_channels; DROP TABLE schema_meta; ALTER TABLE nodes DROP COLUMN name; DROP TABLE late_reports; ALTER TABLE runs DROP COLUMN claim_seq; ALTER TABLE jobs DROP COLUMN version; ALTER TABLE runs DROP COLUMN idempotency_expires_at; DELETE FROM kairos_migrations WHERE version >= 12;
        INSERT INTO nodes (id, address, version, started_at, heartbeat_at, expires_at, partitions, clock_skew_ms)
        VALUES ('old-1', 'http://old-1', '0.0.9', 0, 0, extract(epoch FROM clock_timestamp()) * 1000 + 600000, '[]', 0),
               ('gone', 'http://gone', '0.0.9', 0, 0, 1, '[]', 0)`);
      s = store();
      const error = await rejection(s.migrate());
      await s.close();
      expect(error.code).toBe('SCHEMA_UNSUPPORTED');
      expect(error.message).toBe(
        `this node (${VERSION}) would migrate the store to a schema that needs Kairos 0.1.0 or newer, while ` +
          'older nodes still run on it (old-1 at 0.0.9): upgrade every node to 0.1.0 first, one release at a time',
      );
      const { rows } = await client.query('SELECT max(version) AS v FROM kairos_migrations');
      expect(rows).toEqual([{ v: 11 }]);
      // Once the old node is gone, the upgrade goes on.
      await client.query("DELETE FROM nodes WHERE id = 'old-1'");
      s = store();
      await s.migrate();
      await s.close();
      expect((await client.query(META)).rows).toEqual([
        {
          schema_version: readMigrations('postgres').length,
          min_code_version: '0.1.0',
          migrated_by: VERSION,
        },
      ]);
    } finally {
      await client.end();
    }
  });

  it('`kairos server` on a schema that needs newer code exits 1 with the error', async () => {
    const schema = testSchema('kairos_schema_version');
    const s = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
    await s.migrate();
    await s.close();
    const client = new pg.Client({
      connectionString: testDatabaseUrl(),
      options: `-c search_path=${schema}`,
    });
    await client.connect();
    await client.query(`INSERT INTO kairos_migrations (version, name) VALUES (99, '0099_future.sql');
      UPDATE schema_meta SET schema_version = 99, min_code_version = '99.0.0', migrated_by = '99.1.0'`);
    await client.end();
    const child = spawnKairos(['server', '--port', '0'], {
      KAIROS_DATABASE_URL: `${testDatabaseUrl()}?schema=${schema}`,
      KAIROS_ADMIN_TOKEN: 'a',
      KAIROS_WORKER_TOKEN: 'w',
    });
    expect(await child.exited).toBe(1);
    expect(child.output()).toContain(
      `error SCHEMA_UNSUPPORTED: the store's schema is version 99 (migrated by 99.1.0) and needs Kairos 99.0.0 or newer; this node is ${VERSION}`,
    );
  });
});
