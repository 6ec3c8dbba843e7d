// `npm run bench:store`: the store's own cost per run, without HTTP or worker processes, on SQLite
// (`--dialect sqlite`, the default: a file in a temporary folder) or on PostgreSQL (`--dialect postgres`:
// a fresh database of the local server, BENCH_DATABASE_URL). N runs are queued through the store, then
// claimed in batches of 200 for one worker and reported succeeded through the node's AttemptEnder,
// until none is left; prints the CPU time per 1,000 runs of the claims and of the reports. One process,
// no other load of its own: steadier than the full drain, for comparing changes to the store's
// statements and indexes.
// On PostgreSQL that CPU is the client's side (the store's code and the driver, in this process); the
// server's side is measured apart, for claims and for reports: the time on CPU of the store's backends
// (found by their application_name in pg_stat_activity; /proc/<pid>/schedstat, in ns) read before and
// after each call. pg_stat_statements is not used for it: it times statements by the wall clock, and the
// local server does not load it (shared_preload_libraries); the result file records whether it could.
// Also on PostgreSQL: the WAL bytes per run that the claims and the reports wrote (the insert position
// before and after each call; server-wide, so nothing else may write meanwhile). They count the writes
// themselves (heap rows, index entries, commit records) and barely move with the machine's load, where
// the CPU times of a variant moved by ±25 % between repetitions on the shared 2-core machine.
// `--alert-rule`: with an enabled run-failed alert rule, so that every run end also writes its alert
// outbox row (the cost of alerts on the hot path).
// `--variants base,drop-index:runs_created,…`: what a change of the schema would buy, measured before
// it is built, each variant a fresh store changed after its migrations (`+` joins changes), the
// variants of a repetition in a rotated order (a Latin square over the repetitions):
//   base                      the schema as migrated
//   drop-index:NAME           without that index (SQLite: only indexes no statement names in INDEXED BY)
//   fillfactor:N              PostgreSQL: runs filled to N % (room on each page for its rows' next versions)
//   no-attempts-fk            PostgreSQL: without the attempts → runs foreign key
//   skip-succeeded-attempt    no attempt row for an attempt that succeeded (a BEFORE INSERT trigger
//                             drops it: the saving less the trigger's own cost)
// Result: bench/results/store-<dialect>-<timestamp>.json.
//   node --import tsx --conditions=@kairos/source src/store-drain.ts [--dialect sqlite|postgres] [--runs 60000] [--batch 200] [--reps 3] [--alert-rule] [--variants base,…]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AttemptEnder, compileJob, openStore, type Store } from '@kairos/server';
import Database from 'better-sqlite3';
import { serviceSettings } from './environment.ts';
import { createDatabase, type FreshDatabase } from './pg.ts';
import { saveResult } from './results.ts';
import { processCpuNs, spentNs } from './server-cpu.ts';
import { message } from './util.ts';

const { values } = parseArgs({
  options: {
    dialect: { type: 'string', default: 'sqlite' },
    runs: { type: 'string', default: '60000' },
    batch: { type: 'string', default: '200' },
    reps: { type: 'string', default: '3' },
    'alert-rule': { type: 'boolean', default: false },
    variants: { type: 'string', default: 'base' },
  },
});
const variants = values.variants!.split(',').filter(Boolean);
const runs = Number(values.runs);
const batch = Number(values.batch);
const dialect = values.dialect;
if (dialect !== 'sqlite' && dialect !== 'postgres')
  throw new Error(`--dialect expects sqlite or postgres, got ${dialect}`);

/** The application_name of the store's connections, by which its backends are found. */
const APP = 'kairos-bench-store';

/** One repetition: CPU per 1,000 runs (ms) of the claims and of the reports, in this process and, on
 * PostgreSQL, in the server's backends. */
interface Rep {
  claim: number;
  report: number;
  serverClaim?: number;
  serverReport?: number;
  /** PostgreSQL: WAL bytes per run written by the claims and by the reports (the writes themselves:
   * heap rows, index entries, commits; steadier than CPU time on a shared machine). */
  walClaim?: number;
  walReport?: number;
  /** PostgreSQL: WAL bytes per run of the enqueue (1,000 runs a call), not timed. */
  walEnqueue?: number;
}

/** The store under test, and how to read its server's CPU (ns) so far; null for SQLite. */
interface Subject {
  store: Store;
  serverNs: () => Promise<Map<number, number>> | null;
  /** The server's WAL insert position in bytes (null: SQLite). */
  walBytes: () => Promise<number | null>;
  /** Runs statements on the store's schema, beside the store. */
  exec(statements: string[]): Promise<void>;
  close(): Promise<void>;
}

