import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStore } from './postgres-store.ts';
import * as sql from './queries.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

afterAll(dropTestSchemas);

// Runs are listed by status through an index only for the rarer ends (runs_unsuccessful): queued and
// running runs have partial indexes of their own, succeeded ones are most of the table.
describe('PostgreSQL: run lists by status', () => {
  let client: pg.Client;

  beforeAll(async () => {
    const schema = testSchema();
    const store = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
    await store.migrate();
    await store.close();
    client = new pg.Client({ connectionString: testDatabaseUrl(), options: `-c search_path=${schema}` });
    await client.connect();
  });
  afterAll(() => client?.end());

  async function plan(status: string): Promise<string> {
    // Without rows the planner would take any plan; forbidding sequential scans asks which indexes apply.
    await client.query('SET enable_seqscan = off');
    const { rows } = await client.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN ${sql.LIST_RUNS.replace(/\$(\d)/g, (_, n: string) =>
        n === '2' ? `'${status}'::text` : n === '5' ? '50' : 'NULL',
      )}`,
    );
    return rows.map((row) => row['QUERY PLAN']).join('\n');
  }

  it('walks runs_unsuccessful for failed, cancelled and timed-out runs', async () => {
    for (const status of ['failed', 'cancelled', 'timed_out']) {
      expect(await plan(status)).toMatch(/Index (Only )?Scan Backward using runs_unsuccessful/);
    }
  });

  it('has no status index that every run enters', async () => {
    const { rows } = await client.query<{ indexname: string }>(
      "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'runs'",
    );
    expect(rows.map((row) => row.indexname)).not.toContain('runs_status');
  });
});
