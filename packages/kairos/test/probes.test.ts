import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readMigrations } from '../src/store/migrations.ts';
import { PostgresStore } from '../src/store/postgres/postgres-store.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../src/store/store.ts';
import { startTestNode, tempDir } from './helpers.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

afterAll(dropTestSchemas);

const DIALECTS: Array<[string, () => Store]> = [
  ['sqlite', () => new SqliteStore(join(tempDir(), 'kairos.db'))],
  ['postgres', () => new PostgresStore({ connectionString: testDatabaseUrl(), schema: testSchema() })],
];

/** `/livez` answers while the process runs; `/readyz` only while the store answers, migrated. */
describe.each(DIALECTS)('probes on %s', async (dialect, open) => {
  const store = open();
  const { node } = await startTestNode({ store });
  const get = async (path: string) => {
    const answer = await fetch(`${node.url}${path}`);
    return { status: answer.status, body: (await answer.json()) as Record<string, unknown> };
  };

  it('answer without a token while the store is up', async () => {
    expect(await get('/livez')).toEqual({ status: 200, body: { status: 'ok' } });
    const latest = Math.max(...readMigrations(store.dialect).map((m) => m.version));
    expect(await get('/readyz')).toEqual({
      status: 200,
      body: { status: 'ready', store: dialect, schemaVersion: latest },
    });
    expect((await get('/v1/health')).body).toMatchObject({ status: 'ok', store: dialect });
  });

  it('/readyz fails with 503 when the store does not answer; /livez still answers', async () => {
    await store.close();
    const ready = await get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ error: { code: 'STORE_UNAVAILABLE' } });
    expect(String((ready.body as { error: { message: string } }).error.message)).toMatch(/^store: /);
    expect((await get('/livez')).status).toBe(200);
  });
});