/** The statements that make a variant's schema out of the migrated one. */
function variantSql(variant: string): string[] {
  return variant
    .split('+')
    .filter((change) => change !== 'base')
    .flatMap((change) => {
      if (change.startsWith('drop-index:')) return [`DROP INDEX ${change.slice('drop-index:'.length)}`];
      if (change.startsWith('fillfactor:')) {
        if (dialect !== 'postgres') throw new Error('fillfactor: PostgreSQL only');
        return [`ALTER TABLE runs SET (fillfactor = ${Number(change.slice('fillfactor:'.length))})`];
      }
      if (change === 'no-attempts-fk') {
        if (dialect !== 'postgres') throw new Error('no-attempts-fk: PostgreSQL only');
        return ['ALTER TABLE attempts DROP CONSTRAINT attempts_run_id_fkey'];
      }
      if (change === 'skip-succeeded-attempt')
        return dialect === 'postgres'
          ? [
              `CREATE FUNCTION bench_skip_attempt() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RETURN NULL; END $$`,
              `CREATE TRIGGER bench_skip_attempt BEFORE INSERT ON attempts FOR EACH ROW
                 WHEN (NEW.status = 'succeeded') EXECUTE FUNCTION bench_skip_attempt()`,
            ]
          : [
              `CREATE TRIGGER bench_skip_attempt BEFORE INSERT ON attempts
                 WHEN NEW.status = 'succeeded' BEGIN SELECT RAISE(IGNORE); END`,
            ];
      throw new Error(`unknown variant change: ${change}`);
    });
}

