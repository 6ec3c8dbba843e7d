// `npm run bench:queue-shape`: what a queue kept apart from the run's history row would save on
// PostgreSQL on the drain's hot path (the claim and the end of runs), measured before it is built,
// against today's layout. Each layout is a fresh database of the local server (BENCH_DATABASE_URL)
// migrated by the real store; N runs are queued through the store (`enqueueRuns`, 1,000 a call), then
// claimed 200 at a time for one worker and ended succeeded, until none is left.
//
// Layouts (`--layouts`, in a rotated order per repetition, a Latin square over the repetitions):
//   A-store     today's schema and today's code: Store.dispatchRuns and AttemptEnder.report, as
//               bench:store runs them (the fast-path claim DISPATCH_FAST, the end FINISH_ATTEMPTS).
//   A-sql       today's schema, with this file's own SQL for the claim and the end (below): the
//               baseline the B layouts are compared with, statement shape for statement shape. It
//               writes what the store writes (the same rows, columns and values), so its WAL per run
//               should match A-store's; its reads are simpler (next paragraph).
//   B1          a narrow queue table `run_queue` (one row per queued run, one index in the claim's
//               order) and runs without its indexes for queued runs only (runs_claim, runs_ahead,
//               runs_queued_by_job, runs_queued_requests, runs_target): enqueue writes both rows
//               (a statement trigger on runs), the claim deletes the queue rows it takes and
//               updates the runs. runs keeps the partial indexes of running and ended runs
//               (runs_deadline, runs_worker, runs_active, runs_finished, runs_unsuccessful), so no
//               UPDATE of a run's status can be HOT: what the queue table alone buys.
//   B2-ffN      run_queue as B1, plus a narrow `run_running` table (one row per running attempt:
//               worker, run, attempt, deadline, claim seq, job; primary key (worker_id, id), an index
//               on deadline_at): the claim inserts it, the end deletes it. runs keeps only the indexes
//               whose columns and predicates no claim or end changes (read from the migrated schema
//               and printed: every index that would block HOT is dropped), and is filled to N % so
//               that both UPDATEs can be HOT (its new row version on the same page). A claim takes
//               consecutive runs, so it updates every row of a page in one statement: only with
//               room for one more version of each (about 50 %) can all of them be HOT; the end then
//               reuses the room that pruning the claim's old versions frees.
//   suffix -lean  B2 without the job_id indexes on run_queue and run_running (default: with them;
//               they take the place of runs_active, which overlap policies and buffered runs read).
//
// The SQL of A-sql and the B layouts, one statement each for a claim and for an end of a batch:
//   claim (A-sql)  the worker's row, then its group's queued runs (namespace, group, its handlers,
//                  available) in the order priority DESC, available_at, id from runs_claim, LIMIT n
//                  FOR UPDATE SKIP LOCKED, and one UPDATE of them: status running, attempt + 1,
//                  worker_id, started_at, deadline_at, finished_at NULL, claim_seq, target_worker_id
//                  NULL (DISPATCH_FAST's SET list), returning the columns the store returns, with the
//                  job's name and task.
//   claim (B)      the same pick from run_queue's index, `DELETE FROM run_queue` of the rows picked
//                  (found again by their ctid: run_queue has no index on id; a cancel or a retention
//                  delete of a queued run would find its row through the claim index, whose key the
//                  runs row holds), then the same UPDATE of runs (fenced by status = 'queued'); B2
//                  also inserts the run_running rows.
//   end            FINISH_ATTEMPTS's `ended` UPDATE (its SET list, its fences: run id, attempt,
//                  status running, the worker, the lease, the job's buffering flags) and its
//                  `attempts_ended` INSERT unchanged: an attempt that succeeded writes no attempt row
//                  today (its run's row says all), so the drain inserts none in any layout; B2 also
//                  deletes the run_running rows of the ended runs.
// Simplifications, the same in A-sql and the B layouts: the store's fast-path claim first reads a
// window of 4 × n queued runs without locks and checks their jobs' dispatch policies (routing,
// limits, resources) and the runs' target worker; the emulation reads only the n runs it takes. The
// store's end also reschedules fixed-delay jobs and looks up the jobs `after` the ended runs' jobs
// (DEPENDENTS_OF_ENDED); the emulation does neither (this drain's job has none). Both are reads: the
// A-store and A-sql rows show what they cost. The B layouts handle only what the drain does: a retry
// (queued again) would insert a run_queue row, a lost or timed-out end would delete run_running,
// cancels and retention would delete from both; none of that is built. run_queue and run_running
// have no foreign key to runs.
//
// Measured per layout and repetition:
//   WAL bytes per run of the enqueue, the claims and the ends: the server's insert position before
//     and after each call (server-wide, like bench:store: nothing else may write meanwhile); the
//     total over the drain divided by the runs, and the median batch's bytes per run (robust to a
//     write of another database landing in one window). A CHECKPOINT before each layout's enqueue
//     keeps full-page images out (checkpoints that happened anyway during a layout are counted).
//   Server CPU per 1,000 runs of the claims and of the ends: time on CPU of the backend(s) that ran
//     them (/proc/<pid>/schedstat, ns), read before and after each call. Noisy on a shared 2-core
//     machine: rely on WAL and buffer hits.
//   Buffer hits of one claim and one end of a full batch in the middle of the drain, run under
//     EXPLAIN (ANALYZE, BUFFERS) in a transaction rolled back: the hits of every relation of the
//     schema (pg_stat_get_xact_blocks_hit before and after, per relation: every node of the
//     statement, its data-modifying CTEs included), and EXPLAIN's own numbers (the plan's top node,
//     the UPDATE of runs, planning).
//   HOT: n_tup_upd and n_tup_hot_upd of runs after the drain, less the two rolled-back samples' own.
//   The cleanup left behind: a VACUUM of runs, attempts and the narrow tables after the drain (this
//     server runs with autovacuum off, which the result records), its WAL and backend CPU per run.
// Result: bench/results/queue-shape-postgres-<timestamp>.json.
//   node --import tsx --conditions=@kairos/source src/queue-shape.ts [--runs 20000] [--batch 200] [--reps 3] [--layouts A-store,A-sql,B1,B2-ff100,B2-ff80,B2-ff70,B2-ff50,B2-ff50-lean]
import { parseArgs } from 'node:util';
import { AttemptEnder, compileJob, openStore, type Store } from '@kairos/server';
import pg from 'pg';
import { dispatchWindow } from '../../packages/kairos/src/store/dispatch-rows.ts';
import { FINISH_ATTEMPTS } from '../../packages/kairos/src/store/postgres/attempts.ts';
import { DISPATCH_FAST } from '../../packages/kairos/src/store/postgres/dispatch.ts';
import { serviceSettings } from './environment.ts';
import { createDatabase, type FreshDatabase } from './pg.ts';
import { saveResult } from './results.ts';
import { processCpuNs, spentNs } from './server-cpu.ts';
import { sleep } from './util.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '200' },
    reps: { type: 'string', default: '3' },
    layouts: { type: 'string', default: 'A-store,A-sql,B1,B2-ff100,B2-ff80,B2-ff70,B2-ff50,B2-ff50-lean' },
  },
});
const runs = Number(values.runs);
const batch = Number(values.batch);
const repetitions = Number(values.reps);

