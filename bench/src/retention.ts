// `npm run bench:retention -- --dialect sqlite|postgres [--minutes 5] [--off]`: a real `kairos server`
// node with short retention, a producer and a worker, for a few minutes; every 10 s the row count of
// each table retention prunes and the database's size. Writes bench/results/retention-<dialect>-<time>.{json,md}.
//
// Load: a producer triggers 100 manual runs every 250 ms (400 runs/s, each an audit entry per
// batch), 10 jobs fire every second, one job every second with overlap `skip` and a 3 s handler (a
// ledger row per skipped fire range); the worker logs one line per run and fails one run in ten.
// Retention: every age 1 minute (finished, failed, logs, ledger, audit, workers), a cycle every 10 s.
// PostgreSQL reuses the space of deleted rows only after a VACUUM: where the server runs without
// autovacuum (`SHOW autovacuum` is off), the harness runs `VACUUM` on Kairos's tables every 30 s in its
// place, as autovacuum would on a default server; the result says which it was.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from '@kairos/worker';
import { machine } from './environment.ts';
import { startNodeProcess } from './kairos-process.ts';
import { createDatabase, type FreshDatabase } from './pg.ts';
import { metricSum, retentionEnv, rowCount, storeSize } from './store-size.ts';

const { values } = parseArgs({
  options: {
    dialect: { type: 'string', default: 'sqlite' },
    minutes: { type: 'string', default: '5' },
    off: { type: 'boolean', default: false },
  },
});
const dialect = values.dialect === 'postgres' ? 'postgres' : 'sqlite';
const minutes = Number(values.minutes);
const retentionOn = !values.off;
const TABLES = ['runs', 'attempts', 'run_logs', 'skipped_fires', 'audit_log', 'workers'] as const;
const AGE = '1m';

interface Sample {
  atS: number;
  rows: Record<string, number>;
  /** SQLite: main file + WAL; PostgreSQL: the database (pg_database_size). */
  bytes: number;
  /** PostgreSQL: the runs table with its indexes and TOAST; SQLite: pages in use (page_count − freelist). */
  detailBytes: number;
  prunedRuns: number;
  runsCreated: number;
}