async function sqlite(): Promise<Subject> {
  const dir = mkdtempSync(join(tmpdir(), 'kairos-store-drain-'));
  const path = join(dir, 'kairos.db');
  const store = openStore(`sqlite:${path}`);
  return {
    store,
    serverNs: () => null,
    walBytes: async () => null,
    async exec(statements) {
      const db = new Database(path);
      for (const statement of statements) db.exec(statement);
      db.close();
    },
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function postgres(): Promise<Subject> {
  const database = await createDatabase('store');
  const url = new URL(database.url);
  url.searchParams.set('schema', 'kairos');
  url.searchParams.set('application_name', APP);
  const store = openStore(url.toString());
  const name = url.pathname.slice(1);
  return {
    store,
    // Every backend of the store, on each read: the pool may open one between two reads.
    serverNs: async () => {
      const { rows } = await database.pool.query<{ pid: number }>(
        'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2',
        [name, APP],
      );
      const ns = new Map<number, number>();
      for (const { pid } of rows) {
        const cpu = processCpuNs(pid);
        if (cpu !== null) ns.set(pid, cpu);
      }
      return ns;
    },
    walBytes: async () => {
      const { rows } = await database.pool.query<{ b: number }>(
        "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::float8 AS b",
      );
      return rows[0]!.b;
    },
    async exec(statements) {
      const client = await database.pool.connect();
      try {
        await client.query('SET search_path TO kairos');
        for (const statement of statements) await client.query(statement);
      } finally {
        client.release();
      }
    },
    async close() {
      await store.close();
      await database.drop();
    },
  };
}

/** Whether pg_stat_statements can be created and read in `database`, or why not. */
async function statStatements(database: FreshDatabase): Promise<string> {
  try {
    await database.pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await database.pool.query('SELECT count(*) FROM pg_stat_statements');
    return 'usable';
  } catch (error) {
    return `not usable: ${message(error)}`;
  }
}

async function once(variant: string): Promise<Rep> {
  const subject = dialect === 'sqlite' ? await sqlite() : await postgres();
  const { store } = subject;
  try {
    await store.migrate();
    await subject.exec(variantSql(variant));
    if (values['alert-rule']) {
      const now = Date.now();
      await store.alerts.putChannel(
        {
          name: 'hook',
          type: 'webhook',
          config: { urlOrigin: 'http://127.0.0.1:9', smtp: null },
          secrets: {},
        },
        now,
        true,
      );
      await store.alerts.putRule(
        {
          name: 'failed',
          kind: 'run-failed',
          job: null,
          group: null,
          threshold: null,
          count: null,
          reasons: null,
          unroutableOnly: false,
          channels: ['hook'],
          windowMs: 3_600_000,
          enabled: true,
        },
        now,
        true,
      );
    }
    const job = await store.createJob(
      compileJob({ name: 'noop', handler: 'noop', trigger: { kind: 'manual' } }),
      null,
      Date.now(),
    );
    const walBefore = await subject.walBytes();
    for (let queued = 0; queued < runs; queued += 1000) {
      const n = Math.min(1000, runs - queued);
      await store.enqueueRuns(
        job.id,
        Array.from({ length: n }, () => ({ params: {}, priority: 0 })),
        Date.now(),
      );
    }
    const walQueued = await subject.walBytes();
    const worker = { id: 'w', name: 'w', group: job.group, handlers: [job.handler], capacity: batch };
    await store.registerWorker(
      { ...worker, labels: {}, version: '', host: 'localhost' },
      600_000,
      Date.now(),
    );
    const ender = new AttemptEnder(store);
    let claimUs = 0;
    let reportUs = 0;
    let serverClaimNs = 0;
    let serverReportNs = 0;
    let walClaim = 0;
    let walReport = 0;
    let done = 0;
    for (;;) {
      let server = await subject.serverNs();
      let wal = await subject.walBytes();
      let mark = process.cpuUsage();
      const claimed = await store.dispatchRuns('w', batch, Date.now(), 0.5);
      let spent = process.cpuUsage(mark);
      claimUs += spent.user + spent.system;
      let next = await subject.serverNs();
      let walNext = await subject.walBytes();
      serverClaimNs += spentNs(server, next);
      if (wal !== null) walClaim += walNext! - wal;
      if (claimed.length === 0) break;
      server = next;
      wal = walNext;
      mark = process.cpuUsage();
      const results = await ender.report(
        claimed.map((run) => ({ runId: run.runId, attempt: run.attempt, outcome: 'succeeded' as const })),
        Date.now(),
      );
      spent = process.cpuUsage(mark);
      reportUs += spent.user + spent.system;
      next = await subject.serverNs();
      walNext = await subject.walBytes();
      serverReportNs += spentNs(server, next);
      if (wal !== null) walReport += walNext! - wal;
      done += results.filter((r) => r.ok).length;
    }
    if (done !== runs) throw new Error(`drained ${done} of ${runs} runs`);
    return {
      claim: claimUs / runs,
      report: reportUs / runs,
      ...(dialect === 'postgres'
        ? {
            serverClaim: serverClaimNs / 1000 / runs,
            serverReport: serverReportNs / 1000 / runs,
            walEnqueue: (walQueued! - walBefore!) / runs,
            walClaim: walClaim / runs,
            walReport: walReport / runs,
          }
        : {}),
    };
  } finally {
    await subject.close();
  }
}

const label = dialect === 'sqlite' ? 'SQLite' : 'PostgreSQL';
console.log(
  `${label} store: ${runs} runs, claimed ${batch} at a time, reported succeeded (CPU ms per 1,000 runs)` +
    (values['alert-rule'] ? ', with an alert rule (an outbox row per run end)' : '') +
    (dialect === 'postgres' ? '; this process, then the server' : ''),
);
const reps: Array<Rep & { variant: string }> = [];
const line = (r: Rep) =>
  `claim ${r.claim.toFixed(2)}  report ${r.report.toFixed(2)}  total ${(r.claim + r.report).toFixed(2)}` +
  (r.serverClaim === undefined
    ? ''
    : `  · server: claim ${r.serverClaim.toFixed(2)}  report ${r.serverReport!.toFixed(2)}  total ${(r.serverClaim + r.serverReport!).toFixed(2)}` +
      `  · WAL bytes/run: enqueue ${r.walEnqueue!.toFixed(0)}  claim ${r.walClaim!.toFixed(0)}  report ${r.walReport!.toFixed(0)}`);
for (let rep = 0; rep < Number(values.reps); rep++) {
  for (let k = 0; k < variants.length; k++) {
    const variant = variants[(rep + k) % variants.length]!;
    const r = await once(variant);
    reps.push({ variant, ...r });
    console.log(`  ${variants.length > 1 ? `${variant.padEnd(40)} ` : ''}${line(r)}`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const medians = variants.map((variant) => {
  const of = reps.filter((r) => r.variant === variant);
  const pick = (key: keyof Rep) =>
    of[0]![key] === undefined ? undefined : Number(median(of.map((r) => r[key] as number)).toFixed(2));
  const m: Rep = { claim: pick('claim')!, report: pick('report')! };
  if (dialect === 'postgres')
    Object.assign(m, {
      serverClaim: pick('serverClaim'),
      serverReport: pick('serverReport'),
      walEnqueue: pick('walEnqueue'),
      walClaim: pick('walClaim'),
      walReport: pick('walReport'),
    });
  return { variant, ...m };
});
if (variants.length > 1) {
  console.log('medians:');
  for (const m of medians) console.log(`  ${m.variant.padEnd(40)} ${line(m)}`);
}
let pgStatStatements: string | undefined;
if (dialect === 'postgres') {
  const database = await createDatabase('statements');
  try {
    pgStatStatements = await statStatements(database);
  } finally {
    await database.drop();
  }
}
saveResult(`store-${dialect}`, {
  settings: { runs, batch, alertRule: values['alert-rule'], variants },
  unit: 'CPU ms per 1,000 runs',
  reps,
  medians,
  ...(dialect === 'postgres'
    ? { services: { postgres: await serviceSettings('postgres') }, pgStatStatements }
    : {}),
});