const WORKER = 'w';
/** The application_name of the store's connections and of this file's own, by which their backends are found. */
const STORE_APP = 'kairos-bench-queue-shape-store';
const SQL_APP = 'kairos-bench-queue-shape-sql';
/** The storage parameters migration 0039 gives the run tables, given to the narrow tables too. */
const RUN_TABLE_VACUUM =
  'autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.05';

interface Layout {
  name: string;
  /** store: today's code (Store.dispatchRuns, AttemptEnder.report); sql: this file's statements. */
  driver: 'store' | 'sql';
  /** 0: today's schema; 1: with run_queue; 2: with run_queue and run_running. */
  queue: 0 | 1 | 2;
  /** runs' fillfactor (%). */
  fillfactor: number;
  /** run_queue and run_running indexed by job_id (in place of runs_active). */
  jobIndexes: boolean;
}

function layoutOf(name: string): Layout {
  if (name === 'A-store') return { name, driver: 'store', queue: 0, fillfactor: 100, jobIndexes: false };
  if (name === 'A-sql') return { name, driver: 'sql', queue: 0, fillfactor: 100, jobIndexes: false };
  const match = /^B([12])(?:-ff(\d+))?(-lean)?$/.exec(name);
  if (!match) throw new Error(`unknown layout ${name}: A-store, A-sql, B1[-ffN], B2[-ffN][-lean]`);
  const fillfactor = match[2] === undefined ? 100 : Number(match[2]);
  if (!(fillfactor >= 10 && fillfactor <= 100)) throw new Error(`${name}: a fillfactor is 10 to 100`);
  return {
    name,
    driver: 'sql',
    queue: match[1] === '1' ? 1 : 2,
    fillfactor,
    // B1 keeps runs_active on runs: its run_queue needs no job index.
    jobIndexes: match[1] === '2' && match[3] === undefined,
  };
}
const layouts = values.layouts!.split(',').filter(Boolean).map(layoutOf);

/**
 * The runs columns whose values the drain's claim or end changes. An index that names one of them
 * (key, INCLUDE column, expression or predicate) makes that UPDATE non-HOT on PostgreSQL 15, whether
 * or not the row enters it. (A retry, queued again, would also change available_at.)
 */
const CHANGED_COLUMNS = [
  'status',
  'attempt',
  'worker_id',
  'started_at',
  'deadline_at',
  'finished_at',
  'claim_seq',
  'result',
  'error',
];
/** runs' indexes of queued runs only (predicate status = 'queued'): the queue table's in B. */
const QUEUED_ONLY = ['runs_claim', 'runs_ahead', 'runs_queued_by_job', 'runs_queued_requests', 'runs_target'];

interface RunsIndex {
  name: string;
  definition: string;
  /** The columns of CHANGED_COLUMNS it names: non-empty, it blocks HOT. */
  blocksHot: string[];
}

/** runs' indexes as the migrated schema has them. */
async function runsIndexes(client: pg.Client): Promise<RunsIndex[]> {
  const { rows } = await client.query<{ name: string; definition: string }>(
    `SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE i.indrelid = 'runs'::regclass ORDER BY c.relname`,
  );
  return rows.map(({ name, definition }) => {
    // Columns, expressions and predicate, without string literals ('running'::text).
    const body = definition.slice(definition.indexOf(' USING ')).replace(/'[^']*'/g, '');
    const words = new Set(body.match(/[a-z_]+/g) ?? []);
    return { name, definition, blocksHot: CHANGED_COLUMNS.filter((column) => words.has(column)) };
  });
}