async function main(): Promise<void> {
  let db: FreshDatabase | undefined;
  let databaseUrl: string;
  let sqlitePath = '';
  if (dialect === 'postgres') {
    db = await createDatabase('retention');
    databaseUrl = db.url;
  } else {
    sqlitePath = join(mkdtempSync(join(tmpdir(), 'kairos-retention-')), 'kairos.db');
    databaseUrl = `sqlite:${sqlitePath}`;
  }
  const node = await startNodeProcess('retention', databaseUrl, retentionEnv(AGE, retentionOn));
  const client = node.client;
  await client.createJob({
    name: 'load',
    handler: 'work',
    trigger: { kind: 'manual' },
    retry: { maxAttempts: 1 },
  });
  for (let i = 0; i < 10; i++)
    await client.createJob({ name: `tick-${i}`, handler: 'work', trigger: { kind: 'every', every: '1s' } });
  await client.createJob({
    name: 'slow',
    handler: 'slow',
    trigger: { kind: 'every', every: '1s' },
    schedule: { overlap: 'skip' },
  });
  const worker = new Worker({
    url: node.url,
    token: 'bench-worker',
    group: 'default',
    concurrency: 64,
    handleSignals: false,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  })
    .handle('work', async (ctx) => {
      ctx.log.info('working', { run: ctx.runId });
      if (ctx.runId % 10 === 0) throw new Error('one in ten fails');
      return null;
    })
    .handle('slow', async () => {
      await new Promise((resolve) => setTimeout(resolve, 3000));
      return null;
    });
  await worker.start();

  const pool = db?.pool;
  const autovacuum = pool ? (await pool.query('SHOW autovacuum')).rows[0].autovacuum === 'on' : null;
  const vacuums: number[] = [];
  let vacuuming = pool !== undefined && autovacuum === false;
  const vacuumer = (async () => {
    while (vacuuming) {
      await new Promise((resolve) => setTimeout(resolve, 30_000));
      if (!vacuuming || !pool) break;
      const at = Date.now();
      await pool.query(
        'VACUUM runs, attempts, run_logs, run_log_state, run_progress, skipped_fires, audit_log, workers',
      );
      vacuums.push(Date.now() - at);
    }
  })();

  let producing = true;
  let produced = 0;
  const producer = (async () => {
    while (producing) {
      const started = Date.now();
      try {
        await client.triggerJobBatch(
          'load',
          Array.from({ length: 100 }, () => ({})),
        );
        produced += 100;
      } catch (error) {
        console.error(`producer: ${(error as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 250 - (Date.now() - started))));
    }
  })();

  const samples: Sample[] = [];
  const started = Date.now();
  const end = started + minutes * 60_000;
  for (;;) {
    const rows: Record<string, number> = {};
    for (const table of TABLES) rows[table] = await rowCount(pool, sqlitePath, table);
    const size = await storeSize(pool, sqlitePath);
    const sample: Sample = {
      atS: Math.round((Date.now() - started) / 1000),
      rows,
      ...size,
      prunedRuns: await metricSum(node.url, /^kairos_pruned_rows_total\{kind="runs"\} (\d+)/),
      runsCreated: await metricSum(node.url, /^kairos_runs_created_total\{[^}]*\} (\d+)/),
    };
    samples.push(sample);
    console.log(
      `${String(sample.atS).padStart(4)} s  runs ${rows.runs}  attempts ${rows.attempts}  logs ${rows.run_logs}  ` +
        `ledger ${rows.skipped_fires}  audit ${rows.audit_log}  workers ${rows.workers}  ` +
        `size ${(sample.bytes / 2 ** 20).toFixed(1)} MiB  pruned ${sample.prunedRuns}  created ${sample.runsCreated}`,
    );
    if (Date.now() >= end) break;
    await new Promise((resolve) => setTimeout(resolve, 10_000));
  }
  producing = false;
  vacuuming = false;
  await producer;
  await vacuumer;
  await worker.stop();
  node.child.kill('SIGTERM');
  await new Promise((resolve) => node.child.once('exit', resolve));
  await db?.drop();

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const name = `retention-${dialect}${retentionOn ? '' : '-off'}-${stamp}`;
  const result = {
    benchmark: 'retention',
    dialect,
    retention: retentionOn ? { ages: AGE, interval: '10s' } : 'off',
    autovacuum,
    harnessVacuumMs: vacuums,
    minutes,
    machine: machine(),
    produced,
    samples,
  };
  const dir = new URL('../results/', import.meta.url);
  writeFileSync(new URL(`${name}.json`, dir), `${JSON.stringify(result, null, 2)}\n`);
  const md = [
    `# Retention, ${dialect}, ${retentionOn ? `every age ${AGE}, a cycle every 10 s` : 'retention off'}`,
    '',
    `${machine().cpu} × ${machine().cores}, ${machine().memoryGiB} GiB, ${machine().os}, Node.js ${machine().node}.`,
    `${minutes} min; ${produced} manual runs produced, 10 jobs every 1 s, one overlap-skip job.`,
    ...(autovacuum === false
      ? [
          `The server's autovacuum is off: the harness ran VACUUM on Kairos's tables every 30 s (${vacuums.length} times, ${vacuums.join(', ')} ms).`,
        ]
      : []),
    '',
    '| t (s) | runs | attempts | run_logs | skipped_fires | audit_log | workers | database MiB | detail MiB | runs created | runs pruned |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...samples.map(
      (s) =>
        `| ${s.atS} | ${s.rows.runs} | ${s.rows.attempts} | ${s.rows.run_logs} | ${s.rows.skipped_fires} | ${s.rows.audit_log} | ${s.rows.workers} | ${(s.bytes / 2 ** 20).toFixed(1)} | ${(s.detailBytes / 2 ** 20).toFixed(1)} | ${s.runsCreated} | ${s.prunedRuns} |`,
    ),
    '',
  ].join('\n');
  writeFileSync(new URL(`${name}.md`, dir), md);
  console.log(`wrote bench/results/${name}.md`);
}

await main();
