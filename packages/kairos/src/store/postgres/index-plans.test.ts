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

// runs_fire and runs_idempotency are partial (a manual run enters neither): the lookups by them must
// still find them in their generic plans, where the values are parameters.
describe('PostgreSQL: run keys in partial indexes', () => {
  let client: pg.Client;

  beforeAll(async () => {
    const schema = testSchema();
    const store = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
    await store.migrate();
    await store.close();
    client = new pg.Client({ connectionString: testDatabaseUrl(), options: `-c search_path=${schema}` });
    await client.connect();
    await client.query('SET enable_seqscan = off');
    await client.query('SET plan_cache_mode = force_generic_plan');
  });
  afterAll(() => client?.end());

  async function genericPlan(name: string, types: string, query: string, args: string): Promise<string> {
    await client.query(`PREPARE ${name}(${types}) AS ${query}`);
    const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE ${name}(${args})`);
    return rows.map((row) => row['QUERY PLAN']).join('\n');
  }

  it('finds runs by idempotency key, one or many, through runs_idempotency', async () => {
    expect(
      await genericPlan(
        'by_keys',
        'bigint, text[]',
        'SELECT id, idempotency_key FROM runs WHERE job_id = $1 AND idempotency_key = ANY($2::text[])',
        "1, '{a,b}'",
      ),
    ).toMatch(/Index Scan using runs_idempotency/);
    expect(
      await genericPlan(
        'by_key',
        'bigint, text',
        'SELECT id FROM runs WHERE job_id = $1 AND idempotency_key = $2',
        "1, 'a'",
      ),
    ).toMatch(/Index Scan using runs_idempotency/);
  });

  it('keeps no entry for a run without a fire time or an idempotency key', async () => {
    const { rows } = await client.query<{ indexname: string; indexdef: string }>(
      "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname IN ('runs_fire', 'runs_idempotency')",
    );
    const where = Object.fromEntries(rows.map((r) => [r.indexname, r.indexdef.replace(/.* WHERE /, '')]));
    expect(where).toEqual({
      runs_fire: '(fire_time IS NOT NULL)',
      runs_idempotency: '(idempotency_key IS NOT NULL)',
    });
  });

  it('finds a run by fire time through runs_fire', async () => {
    expect(
      await genericPlan(
        'by_fire',
        'bigint, bigint',
        'SELECT id FROM runs WHERE job_id = $1 AND fire_time = $2',
        '1, 2',
      ),
    ).toMatch(/Index (Only )?Scan using runs_fire/);
  });
});