/** The indexes of runs a layout drops. */
function droppedIndexes(layout: Layout, indexes: RunsIndex[]): string[] {
  if (layout.queue === 0) return [];
  const present = new Set(indexes.map((index) => index.name));
  for (const name of QUEUED_ONLY)
    if (!present.has(name))
      throw new Error(`runs has no index ${name}: the migrations changed, revisit this file`);
  return layout.queue === 1
    ? QUEUED_ONLY
    : indexes.filter((index) => index.blocksHot.length > 0).map((index) => index.name);
}

/** The statements that make a layout's schema out of the migrated one. */
function layoutSql(layout: Layout, indexes: RunsIndex[]): string[] {
  if (layout.queue === 0) return [];
  const sql = [
    ...droppedIndexes(layout, indexes).map((name) => `DROP INDEX ${name}`),
    `ALTER TABLE runs SET (fillfactor = ${layout.fillfactor})`,
    `CREATE TABLE run_queue (id bigint NOT NULL, namespace text NOT NULL, group_name text NOT NULL,
       handler text NOT NULL, priority integer NOT NULL, available_at bigint NOT NULL, job_id bigint NOT NULL)
       WITH (${RUN_TABLE_VACUUM})`,
    'CREATE INDEX run_queue_claim ON run_queue (namespace, group_name, priority DESC, available_at, id)',
    ...(layout.jobIndexes ? ['CREATE INDEX run_queue_job ON run_queue (job_id)'] : []),
    // Every statement that inserts runs (the store's ENQUEUE among them) queues its queued runs.
    `CREATE FUNCTION bench_queue_runs() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
     BEGIN
       INSERT INTO run_queue (id, namespace, group_name, handler, priority, available_at, job_id)
       SELECT id, namespace, group_name, handler, priority, available_at, job_id FROM new_runs WHERE status = 'queued';
       RETURN NULL;
     END $$`,
    `CREATE TRIGGER bench_queue_runs AFTER INSERT ON runs REFERENCING NEW TABLE AS new_runs
       FOR EACH STATEMENT EXECUTE FUNCTION bench_queue_runs()`,
  ];
  if (layout.queue === 2)
    sql.push(
      `CREATE TABLE run_running (worker_id text NOT NULL, id bigint NOT NULL, attempt integer NOT NULL,
         deadline_at bigint NOT NULL, claim_seq bigint, job_id bigint NOT NULL, PRIMARY KEY (worker_id, id))
         WITH (${RUN_TABLE_VACUUM})`,
      'CREATE INDEX run_running_deadline ON run_running (deadline_at)',
      ...(layout.jobIndexes ? ['CREATE INDEX run_running_job ON run_running (job_id)'] : []),
    );
  return sql;
}

/** What a claim writes into runs: DISPATCH_FAST's SET list. $1 worker, $2 now, $4 claim seq. */
const CLAIM_SET = `status = 'running', attempt = r.attempt + 1, worker_id = $1, started_at = $2::bigint,
      deadline_at = $2::bigint + r.timeout_ms, finished_at = NULL, claim_seq = $4::bigint, target_worker_id = NULL`;
const CLAIM_RETURNING = `r.id, r.attempt, r.job_id, r.handler, r.params, r.fire_time, r.timeout_ms, r.max_attempts,
      r.shard, r.shard_count, r.priority, r.available_at, r.trace_context, r.task`;
const CLAIMED_ROWS = `
  SELECT c.id, c.attempt, j.name AS job_name, c.handler, c.params::text AS params, c.fire_time, c.timeout_ms,
    c.max_attempts, c.shard, c.shard_count, coalesce(c.task, j.task)::text AS task, c.trace_context
  FROM claimed c JOIN jobs j ON j.id = c.job_id
  ORDER BY c.priority DESC, c.available_at, c.id`;

/** A claim of up to $3 runs for worker $1 at $2 ($4 its poll number): A-sql (queue 0) or B. */
function claimSql(queue: 0 | 1 | 2): string {
  const worker = `w AS (SELECT namespace, group_name, handlers FROM workers WHERE id = $1 AND status = 'active')`;
  if (queue === 0)
    return `
  WITH ${worker},
  picked AS (
    SELECT r.id FROM runs r
    WHERE r.status = 'queued' AND r.group_name = (SELECT group_name FROM w) AND r.namespace = (SELECT namespace FROM w)
      AND r.handler IN (SELECT jsonb_array_elements_text(handlers) FROM w) AND r.available_at <= $2::bigint
    ORDER BY r.priority DESC, r.available_at, r.id
    LIMIT $3 FOR UPDATE SKIP LOCKED),
  claimed AS (
    UPDATE runs r SET ${CLAIM_SET}
    FROM picked WHERE r.id = picked.id
    RETURNING ${CLAIM_RETURNING})${CLAIMED_ROWS}`;
  return `
  WITH ${worker},
  picked AS (
    SELECT q.ctid AS tid FROM run_queue q
    WHERE q.namespace = (SELECT namespace FROM w) AND q.group_name = (SELECT group_name FROM w)
      AND q.handler IN (SELECT jsonb_array_elements_text(handlers) FROM w) AND q.available_at <= $2::bigint
    ORDER BY q.priority DESC, q.available_at, q.id
    LIMIT $3 FOR UPDATE SKIP LOCKED),
  dequeued AS (
    DELETE FROM run_queue q WHERE q.ctid = ANY (ARRAY(SELECT tid FROM picked)) RETURNING q.id),
  claimed AS (
    UPDATE runs r SET ${CLAIM_SET}
    FROM dequeued d WHERE r.id = d.id AND r.status = 'queued'
    RETURNING ${CLAIM_RETURNING})${
      queue === 2
        ? `,
  running AS (
    INSERT INTO run_running (worker_id, id, attempt, deadline_at, claim_seq, job_id)
    SELECT $1, id, attempt, $2::bigint + timeout_ms, $4::bigint, job_id FROM claimed)`
        : ''
    }${CLAIMED_ROWS}`;
}

