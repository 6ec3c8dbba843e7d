import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../../../test/test-database.ts';
import { compileJob } from '../../core/job.ts';
import { AttemptEnder } from '../../scheduler/attempts.ts';
import { EXPIRED_ATTEMPTS, FINISH_ATTEMPTS } from './attempts.ts';
import { DISPATCH_FAST, DUE_QUEUED, HEARTBEAT } from './dispatch.ts';
import { HAS_QUEUED_RUNS } from './fires.ts';
import { PostgresStore } from './postgres-store.ts';
import { LIST_RUNS } from './runs.ts';

afterAll(dropTestSchemas);

/** A connection to a new schema that the store has migrated, for reading plans. */
async function migratedSchema(): Promise<pg.Client> {
  const schema = testSchema();
  const store = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
  await store.migrate();
  await store.close();
  const client = new pg.Client({ connectionString: testDatabaseUrl(), options: `-c search_path=${schema}` });
  await client.connect();
  return client;
}

// Runs are listed by status through an index only for the rarer ends (runs_unsuccessful): queued and
// running runs have partial indexes of their own, succeeded ones are most of the table.
describe('PostgreSQL: run lists by status', () => {
  let client: pg.Client;

  beforeAll(async () => {
    client = await migratedSchema();
  });
  afterAll(() => client?.end());

  async function plan(status: string): Promise<string> {
    // Without rows the planner would take any plan; forbidding sequential scans asks which indexes apply.
    await client.query('SET enable_seqscan = off');
    const { rows } = await client.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN ${LIST_RUNS.replace(/\$(\d)/g, (_, n: string) =>
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
    client = await migratedSchema();
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

// A running attempt lives on its worker's lease. The reaper reads the workers (few), the running runs
// of those whose lease ended through runs_worker and the timed-out runs through runs_deadline; the
// heartbeat writes the worker's row only and reads its running runs through runs_worker. Planned with
// the statistics of a store whose runs have mostly ended, as in production: neither walks the runs.
describe('PostgreSQL: attempts live on their worker’s lease', () => {
  const NOW = 1_000_000;
  let client: pg.Client;

  beforeAll(async () => {
    client = await migratedSchema();
    await client.query(`
      INSERT INTO jobs (name, group_name, handler, params, trigger, retry, timeout_ms, priority, paused,
        created_at, updated_at)
      VALUES ('j', 'g', 'h', '{}', '{"kind":"manual"}', '{"maxAttempts":1}', 60000, 0, false, 0, 0)`);
    await client.query(`
      INSERT INTO workers (id, name, group_name, handlers, capacity, labels, version, host, status,
        registered_at, last_heartbeat_at, lease_expires_at)
      SELECT 'w' || i, 'w' || i, 'g', '["h"]', 100, '{}', 't', 'h', 'active', 0, 0, ${NOW} + 98 - i
      FROM generate_series(1, 100) AS i`);
    // 50,000 ended runs and 10,000 running ones, 100 on each worker (two of which lost their lease),
    // a few past their deadline.
    await client.query(`
      INSERT INTO runs (job_id, group_name, handler, cause, params, priority, status, attempt, max_attempts, retry,
        timeout_ms, worker_id, created_at, available_at, started_at, finished_at, deadline_at)
      SELECT (SELECT id FROM jobs), 'g', 'h', 'manual', '{}', 0,
        CASE WHEN i <= 10000 THEN 'running' ELSE 'succeeded' END, 1, 1, '{"maxAttempts":1}', 60000,
        'w' || (1 + i % 100), i, i, i, CASE WHEN i <= 10000 THEN NULL ELSE i + 1 END,
        CASE WHEN i <= 10000 THEN ${NOW} - 5 + i ELSE NULL END
      FROM generate_series(1, 60000) AS i`);
    await client.query('ANALYZE');
  });
  afterAll(() => client?.end());

  async function plan(query: string, values: unknown[]): Promise<string> {
    let n = 0;
    const text = query.replace(/\$(\d+)(::\w+)?/g, (_, i: string) => {
      n = Math.max(n, Number(i));
      const value = values[Number(i) - 1];
      if (value === null) return 'NULL';
      return typeof value === 'string' ? `'${value}'::text` : `${value}::bigint`;
    });
    expect(n).toBe(values.length);
    const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`);
    return rows.map((row) => row['QUERY PLAN']).join('\n');
  }

  /** Each read of runs in a plan: the index and its condition (a walk of a whole index has none). */
  function scansOfRuns(text: string): string[] {
    const scans: string[] = [];
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      const scan =
        /(Seq Scan on runs|Index (?:Only )?Scan using (\w+) on runs|Bitmap Index Scan on (runs\w*))\b/.exec(
          line,
        );
      if (!scan) return;
      const index = scan[2] ?? scan[3] ?? 'seq';
      const cond = /Index Cond: (.*)$/.exec(lines[i + 1] ?? '');
      scans.push(`${index}: ${cond?.[1] ?? 'none'}`);
    });
    return scans;
  }

  it('the reaper reads the workers, then runs_worker for the lost and runs_deadline for the timed out', async () => {
    const text = await plan(EXPIRED_ATTEMPTS, [NOW, 500]);
    expect(scansOfRuns(text)).toEqual([
      'runs_worker: (worker_id = w.id)',
      "runs_deadline: (deadline_at <= '1000000'::bigint)",
    ]);
  });

  it('the heartbeat reads the worker’s running runs through runs_worker and writes no run', async () => {
    const text = await plan(HEARTBEAT, ['w1', NOW, 5000, null]);
    expect(text).toMatch(/Update on workers/);
    expect(text).not.toMatch(/Update on runs/);
    expect(scansOfRuns(text)).toEqual(["runs_worker: (worker_id = 'w1'::text)"]);
  });

  it('the dispatcher’s probe before passing a wake on reads the first entry of runs_ahead', async () => {
    const text = await plan(HAS_QUEUED_RUNS, ['g', NOW]);
    expect(scansOfRuns(text)).toEqual(["runs_ahead: (group_name = 'g'::text)"]);
    expect(text).toMatch(/Limit/);
  });

  it('keeps no run lease', async () => {
    const { rows } = await client.query(
      "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'runs' AND column_name = 'lease_expires_at' UNION ALL SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'runs_lease'",
    );
    expect(rows).toEqual([]);
  });
});

// The reaper's sweep for queued runs past their schedule-to-start timeout runs every second: it
// reads the jobs that have a timeout, then only their runs that waited too long, never the queue.
// Planned with the statistics of a store holding 20,000 queued runs of a job without a timeout.
describe('PostgreSQL: schedule-to-start expiry', () => {
  let client: pg.Client;

  beforeAll(async () => {
    client = await migratedSchema();
    await client.query(`
      INSERT INTO jobs (name, group_name, handler, params, trigger, retry, timeout_ms, priority, paused,
        created_at, updated_at, schedule_to_start_ms)
      VALUES ('plain', 'g', 'h', '{}', '{"kind":"manual"}', '{"maxAttempts":1}', 60000, 0, false, 0, 0, NULL),
        ('timed', 'g', 'h', '{}', '{"kind":"manual"}', '{"maxAttempts":1}', 60000, 0, false, 0, 0, 30000)`);
    await client.query(`
      INSERT INTO runs (job_id, group_name, handler, cause, params, priority, status, max_attempts, retry,
        timeout_ms, created_at, available_at)
      SELECT (SELECT id FROM jobs WHERE name = 'plain'), 'g', 'h', 'manual', '{}', 0, 'queued', 1,
        '{"maxAttempts":1}', 60000, i, i
      FROM generate_series(1, 20000) AS i`);
    await client.query('ANALYZE');
  });
  afterAll(() => client?.end());

  it('reads runs_active per job that has a timeout, up to the expired ones; no walk of runs', async () => {
    const text = DUE_QUEUED.replaceAll('$1', '1000000').replaceAll('$2', '500');
    const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`);
    const plan = rows.map((row) => row['QUERY PLAN']).join('\n');
    expect(plan).toMatch(
      /Index Scan using runs_active on runs r .*\n\s+Index Cond: \(\(job_id = j\.id\) AND \(available_at <=/,
    );
    expect(plan.match(/\w+ Scan[^\n]* on runs/g)).toEqual(['Index Scan using runs_active on runs']);
  });
});

// A claim and an end of attempts, each for 200 runs of one job, after 1,000 runs went through (whose
// runs_worker entries stay until a vacuum; the suite's server runs none): the statements read each
// job once, not once per run, and find the ended runs by id without walking runs_worker. Asserted on
// the plans as run (EXPLAIN ANALYZE, rolled back), since both read CTEs of the rows they write.
describe('PostgreSQL: the claim and the end of a batch read each job once', () => {
  const schema = testSchema();
  const store = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
  let client: pg.Client;

  beforeAll(async () => {
    await store.migrate();
    const job = await store.createJob(
      compileJob({ name: 'plain', handler: 'h', trigger: { kind: 'manual' } }),
      null,
      Date.now(),
    );
    await store.enqueueRuns(
      job.id,
      Array.from({ length: 1400 }, () => ({ params: {}, priority: 0 })),
      Date.now(),
    );
    await store.registerWorker(
      {
        id: 'w',
        name: 'w',
        group: job.group,
        handlers: ['h'],
        capacity: 200,
        labels: {},
        version: '',
        host: 'h',
      },
      600_000,
      Date.now(),
    );
    const ender = new AttemptEnder(store);
    for (let i = 0; i < 5; i++) {
      const claimed = await store.dispatchRuns('w', 200, Date.now(), 0.5);
      await ender.report(
        claimed.map((run) => ({ runId: run.runId, attempt: run.attempt, outcome: 'succeeded' as const })),
        Date.now(),
        'w',
      );
    }
    client = new pg.Client({ connectionString: testDatabaseUrl(), options: `-c search_path=${schema}` });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await store.close();
  });

  interface PlanNode {
    'Node Type': string;
    'Relation Name'?: string;
    'Index Name'?: string;
    'Actual Loops': number;
    Plans?: PlanNode[];
  }

  /** Every node of the plan of `query` as run with `values`, rolled back. */
  async function nodes(query: string, values: unknown[]): Promise<PlanNode[]> {
    await client.query('BEGIN');
    try {
      const { rows } = await client.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
        `EXPLAIN (ANALYZE, FORMAT JSON) ${query}`,
        values,
      );
      const all: PlanNode[] = [];
      const walk = (node: PlanNode) => {
        all.push(node);
        for (const child of node.Plans ?? []) walk(child);
      };
      walk(rows[0]!['QUERY PLAN'][0]!.Plan);
      return all;
    } finally {
      await client.query('ROLLBACK');
    }
  }

  it('a claim reads the job of the runs it takes once', async () => {
    const plan = await nodes(DISPATCH_FAST, ['w', Date.now(), 200, 800, true, null]);
    const reads = plan.filter((n) => n['Relation Name'] === 'jobs' && n['Node Type'] !== 'Update');
    expect(reads.length).toBeGreaterThan(0);
    expect(reads.map((n) => n['Actual Loops'])).toEqual(reads.map(() => 1));
  });

  it('an end finds its runs by id and looks up the dependents of their job once', async () => {
    const claimed = await store.dispatchRuns('w', 200, Date.now(), 0.5);
    expect(claimed).toHaveLength(200);
    const input = claimed.map((run) => ({
      run_id: run.runId,
      attempt: run.attempt,
      run_status: 'succeeded',
      available_at: null,
      result: null,
      error: null,
      attempt_status: 'succeeded',
      lease_ended_by: null,
      worker_id: 'w',
    }));
    const plan = await nodes(FINISH_ATTEMPTS, [
      JSON.stringify(input),
      Date.now(),
      true,
      input.map((r) => r.run_id),
    ]);
    expect(plan.filter((n) => n['Index Name'] === 'runs_worker')).toEqual([]);
    const after = plan.filter(
      (n) => n['Index Name'] === 'jobs_after' || n['Index Name'] === 'jobs_namespace_name',
    );
    expect(after.length).toBeGreaterThan(0);
    expect(after.map((n) => n['Actual Loops'])).toEqual(after.map(() => 1));
  });
});
