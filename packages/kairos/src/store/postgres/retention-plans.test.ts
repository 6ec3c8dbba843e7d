import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../../../test/test-database.ts';
import { PostgresStore } from './postgres-store.ts';
import * as rq from './retention.ts';

afterAll(dropTestSchemas);

// Each batch of the pruner is a range of an index, whatever the size of the table: planned with the
// statistics of a store of 60,000 runs (most of them ended), 20,000 ledger rows and audit entries.
describe('PostgreSQL: the pruner’s statements read ranges of indexes', () => {
  let client: pg.Client;

  beforeAll(async () => {
    const schema = testSchema();
    const store = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
    await store.migrate();
    await store.close();
    client = new pg.Client({ connectionString: testDatabaseUrl(), options: `-c search_path=${schema}` });
    await client.connect();
    await client.query(`
      INSERT INTO jobs (name, group_name, handler, params, trigger, retry, timeout_ms, priority, paused,
        created_at, updated_at)
      SELECT 'j' || i, 'g', 'h', '{}', '{"kind":"manual"}', '{"maxAttempts":1}', 60000, 0, false, 0, 0
      FROM generate_series(1, 100) AS i`);
    await client.query(`
      INSERT INTO runs (job_id, group_name, handler, cause, params, priority, status, attempt, max_attempts, retry,
        timeout_ms, created_at, available_at, finished_at)
      SELECT CASE WHEN i % 10 = 0 THEN 2 + i % 99 ELSE 1 END, 'g', 'h', 'manual', '{}', 0, CASE WHEN i > 59000 THEN 'queued' ELSE 'succeeded' END, 1, 1,
        '{"maxAttempts":1}', 60000, i, i, CASE WHEN i > 59000 THEN NULL ELSE i + 1 END
      FROM generate_series(1, 60000) AS i`);
    await client.query(`
      INSERT INTO skipped_fires (job_id, reason, first_fire, last_fire, count, recorded_at)
      SELECT 1, 'misfire', i, i, 1, i FROM generate_series(1, 20000) AS i`);
    await client.query(`
      INSERT INTO audit_log (at, actor, action, target, details)
      SELECT i, 'a', 'x', 't', '{}' FROM generate_series(1, 20000) AS i`);
    await client.query('ANALYZE');
  });
  afterAll(() => client?.end());

  async function plan(query: string, values: string[]): Promise<string> {
    const text = query.replace(/\$(\d+)(::[\w[\]]+)?/g, (_, i: string, cast: string | undefined) => {
      const value = values[Number(i) - 1];
      return `${value}${cast ?? ''}`;
    });
    const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`);
    const out = rows.map((row) => row['QUERY PLAN']).join('\n');
    if (process.env.SHOW_PLANS) console.log(out);
    return out;
  }

  it('the age pass: a range of runs_finished from the cursor, then for each run the next finished run of its job', async () => {
    const text = await plan(rq.RUNS_TO_PRUNE, ['30000::bigint', '1000::bigint', '999::bigint', '1000']);
    expect(text).toMatch(/Index Scan using runs_finished on runs r/);
    expect(text).toMatch(/Index Cond: .*finished_at < '30000'::bigint/);
    expect(text).toMatch(/Index Cond: .*finished_at >= '1000'::bigint/);
    expect(text).toMatch(/Index Scan using (runs_job|runs_pkey) on runs n/);
    expect(text).not.toMatch(/Seq Scan on runs/);
  });

  it('the job pass: runs_job from the id after, and from the newest for the id kept from', async () => {
    // An ordered walk that stops at the limit: runs_job for a job among many, or the primary key
    // filtered by job when one job has most of the runs (here 90 %), never a sort of the job's runs.
    for (const [jobId, index] of [
      ['1', /Index Scan using (runs_job|runs_pkey) on runs/],
      ['5', /Index Scan using runs_job on runs/],
    ] as const) {
      const job = await plan(rq.JOB_RUNS, [`${jobId}::bigint`, '100::bigint', '1000']);
      expect(job).toMatch(index);
      expect(job).not.toMatch(/Sort|Seq Scan on runs|Bitmap/);
    }
    expect(await plan(rq.KEEP_FROM, ['5::bigint', '9'])).toMatch(
      /Index Scan Backward using runs_job on runs/,
    );
  });

  it('deletes by primary key, and the ledger and the audit log by their time indexes', async () => {
    expect(await plan(rq.DELETE_FINISHED_RUNS, ["'{1,2,3}'"])).toMatch(/Index Scan using runs_pkey on runs/);
    const ledger = await plan(rq.PRUNE_SKIPPED_FIRES, ['1000::bigint', '1000']);
    expect(ledger).toMatch(/Index Scan using skipped_fires_recorded on skipped_fires/);
    expect(ledger).toMatch(/Index Scan using skipped_fires_pkey on skipped_fires/);
    expect(ledger).not.toMatch(/Seq Scan/);
    const audit = await plan(rq.PRUNE_AUDIT_LOG, ['1000::bigint', '1000']);
    expect(audit).toMatch(/Index Scan using audit_log_at on audit_log/);
    expect(audit).toMatch(/Index Scan using audit_log_pkey on audit_log/);
    expect(audit).not.toMatch(/Seq Scan/);
  });

  it('workflow instances: a range of workflow_instances_finished, their steps and items by key', async () => {
    // 20,000 instances, most ended, each with 3 steps and 5 map items.
    await client.query(`
      INSERT INTO workflows (namespace, name, version, steps, job_id, created_at, updated_at)
      VALUES ('default', 'w', 1, '[]', 1, 0, 0)`);
    await client.query(`
      INSERT INTO workflow_instances (workflow_id, namespace, workflow_version, steps, state, context, created_at,
        started_at, finished_at)
      SELECT (SELECT id FROM workflows), 'default', 1, '[]', CASE WHEN i > 19000 THEN 'running' ELSE 'succeeded' END,
        '{}', i, i, CASE WHEN i > 19000 THEN NULL ELSE i + 1 END
      FROM generate_series(1, 20000) AS i`);
    await client.query(`
      INSERT INTO workflow_steps (instance_id, step_id, state) SELECT id, s, 'succeeded'
      FROM workflow_instances, unnest(ARRAY['a', 'b', 'c']) AS s`);
    await client.query(`
      INSERT INTO workflow_map_items (instance_id, step_id, idx, item, state) SELECT id, 'c', k, '1', 'succeeded'
      FROM workflow_instances, generate_series(0, 4) AS k`);
    await client.query('ANALYZE');
    const read = await plan(rq.INSTANCES_TO_PRUNE, ['10000::bigint', '1000::bigint', '999::bigint', '1000']);
    expect(read).toMatch(/Index Scan using workflow_instances_finished on workflow_instances i/);
    // Each instance's steps: a range of their primary key (a bitmap scan of 3 rows, or an index scan).
    expect(read).toMatch(/(Index Only Scan using|Index Scan using|Bitmap Index Scan on) workflow_steps_pkey/);
    expect(read).not.toMatch(/Seq Scan/);
    const items = await plan(rq.PRUNE_MAP_ITEMS, ["'{1,2,3}'", '1000']);
    expect(items).toMatch(/Tid Scan on workflow_map_items/);
    expect(items).not.toMatch(/Seq Scan on workflow_map_items/);
    const instances = await plan(rq.DELETE_ENDED_INSTANCES, ["'{1,2,3}'"]);
    expect(instances).toMatch(/Index Scan using workflow_instances_pkey on workflow_instances i/);
    expect(instances).not.toMatch(/Seq Scan/);
    // The guard on step runs of unfinished instances: a probe of the instance by its key.
    expect(await plan(rq.DELETE_FINISHED_RUNS, ["'{1,2,3}'"])).toMatch(
      /Index Scan using workflow_instances_pkey on workflow_instances wi/,
    );
  });
});

// One job with every run and a backlog of queued ones: the planner once read the runs table from the
// start for each run of a batch (an EXISTS it planned as a sequential scan), 15 s for a batch of
// 1,000 of 100,000 runs; then, looking for the job's newest finished run, it walked back over the
// whole queued backlog once per run of the batch (a CTE it inlined): 2.9 s a batch with 20,000
// queued, 42 s without statistics, so retention fell behind a drain of 1,500 runs a second.
describe('PostgreSQL: the age pass on a store with one busy job', () => {
  let client: pg.Client;

  beforeAll(async () => {
    const schema = testSchema();
    const store = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
    await store.migrate();
    await store.close();
    client = new pg.Client({ connectionString: testDatabaseUrl(), options: `-c search_path=${schema}` });
    await client.connect();
    await client.query(`
      INSERT INTO jobs (name, group_name, handler, params, trigger, retry, timeout_ms, priority, paused,
        created_at, updated_at)
      VALUES ('j', 'g', 'h', '{}', '{"kind":"manual"}', '{"maxAttempts":1}', 60000, 0, false, 0, 0)`);
    await client.query(`
      INSERT INTO runs (job_id, group_name, handler, cause, params, priority, status, attempt, max_attempts, retry,
        timeout_ms, created_at, available_at, finished_at)
      SELECT (SELECT id FROM jobs), 'g', 'h', 'manual', '{}', 0, 'succeeded', 1, 1, '{"maxAttempts":1}', 60000,
        i, i, i + 1
      FROM generate_series(1, 50000) AS i`);
    await client.query(`
      INSERT INTO runs (job_id, group_name, handler, cause, params, priority, status, attempt, max_attempts, retry,
        timeout_ms, created_at, available_at)
      SELECT (SELECT id FROM jobs), 'g', 'h', 'manual', '{}', 0, 'queued', 0, 1, '{"maxAttempts":1}', 60000,
        i, i
      FROM generate_series(50001, 70000) AS i`);
    await client.query('ANALYZE');
  });
  afterAll(() => client?.end());

  it('reads the newest finished run through an index, never the table', async () => {
    const text = rq.RUNS_TO_PRUNE.replace(/\$(\d)/g, (_, i: string) =>
      i === '1' ? '40000::bigint' : i === '2' ? '20000::bigint' : i === '3' ? '0::bigint' : '1000',
    );
    const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`);
    const plan = rows.map((row) => row['QUERY PLAN']).join('\n');
    expect(plan).not.toMatch(/Seq Scan on runs/);
    expect(plan).toMatch(/Index Scan using (runs_job|runs_pkey) on runs n/);
  });

  it('reads a few pages per run of the batch, not the queued backlog per run', async () => {
    // Buffers touched, counted by the server: the same on a busy machine as on a quiet one.
    const text = rq.RUNS_TO_PRUNE.replace(/\$(\d)/g, (_, i: string) =>
      i === '1' ? '40000::bigint' : i === '2' ? '0::bigint' : i === '3' ? '0::bigint' : '1000',
    );
    const { rows } = await client.query<{ 'QUERY PLAN': Array<{ Plan: Record<string, number> }> }>(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`,
    );
    const top = rows[0]!['QUERY PLAN'][0]!.Plan;
    const pages = top['Shared Hit Blocks']! + top['Shared Read Blocks']!;
    expect(top['Actual Rows']).toBe(1000);
    // 1,000 runs: an ordered walk each of a few pages; walking back over the 20,000 queued runs
    // per run of the batch reads millions.
    expect(pages).toBeLessThan(20_000);
  });
});