/**
 * The end of a batch of attempts: FINISH_ATTEMPTS's `ended` and `attempts_ended` (its $3 true), the
 * worker's fence required; B2 also deletes the ended runs' run_running rows. $1 [{run_id, attempt,
 * run_status, available_at, result, error, attempt_status, lease_ended_by, worker_id}], $2 now,
 * $3 bigint[] the run ids.
 */
function endSql(queue: 0 | 1 | 2): string {
  return `
  WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb)
      AS x(run_id bigint, attempt int, run_status text, available_at bigint, result jsonb, error jsonb, attempt_status text,
        lease_ended_by bigint, worker_id text)),
  ended AS (
    UPDATE runs r SET
      status = i.run_status,
      available_at = coalesce(i.available_at, r.available_at),
      finished_at = CASE WHEN i.run_status = 'queued' THEN NULL ELSE $2::bigint END,
      result = CASE WHEN i.run_status = 'queued' THEN r.result ELSE i.result END,
      error = i.error, deadline_at = NULL
    FROM input i, jobs p
    WHERE r.id = ANY($3::bigint[]) AND r.id = i.run_id AND r.attempt = i.attempt
      AND (r.status = 'running') IS TRUE AND r.worker_id = i.worker_id
      AND p.id = r.job_id
      AND (i.lease_ended_by IS NULL OR NOT EXISTS (
        SELECT 1 FROM workers w WHERE w.id = r.worker_id AND w.lease_expires_at > i.lease_ended_by))
      AND (i.run_status = 'queued'
        OR NOT (p.buffers OR r.promotes OR r.workflow_instance_id IS NOT NULL OR r.broadcast_run_id IS NOT NULL))
    RETURNING r.id, r.attempt, r.job_id, r.cause, r.status, r.result, r.worker_id, r.started_at, r.workflow_instance_id,
      r.broadcast_run_id, i.attempt_status, i.error, i.run_status <> 'queued' AND (p.buffers OR r.promotes) AS buffering),
  attempts_ended AS (
    INSERT INTO attempts (run_id, attempt, worker_id, status, started_at, finished_at, error)
    SELECT id, attempt, worker_id, attempt_status, started_at, $2::bigint, error FROM ended
    WHERE NOT (attempt_status = 'succeeded' AND status = 'succeeded'))${
      queue === 2
        ? `,
  released AS (
    DELETE FROM run_running q USING ended e WHERE q.worker_id = e.worker_id AND q.id = e.id)`
        : ''
    }
  SELECT id, attempt, job_id, status, buffering, workflow_instance_id, broadcast_run_id FROM ended`;
}

/** A claimed attempt. */
interface Claimed {
  runId: number;
  attempt: number;
}

/** The input of an end of `claimed`, succeeded (FINISH_ATTEMPTS's $1); `workerId` null as AttemptEnder.report without a worker. */
function endInput(claimed: readonly Claimed[], workerId: string | null): string {
  return JSON.stringify(
    claimed.map((run) => ({
      run_id: run.runId,
      attempt: run.attempt,
      run_status: 'succeeded',
      available_at: null,
      result: null,
      error: null,
      attempt_status: 'succeeded',
      lease_ended_by: null,
      worker_id: workerId,
    })),
  );
}

/** The server's WAL insert position, in bytes. */
async function walBytes(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ b: number }>(
    "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::float8 AS b",
  );
  return rows[0]!.b;
}

/** The redo position of the server's last checkpoint: it moves when a checkpoint happens. */
async function checkpointRedo(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ redo: string }>(
    'SELECT redo_lsn::text AS redo FROM pg_control_checkpoint()',
  );
  return rows[0]!.redo;
}

/** CPU so far (ns) of the backends of database `name` whose application_name is `app`, by pid. */
async function backendsNs(pool: pg.Pool, name: string, app: string): Promise<Map<number, number>> {
  const { rows } = await pool.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2',
    [name, app],
  );
  const ns = new Map<number, number>();
  for (const { pid } of rows) {
    const cpu = processCpuNs(pid);
    if (cpu !== null) ns.set(pid, cpu);
  }
  return ns;
}

/** Every relation of the schema (tables, indexes, sequences, TOAST tables and their indexes), by oid. */
async function schemaRelations(client: pg.Client): Promise<Map<number, string>> {
  const { rows } = await client.query<{ oid: number; name: string }>(
    `SELECT c.oid, c.relname AS name FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace
     UNION ALL
     SELECT t.oid, 'toast of ' || c.relname FROM pg_class c JOIN pg_class t ON t.oid = c.reltoastrelid
     WHERE c.relnamespace = current_schema()::regnamespace
     UNION ALL
     SELECT x.oid, 'toast index of ' || c.relname FROM pg_class c JOIN pg_index i ON i.indrelid = c.reltoastrelid
       JOIN pg_class x ON x.oid = i.indexrelid
     WHERE c.relnamespace = current_schema()::regnamespace`,
  );
  return new Map(rows.map((row) => [Number(row.oid), row.name]));
}

interface PlanNode {
  'Node Type': string;
  Operation?: string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Subplan Name'?: string;
  'CTE Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: PlanNode[];
}

