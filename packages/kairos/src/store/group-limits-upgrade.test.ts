import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { undoSinceGroupLimits } from '../../test/rewind.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../../test/test-database.ts';
import { PostgresStore } from './postgres/postgres-store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import type { Store } from './store.ts';

afterAll(dropTestSchemas);
const dir = tempDir();

// Group limits became per namespace (migration group_limits_per_namespace). Nodes of 0.1.0, still
// running during a rolling upgrade, read and write the old table group_limits by group name alone:
// what they write must become `default`'s limits, and what this code sets for `default` must reach
// them (docs/operations.md, upgrade notes).

/** Raw SQL on a dialect's store, below the contract; `?`-free statements only. */
interface Raw {
  exec(sql: string): Promise<void>;
  rows(sql: string): Promise<Array<Record<string, unknown>>>;
}

/** How a node of 0.1.0 sets a group's limits (its setGroupLimit), with the values inlined. */
const OLD_SET = (group: string, max: number | null, at: number) =>
  `INSERT INTO group_limits (group_name, max_concurrency, rate_limit, rate_per_ms, updated_at)
   VALUES ('${group}', ${max ?? 'NULL'}, NULL, NULL, ${at})
   ON CONFLICT (group_name) DO UPDATE SET max_concurrency = excluded.max_concurrency,
     rate_limit = excluded.rate_limit, rate_per_ms = excluded.rate_per_ms, updated_at = excluded.updated_at`;

const dialects: Array<{ name: string; open: () => { store: Store; raw: Raw; rewind: string } }> = [
  {
    name: 'sqlite',
    open: () => {
      const path = join(dir, 'group-limits.db');
      const withDb = <T>(body: (db: Database.Database) => T): T => {
        const db = new Database(path);
        try {
          return body(db);
        } finally {
          db.close();
        }
      };
      return {
        store: new SqliteStore(path),
        raw: {
          async exec(sql) {
            withDb((db) => db.exec(sql));
          },
          async rows(sql) {
            return withDb((db) => db.prepare(sql).all() as Array<Record<string, unknown>>);
          },
        },
        rewind: `${undoSinceGroupLimits('sqlite')}; PRAGMA user_version = 26`,
      };
    },
  },
  {
    name: 'postgres',
    open: () => {
      const schema = testSchema('kairos_group_limits');
      const query = async (sql: string) => {
        const client = new pg.Client({
          connectionString: testDatabaseUrl(),
          options: `-c search_path=${schema}`,
        });
        await client.connect();
        try {
          return (await client.query(sql)).rows as Array<Record<string, unknown>>;
        } finally {
          await client.end();
        }
      };
      return {
        store: new PostgresStore({ connectionString: testDatabaseUrl(), schema }),
        raw: {
          async exec(sql) {
            await query(sql);
          },
          rows: query,
        },
        rewind: `${undoSinceGroupLimits('postgres')}; DELETE FROM kairos_migrations WHERE version >= 27`,
      };
    },
  },
];

describe.each(dialects)('group limits across the upgrade to limits per namespace: $name', ({ open }) => {
  it('limits and token buckets from before become `default`s; old nodes and this code share `default`s', async () => {
    const { store, raw, rewind } = open();
    const T0 = Date.UTC(2026, 0, 1);
    const limits = async (namespace?: string) =>
      (await store.listGroupLimits(namespace)).map((l) => [
        l.namespace,
        l.group,
        l.maxConcurrency,
        l.updatedAt,
      ]);
    const oldTable = async () =>
      (await raw.rows('SELECT group_name, max_concurrency FROM group_limits ORDER BY group_name')).map(
        (r) => [r.group_name, r.max_concurrency],
      );
    try {
      await store.migrate();
      // The store as 0.1.0 nodes left it: a limit and a group's token bucket of the old scope.
      await raw.exec(
        `${rewind}; ${OLD_SET('etl', 3, T0)}; INSERT INTO rate_buckets (scope, tokens, updated_at) VALUES ('group:etl', 0.5, ${T0})`,
      );
      await store.migrate();
      expect(await limits()).toEqual([['default', 'etl', 3, T0]]);
      const buckets = await raw.rows(`SELECT scope, tokens FROM rate_buckets ORDER BY scope`);
      expect(buckets.map((b) => [b.scope, Number(b.tokens)])).toEqual([
        ['group:default/etl', 0.5],
        ['group:etl', 0.5],
      ]);

      // An old node, during the upgrade: inserts and updates land in `default`'s limits.
      await raw.exec(OLD_SET('reports', 2, T0 + 1));
      await raw.exec(OLD_SET('etl', 4, T0 + 2));
      expect(await limits('default')).toEqual([
        ['default', 'etl', 4, T0 + 2],
        ['default', 'reports', 2, T0 + 1],
      ]);

      // This code: `default`'s limits reach the old nodes' table, another namespace's never do.
      await store.namespaces.create({ name: 'blue', description: '' }, T0);
      await store.setGroupLimit('etl', { maxConcurrency: 9, rateLimit: null }, T0 + 3, 'blue');
      await store.setGroupLimit('reports', { maxConcurrency: null, rateLimit: null }, T0 + 4);
      expect(await oldTable()).toEqual([
        ['etl', 4],
        ['reports', null],
      ]);
      expect(await limits()).toEqual([
        ['blue', 'etl', 9, T0 + 3],
        ['default', 'etl', 4, T0 + 2],
        ['default', 'reports', null, T0 + 4],
      ]);
    } finally {
      await store.close();
    }
  });
});