/** One statement run under EXPLAIN (ANALYZE, BUFFERS) and rolled back. */
interface Sample {
  /** Buffer hits of all the schema's relations (every node, data-modifying CTEs included). */
  hits: number;
  /** Buffer reads (misses of shared_buffers) of the schema's relations. */
  reads: number;
  byRelation: Record<string, number>;
  /** EXPLAIN's Shared Hit Blocks of the plan's top node, of the UPDATE of runs, of planning. */
  explainTop: number;
  explainUpdateRuns: number | null;
  planning: number;
  /** UPDATEs of runs in the statement, and how many of them were HOT. */
  runsUpdated: number;
  runsHotUpdated: number;
  rows: number;
  nodes: string[];
}

async function sample(
  client: pg.Client,
  relations: Map<number, string>,
  runsOid: number,
  text: string,
  params: unknown[],
): Promise<Sample> {
  const oids = [...relations.keys()];
  const counters = async () => {
    const { rows } = await client.query<{
      oid: number;
      hit: string;
      fetched: string;
      upd: string;
      hot: string;
    }>(
      `SELECT oid, pg_stat_get_xact_blocks_hit(oid) AS hit, pg_stat_get_xact_blocks_fetched(oid) AS fetched,
         pg_stat_get_xact_tuples_updated(oid) AS upd, pg_stat_get_xact_tuples_hot_updated(oid) AS hot
       FROM unnest($1::oid[]) AS oid`,
      [oids],
    );
    return new Map(
      rows.map((row) => [
        Number(row.oid),
        {
          hit: Number(row.hit),
          read: Number(row.fetched) - Number(row.hit),
          upd: Number(row.upd),
          hot: Number(row.hot),
        },
      ]),
    );
  };
  await client.query('BEGIN');
  try {
    const before = await counters();
    const { rows } = await client.query<{
      'QUERY PLAN': Array<{ Plan: PlanNode; Planning?: Record<string, number> }>;
    }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`, params);
    const after = await counters();
    const plan = rows[0]!['QUERY PLAN'][0]!;
    const byRelation: Record<string, number> = {};
    let hits = 0;
    let reads = 0;
    for (const [oid, now] of after) {
      const then = before.get(oid)!;
      const hit = now.hit - then.hit;
      hits += hit;
      reads += now.read - then.read;
      if (hit > 0) byRelation[relations.get(oid)!] = hit;
    }
    const nodes: string[] = [];
    let updateRuns: number | null = null;
    const walk = (node: PlanNode, depth: number) => {
      const what = [
        node.Operation ?? node['Node Type'],
        node['Relation Name'] ?? node['CTE Name'],
        node['Index Name'] && `using ${node['Index Name']}`,
        node['Subplan Name'] && `(${node['Subplan Name']})`,
      ]
        .filter(Boolean)
        .join(' ');
      nodes.push(
        `${'  '.repeat(depth)}${what}: rows ${node['Actual Rows']} × ${node['Actual Loops']}, hit ${node['Shared Hit Blocks']}`,
      );
      if (
        node['Node Type'] === 'ModifyTable' &&
        node.Operation === 'Update' &&
        node['Relation Name'] === 'runs'
      )
        updateRuns = node['Shared Hit Blocks'] ?? 0;
      for (const child of node.Plans ?? []) walk(child, depth + 1);
    };
    walk(plan.Plan, 0);
    const runsBefore = before.get(runsOid)!;
    const runsAfter = after.get(runsOid)!;
    return {
      hits,
      reads,
      byRelation,
      explainTop: plan.Plan['Shared Hit Blocks'] ?? 0,
      explainUpdateRuns: updateRuns,
      planning: plan.Planning?.['Shared Hit Blocks'] ?? 0,
      runsUpdated: runsAfter.upd - runsBefore.upd,
      runsHotUpdated: runsAfter.hot - runsBefore.hot,
      rows: plan.Plan['Actual Rows'] ?? 0,
      nodes,
    };
  } finally {
    await client.query('ROLLBACK');
  }
}

/** One layout, one repetition. */
interface Rep {
  layout: string;
  /** WAL bytes per run: the enqueue; the claims and the ends (total over the drain / runs). */
  walEnqueue: number;
  walClaim: number;
  walEnd: number;
  /** WAL bytes per run of the median batch. */
  walClaimMedian: number;
  walEndMedian: number;
  /** Server CPU, ms per 1,000 runs. */
  serverClaim: number;
  serverEnd: number;
  /** Buffer hits of one claim and one end of a full batch. */
  claimHits: number;
  endHits: number;
  /** runs: UPDATEs during the drain and the HOT ones (the samples' own left out). */
  runsUpdated: number;
  runsHotUpdated: number;
  hotPercent: number;
  /** The VACUUM after the drain: WAL bytes per run, backend CPU ms per 1,000 runs. */
  vacuumWal: number;
  vacuumCpu: number;
  /** Checkpoints that started during the enqueue and the drain (0: no full-page images from one). */
  checkpoints: number;
  /** Sizes after the drain, before the VACUUM, in kB. */
  sizesKb: Record<string, number>;
  claimSample: Sample;
  endSample: Sample;
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

async function once(layout: Layout): Promise<Rep> {
  const database: FreshDatabase = await createDatabase('queue_shape');
  const name = new URL(database.url).pathname.slice(1);
  const url = new URL(database.url);
  url.searchParams.set('schema', 'kairos');
  url.searchParams.set('application_name', STORE_APP);
  const store: Store = openStore(url.toString());
  const sql = new pg.Client({
    connectionString: database.url,
    application_name: SQL_APP,
    options: '-c search_path=kairos',
  });
  sql.on('error', (error) => console.error(`bench client: ${error.message}`));
  let connected = false;
  try {
    await store.migrate();
    await sql.connect();
    connected = true;
    const indexes = await runsIndexes(sql);
    for (const statement of layoutSql(layout, indexes)) await sql.query(statement);
    if (layout.queue === 2) {
      const left = (await runsIndexes(sql)).filter((index) => index.blocksHot.length > 0);
      if (left.length > 0) throw new Error(`${layout.name}: runs still has ${left.map((i) => i.name)}`);
    }
    const job = await store.createJob(
      compileJob({ name: 'noop', handler: 'noop', trigger: { kind: 'manual' } }),
      null,
      Date.now(),
    );
    await store.registerWorker(
      {
        id: WORKER,
        name: WORKER,
        group: job.group,
        handlers: [job.handler],
        capacity: batch,
        labels: {},
        version: '',
        host: 'localhost',
      },
      600_000,
      Date.now(),
    );
    const relations = await schemaRelations(sql);
    const runsOid = Number(
      (await sql.query<{ oid: number }>("SELECT 'runs'::regclass::oid AS oid")).rows[0]!.oid,
    );
    const { pool } = database;

    // Enqueue, through the store (and, in B, its trigger), after a checkpoint.
    await pool.query('CHECKPOINT');
    const redo = await checkpointRedo(pool);
    const walBefore = await walBytes(pool);
    for (let queued = 0; queued < runs; queued += 1000) {
      await store.enqueueRuns(
        job.id,
        Array.from({ length: Math.min(1000, runs - queued) }, () => ({ params: {}, priority: 0 })),
        Date.now(),
      );
    }
    const walQueued = await walBytes(pool);
    if (layout.queue > 0) {
      const { rows } = await sql.query<{ n: number }>('SELECT count(*)::int AS n FROM run_queue');
      if (rows[0]!.n !== runs) throw new Error(`${layout.name}: ${rows[0]!.n} queue rows for ${runs} runs`);
    }
    await sql.query('ANALYZE');

    // The drain.
    const ender = new AttemptEnder(store);
    const claimText = layout.driver === 'store' ? DISPATCH_FAST : claimSql(layout.queue);
    const endText = layout.driver === 'store' ? FINISH_ATTEMPTS : endSql(layout.queue);
    const claimParams = (now: number) =>
      layout.driver === 'store'
        ? [WORKER, now, batch, dispatchWindow(batch), false, null]
        : [WORKER, now, batch, null];
    const endParams = (claimed: Claimed[], now: number) =>
      layout.driver === 'store'
        ? [endInput(claimed, null), now, true, claimed.map((run) => run.runId)]
        : [endInput(claimed, WORKER), now, claimed.map((run) => run.runId)];
    const claim = async (now: number): Promise<Claimed[]> => {
      if (layout.driver === 'store') return store.dispatchRuns(WORKER, batch, now, 0.5);
      const { rows } = await sql.query<{ id: string; attempt: number }>({
        name: 'claim',
        text: claimText,
        values: claimParams(now),
      });
      return rows.map((row) => ({ runId: Number(row.id), attempt: row.attempt }));
    };
    const end = async (claimed: Claimed[], now: number): Promise<number> => {
      if (layout.driver === 'store') {
        const results = await ender.report(
          claimed.map((run) => ({ runId: run.runId, attempt: run.attempt, outcome: 'succeeded' as const })),
          now,
        );
        return results.filter((result) => result.ok).length;
      }
      const { rows } = await sql.query({ name: 'end', text: endText, values: endParams(claimed, now) });
      return rows.length;
    };
    const app = layout.driver === 'store' ? STORE_APP : SQL_APP;
    const middle = Math.floor(runs / batch / 2);
    let claimSample: Sample | undefined;
    let endSample: Sample | undefined;
    let serverClaimNs = 0;
    let serverEndNs = 0;
    let walClaim = 0;
    let walEnd = 0;
    const claimBatches: number[] = [];
    const endBatches: number[] = [];
    let done = 0;
    for (let n = 0; ; n++) {
      if (n === middle)
        claimSample = await sample(sql, relations, runsOid, claimText, claimParams(Date.now()));
      let cpu = await backendsNs(pool, name, app);
      let wal = await walBytes(pool);
      const claimed = await claim(Date.now());
      let cpuNext = await backendsNs(pool, name, app);
      let walNext = await walBytes(pool);
      serverClaimNs += spentNs(cpu, cpuNext);
      walClaim += walNext - wal;
      if (claimed.length === 0) break;
      claimBatches.push((walNext - wal) / claimed.length);
      if (n === middle)
        endSample = await sample(sql, relations, runsOid, endText, endParams(claimed, Date.now()));
      cpu = await backendsNs(pool, name, app);
      wal = await walBytes(pool);
      const ended = await end(claimed, Date.now());
      cpuNext = await backendsNs(pool, name, app);
      walNext = await walBytes(pool);
      serverEndNs += spentNs(cpu, cpuNext);
      walEnd += walNext - wal;
      endBatches.push((walNext - wal) / claimed.length);
      if (ended !== claimed.length)
        throw new Error(`${layout.name}: ended ${ended} of ${claimed.length} runs`);
      done += ended;
    }
    if (done !== runs) throw new Error(`${layout.name}: drained ${done} of ${runs} runs`);
    if (!claimSample || !endSample) throw new Error(`${layout.name}: no sample (fewer than two batches?)`);
    const checkpoints = (await checkpointRedo(pool)) === redo ? 0 : 1;

    // HOT: the backends' table counters, once flushed (the store's backends flush within ~10 s of idling).
    await sql.query('SELECT pg_stat_force_next_flush()');
    const expected = 2 * runs + claimSample.runsUpdated + endSample.runsUpdated;
    let updated = { upd: 0, hot: 0 };
    for (let waited = 0; waited < 20_000; waited += 250) {
      const { rows } = await pool.query<{ upd: string; hot: string }>(
        'SELECT n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE relid = $1',
        [runsOid],
      );
      updated = { upd: Number(rows[0]!.upd), hot: Number(rows[0]!.hot) };
      if (updated.upd >= expected) break;
      await sleep(250);
    }
    if (updated.upd < expected)
      console.warn(`  ${layout.name}: runs counted ${updated.upd} of ${expected} updates`);
    const runsUpdated = updated.upd - claimSample.runsUpdated - endSample.runsUpdated;
    const runsHotUpdated = updated.hot - claimSample.runsHotUpdated - endSample.runsHotUpdated;

    // Sizes, then the cleanup the drain left behind.
    const tables = [
      'runs',
      'attempts',
      ...(layout.queue >= 1 ? ['run_queue'] : []),
      ...(layout.queue === 2 ? ['run_running'] : []),
    ];
    const sizesKb: Record<string, number> = {};
    for (const table of tables) {
      const { rows } = await sql.query<{ heap: string; indexes: string }>(
        'SELECT pg_relation_size($1::regclass) AS heap, pg_indexes_size($1::regclass) AS indexes',
        [table],
      );
      sizesKb[table] = Number(rows[0]!.heap) / 1024;
      sizesKb[`${table} indexes`] = Number(rows[0]!.indexes) / 1024;
    }
    const vacuumCpu = await backendsNs(pool, name, SQL_APP);
    const vacuumWal = await walBytes(pool);
    for (const table of tables) await sql.query(`VACUUM ${table}`);
    const vacuumCpuNs = spentNs(vacuumCpu, await backendsNs(pool, name, SQL_APP));
    const vacuumWalBytes = (await walBytes(pool)) - vacuumWal;

    return {
      layout: layout.name,
      walEnqueue: (walQueued - walBefore) / runs,
      walClaim: walClaim / runs,
      walEnd: walEnd / runs,
      walClaimMedian: median(claimBatches),
      walEndMedian: median(endBatches),
      serverClaim: serverClaimNs / 1000 / runs,
      serverEnd: serverEndNs / 1000 / runs,
      claimHits: claimSample.hits,
      endHits: endSample.hits,
      runsUpdated,
      runsHotUpdated,
      hotPercent: runsUpdated > 0 ? (100 * runsHotUpdated) / runsUpdated : 0,
      vacuumWal: vacuumWalBytes / runs,
      vacuumCpu: vacuumCpuNs / 1000 / runs,
      checkpoints,
      sizesKb,
      claimSample,
      endSample,
    };
  } finally {
    if (connected) await sql.end();
    await store.close();
    await database.drop();
  }
}

const round = (x: number, digits = 1) => Number(x.toFixed(digits));
const fmt = (x: number, width: number, digits = 0) => x.toFixed(digits).padStart(width);
const HEADER =
  `${'layout'.padEnd(14)}${'WAL B/run: enqueue'.padStart(19)}${'claim'.padStart(7)}${'end'.padStart(6)}` +
  `${'(total: claim'.padStart(15)}${'end)'.padStart(6)}` +
  `${'CPU ms/1k: claim'.padStart(18)}${'end'.padStart(6)}` +
  `${'hits/batch: claim'.padStart(19)}${'end'.padStart(6)}${'HOT %'.padStart(7)}` +
  `${'vacuum: B/run'.padStart(15)}${'ms/1k'.padStart(7)}`;
const line = (
  r: Omit<Rep, 'claimSample' | 'endSample' | 'sizesKb' | 'checkpoints' | 'runsUpdated' | 'runsHotUpdated'>,
) =>
  `${r.layout.padEnd(14)}${fmt(r.walEnqueue, 19)}${fmt(r.walClaimMedian, 7)}${fmt(r.walEnd === 0 ? 0 : r.walEndMedian, 6)}` +
  `${fmt(r.walClaim, 15)}${fmt(r.walEnd, 6)}` +
  `${fmt(r.serverClaim, 18, 1)}${fmt(r.serverEnd, 6, 1)}` +
  `${fmt(r.claimHits, 19)}${fmt(r.endHits, 6)}${fmt(r.hotPercent, 7, 1)}` +
  `${fmt(r.vacuumWal, 15)}${fmt(r.vacuumCpu, 7, 1)}`;

console.log(
  `PostgreSQL, queue layouts: ${runs} runs, claimed ${batch} at a time for one worker, ended succeeded; ` +
    `${repetitions} repetitions of ${layouts.map((l) => l.name).join(', ')}`,
);
// Today's runs indexes, read from a migrated schema, and which of them a claim or an end cannot pass HOT.
const probe = await createDatabase('queue_shape_probe');
let layoutAIndexes: RunsIndex[];
try {
  const url = new URL(probe.url);
  url.searchParams.set('schema', 'kairos');
  const store = openStore(url.toString());
  await store.migrate();
  await store.close();
  const client = new pg.Client({ connectionString: probe.url, options: '-c search_path=kairos' });
  await client.connect();
  try {
    layoutAIndexes = await runsIndexes(client);
  } finally {
    await client.end();
  }
} finally {
  await probe.drop();
}
console.log("today's runs indexes (blocks HOT: the columns of a claim's or an end's changes it names):");
for (const index of layoutAIndexes)
  console.log(
    `  ${index.name.padEnd(22)} ${index.blocksHot.length > 0 ? `blocks HOT (${index.blocksHot.join(', ')})` : 'HOT-safe'.padEnd(10)}  ${index.definition.slice(index.definition.indexOf(' USING ') + 1)}`,
  );
const schemas = Object.fromEntries(
  layouts.map((layout) => [
    layout.name,
    {
      ...layout,
      droppedIndexes: droppedIndexes(layout, layoutAIndexes),
      ddl: layoutSql(layout, layoutAIndexes),
      claim:
        layout.driver === 'store' ? 'DISPATCH_FAST (store/postgres/dispatch.ts)' : claimSql(layout.queue),
      end: layout.driver === 'store' ? 'FINISH_ATTEMPTS (store/postgres/attempts.ts)' : endSql(layout.queue),
    },
  ]),
);
for (const layout of layouts)
  if (layout.queue > 0)
    console.log(`  ${layout.name} drops: ${droppedIndexes(layout, layoutAIndexes).join(', ')}`);

console.log(`per repetition (WAL claim/end: median batch, then total over the drain):\n  ${HEADER}`);
const reps: Rep[] = [];
for (let rep = 0; rep < repetitions; rep++) {
  for (let k = 0; k < layouts.length; k++) {
    const layout = layouts[(rep + k) % layouts.length]!;
    const r = await once(layout);
    reps.push(r);
    console.log(`  ${line(r)}${r.checkpoints > 0 ? '  (a checkpoint during it)' : ''}`);
  }
}

const NUMERIC = [
  'walEnqueue',
  'walClaim',
  'walEnd',
  'walClaimMedian',
  'walEndMedian',
  'serverClaim',
  'serverEnd',
  'claimHits',
  'endHits',
  'runsUpdated',
  'runsHotUpdated',
  'hotPercent',
  'vacuumWal',
  'vacuumCpu',
] as const;
type Numeric = (typeof NUMERIC)[number];
const medians = layouts.map((layout) => {
  const of = reps.filter((r) => r.layout === layout.name);
  const m = Object.fromEntries(
    NUMERIC.map((key) => [key, round(median(of.map((r) => r[key])), 2)]),
  ) as Record<Numeric, number>;
  return {
    layout: layout.name,
    ...m,
    /** Server CPU's spread over the repetitions, ms per 1,000 runs. */
    serverClaimRange: [
      round(Math.min(...of.map((r) => r.serverClaim)), 2),
      round(Math.max(...of.map((r) => r.serverClaim)), 2),
    ],
    serverEndRange: [
      round(Math.min(...of.map((r) => r.serverEnd)), 2),
      round(Math.max(...of.map((r) => r.serverEnd)), 2),
    ],
    claimHitsByRelation: of[0]!.claimSample.byRelation,
    endHitsByRelation: of[0]!.endSample.byRelation,
    claimExplain: {
      top: of[0]!.claimSample.explainTop,
      updateRuns: of[0]!.claimSample.explainUpdateRuns,
      planning: of[0]!.claimSample.planning,
    },
    endExplain: {
      top: of[0]!.endSample.explainTop,
      updateRuns: of[0]!.endSample.explainUpdateRuns,
      planning: of[0]!.endSample.planning,
    },
  };
});
console.log(`medians:\n  ${HEADER}`);
for (const m of medians) console.log(`  ${line(m)}`);
console.log('server CPU spread over the repetitions (ms per 1,000 runs):');
for (const m of medians)
  console.log(
    `  ${m.layout.padEnd(14)} claim ${m.serverClaimRange.map((x) => x.toFixed(1)).join('–')}  end ${m.serverEndRange.map((x) => x.toFixed(1)).join('–')}`,
  );
console.log('buffer hits of a claim and of an end of a full batch, by relation (first repetition):');
for (const m of medians) {
  const show = (byRelation: Record<string, number>) =>
    Object.entries(byRelation)
      .sort((a, b) => b[1] - a[1])
      .map(([relation, hits]) => `${relation} ${hits}`)
      .join(', ');
  console.log(`  ${m.layout} claim: ${show(m.claimHitsByRelation)}`);
  console.log(`  ${m.layout} end:   ${show(m.endHitsByRelation)}`);
}
console.log('sizes after the drain, before the VACUUM (kB, first repetition):');
for (const layout of layouts) {
  const first = reps.find((r) => r.layout === layout.name)!;
  console.log(
    `  ${layout.name.padEnd(14)} ${Object.entries(first.sizesKb)
      .map(([relation, kb]) => `${relation} ${kb}`)
      .join(', ')}`,
  );
}

saveResult('queue-shape-postgres', {
  settings: { runs, batch, reps: repetitions, layouts: layouts.map((l) => l.name) },
  units: {
    wal: 'bytes per run (walClaim/walEnd: total over the drain; …Median: the median batch)',
    serverCpu: 'ms per 1,000 runs, the backends that ran the statements (/proc/<pid>/schedstat)',
    hits: 'shared buffer hits of one statement of a full batch, mid-drain, rolled back',
    vacuum:
      'VACUUM of the layout’s run tables after the drain: WAL bytes per run, backend CPU ms per 1,000 runs',
  },
  changedColumns: CHANGED_COLUMNS,
  layoutAIndexes,
  layouts: schemas,
  reps,
  medians,
  services: { postgres: await serviceSettings('postgres') },
});
