// `npm run bench:soak -- --dialect sqlite|postgres [--runs 2000000] [--age 1m]`: the retention soak.
// Two stacks run side by side on the same machine, each a real `kairos server` node with its own
// database, a worker and a producer in a process of its own; one prunes (every age `--age`, a cycle
// every 10 s), the other never does. Both drain as fast as they can until the pruning stack has ended
// `--runs` runs. Side by side, the machine's noise (2 shared cores) hits both alike, so the ratio of
// their drain rates is what retention costs. Every 10 s each stack samples the runs it has ended, the
// rows of `runs` and the database's size. Writes bench/results/soak-<dialect>-<time>.{json,md}.
//
// Load per stack: a closed-loop producer keeps 20,000 runs queued (batches of 1,000 through
// `trigger-batch`); the worker (concurrency 64) logs one line per run and fails one run in ten.
// PostgreSQL reuses deleted rows' space only after a VACUUM: where the server runs without
// autovacuum, each stack runs `VACUUM (ANALYZE)` on Kairos's tables every 30 s in its place (as in retention.ts).
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from '@kairos/worker';
import { machine } from './environment.ts';
import { startNodeProcess } from './kairos-process.ts';
import { createDatabase, type FreshDatabase } from './pg.ts';
import { metricSum, retentionEnv, rowCount, storeSize, tableSizes } from './store-size.ts';

const { values } = parseArgs({
  options: {
    dialect: { type: 'string', default: 'sqlite' },
    runs: { type: 'string', default: '2000000' },
    age: { type: 'string', default: '1m' },
    stack: { type: 'string' },
    rate: { type: 'string' },
    alone: { type: 'boolean', default: false },
  },
});
const dialect = values.dialect === 'postgres' ? 'postgres' : 'sqlite';
const target = Number(values.runs);
const AGE = values.age ?? '1m';
/** Runs a second each producer triggers; without it, a closed loop keeps BACKLOG runs queued. */
const RATE = values.rate === undefined ? null : Number(values.rate);
if (RATE !== null && !(RATE > 0)) throw new Error('--rate: expected runs per second above 0');
/**
 * Only the pruning stack: what its database keeps under a load the machine sustains. Beside it, the
 * stack without retention costs more at every VACUUM as its tables grow (by 2,200 s of a 600 runs/s
 * run, its autovacuum held the server's workers and both stacks fell behind).
 */
const ALONE = values.alone ?? false;
const BACKLOG = 20_000;
const BATCH = 1000;
const SAMPLE_MS = 10_000;

interface Sample {
  atS: number;
  /** Runs that ended (kairos_runs_ended_total). */
  ended: number;
  runs: number;
  /** SQLite: main file + WAL; PostgreSQL: pg_database_size. */
  bytes: number;
  /** SQLite: pages in use; PostgreSQL: the runs table with its indexes and TOAST. */
  detailBytes: number;
  pruned: number;
  /** PostgreSQL: each of Kairos's tables with its indexes and TOAST, in bytes. */
  tables?: Record<string, number>;
}

type StackMessage =
  | { kind: 'sample'; sample: Sample }
  | { kind: 'done'; vacuumMs: number[]; autovacuum: boolean | null; vacuumSettings: string | null };

/** One stack: node, worker and producer, sampling until the parent says stop. */
async function stack(retentionOn: boolean): Promise<void> {
  let db: FreshDatabase | undefined;
  let databaseUrl: string;
  let sqliteDir = '';
  let sqlitePath = '';
  if (dialect === 'postgres') {
    db = await createDatabase(`soak_${retentionOn ? 'on' : 'off'}`);
    databaseUrl = db.url;
  } else {
    sqliteDir = mkdtempSync(join(tmpdir(), 'kairos-soak-'));
    sqlitePath = join(sqliteDir, 'kairos.db');
    databaseUrl = `sqlite:${sqlitePath}`;
  }
  const node = await startNodeProcess(
    `soak-${retentionOn ? 'on' : 'off'}`,
    databaseUrl,
    retentionEnv(AGE, retentionOn),
  );
  // The parent gone (killed, or a stack failed): take the node along.
  process.once('disconnect', () => {
    node.child.kill('SIGKILL');
    process.exit(1);
  });
  const client = node.client;
  await client.createJob({
    name: 'load',
    handler: 'work',
    trigger: { kind: 'manual' },
    retry: { maxAttempts: 1 },
  });
  let handled = 0;
  const worker = new Worker({
    url: node.url,
    token: 'bench-worker',
    group: 'default',
    concurrency: 64,
    handleSignals: false,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  }).handle('work', async (ctx) => {
    handled++;
    ctx.log.info('working', { run: ctx.runId });
    if (ctx.runId % 10 === 0) throw new Error('one in ten fails');
    return null;
  });
  await worker.start();

  const pool = db?.pool;
  const autovacuum = pool ? (await pool.query('SHOW autovacuum')).rows[0].autovacuum === 'on' : null;
  // What decides how often the run tables are vacuumed: the server's naptime and the tables' own
  // thresholds (migration run_tables_autovacuum).
  const vacuumSettings = pool
    ? ((
        await pool.query(
          `SELECT current_setting('autovacuum_naptime') || '; runs: ' || coalesce(array_to_string(reloptions, ', '), 'defaults') AS s
             FROM pg_class WHERE relname = 'runs' AND relkind = 'r'`,
        )
      ).rows[0]?.s as string)
    : null;
  const vacuumMs: number[] = [];
  let running = true;
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const vacuumer = (async () => {
    if (!pool || autovacuum !== false) return;
    while (running) {
      for (let waited = 0; running && waited < 30_000; waited += 500) await pause(500);
      if (!running) break;
      const at = Date.now();
      await pool.query(
        'VACUUM (ANALYZE) runs, attempts, run_logs, run_log_state, run_progress, skipped_fires, audit_log, workers',
      );
      vacuumMs.push(Date.now() - at);
    }
  })();
  let produced = 0;
  const producing = Date.now();
  const producer = (async () => {
    const batch = Array.from({ length: BATCH }, () => ({}));
    while (running) {
      // At a fixed rate the next batch is due when the clock reaches it; either way at most
      // BACKLOG runs wait, so a stack that falls behind is not buried.
      const due = RATE === null ? 0 : producing + ((produced + BATCH) / RATE) * 1000;
      if (produced - handled >= BACKLOG || Date.now() < due) {
        await pause(20);
        continue;
      }
      try {
        await client.triggerJobBatch('load', batch);
        produced += BATCH;
      } catch (error) {
        console.error(`producer: ${(error as Error).message}`);
        await pause(200);
      }
    }
  })();

  let stopping = false;
  process.on('message', (message) => {
    if (message === 'stop') stopping = true;
  });
  const started = Date.now();
  const send = (message: StackMessage) =>
    new Promise((resolve) => process.send!(message, undefined, {}, resolve));
  while (!stopping) {
    const size = await storeSize(pool, sqlitePath);
    await send({
      kind: 'sample',
      sample: {
        atS: Math.round((Date.now() - started) / 1000),
        ended: await metricSum(node.url, /^kairos_runs_ended_total\{[^}]*\} (\d+)/),
        runs: await rowCount(pool, sqlitePath, 'runs'),
        bytes: size.bytes,
        detailBytes: size.detailBytes,
        pruned: await metricSum(node.url, /^kairos_pruned_rows_total\{kind="runs"\} (\d+)/),
        ...(pool ? { tables: await tableSizes(pool) } : {}),
      },
    });
    for (let waited = 0; !stopping && waited < SAMPLE_MS; waited += 100) await pause(100);
  }
  running = false;
  await producer;
  await vacuumer;
  await worker.stop();
  process.removeAllListeners('disconnect');
  node.child.kill('SIGTERM');
  await new Promise((resolve) => node.child.once('exit', resolve));
  await db?.drop();
  if (sqliteDir) rmSync(sqliteDir, { recursive: true, force: true });
  await send({ kind: 'done', vacuumMs, autovacuum, vacuumSettings });
  process.exit(0);
}

interface StackResult {
  samples: Sample[];
  vacuumMs: number[];
  autovacuum: boolean | null;
  vacuumSettings: string | null;
}

/** Runs both stacks side by side until the pruning one has ended `target` runs. */
async function main(): Promise<void> {
  const file = fileURLToPath(import.meta.url);
  const results: Record<'on' | 'off', StackResult> = {
    on: { samples: [], vacuumMs: [], autovacuum: null, vacuumSettings: null },
    off: { samples: [], vacuumMs: [], autovacuum: null, vacuumSettings: null },
  };
  const children: Record<'on' | 'off', ChildProcess> = {} as never;
  const finished: Promise<void>[] = [];
  for (const which of ALONE ? (['on'] as const) : (['on', 'off'] as const)) {
    const args = ['--stack', which, '--dialect', dialect, '--age', AGE];
    if (RATE !== null) args.push('--rate', String(RATE));
    const child = fork(file, args, {
      execArgv: ['--import', 'tsx', '--conditions=@kairos/source'],
    });
    children[which] = child;
    finished.push(
      new Promise((resolve, reject) => {
        child.on('message', (message: StackMessage) => {
          if (message.kind === 'sample') {
            results[which].samples.push(message.sample);
            const s = message.sample;
            console.log(
              `${which.padEnd(3)} ${String(s.atS).padStart(5)} s  ended ${s.ended}  runs ${s.runs}  ` +
                `size ${(s.bytes / 2 ** 20).toFixed(1)} MiB  pruned ${s.pruned}`,
            );
            if (which === 'on' && s.ended >= target) for (const c of Object.values(children)) c.send('stop');
          } else {
            results[which].vacuumMs = message.vacuumMs;
            results[which].autovacuum = message.autovacuum;
            results[which].vacuumSettings = message.vacuumSettings;
          }
        });
        child.on('exit', (code) =>
          code === 0 ? resolve() : reject(new Error(`stack ${which} exited with ${code}`)),
        );
      }),
    );
  }
  await Promise.all(finished).catch((error) => {
    for (const child of Object.values(children)) child.kill('SIGTERM');
    throw error;
  });

  // Drain rate: runs ended per second between the first sample after warm-up (30 s) and the last.
  const rate = (samples: Sample[]) => {
    const first = samples.find((s) => s.atS >= 30) ?? samples[0]!;
    const last = samples[samples.length - 1]!;
    return (last.ended - first.ended) / Math.max(1, last.atS - first.atS);
  };
  // Flatness: from the end of the first retention period plus two pruning cycles, the largest size
  // against the size then.
  const ageS = Number.parseInt(AGE, 10) * (AGE.endsWith('m') ? 60 : AGE.endsWith('h') ? 3600 : 1);
  const on = results.on.samples;
  const settledAt = ageS + 30;
  const settled = on.find((s) => s.atS >= settledAt) ?? on[on.length - 1]!;
  const after = on.filter((s) => s.atS >= settled.atS);
  const maxAfter = Math.max(...after.map((s) => s.bytes));
  const growth = (maxAfter - settled.bytes) / settled.bytes;
  const off = results.off.samples;
  const summary = {
    rateOn: rate(on),
    rateOff: ALONE ? null : rate(off),
    endedOn: on[on.length - 1]!.ended,
    endedOff: ALONE ? null : off[off.length - 1]!.ended,
    settledAtS: settled.atS,
    bytesSettled: settled.bytes,
    bytesMaxAfter: maxAfter,
    bytesEndOn: on[on.length - 1]!.bytes,
    bytesEndOff: ALONE ? null : off[off.length - 1]!.bytes,
    growthAfterSettled: growth,
  };
  const ratio = summary.rateOff === null ? null : summary.rateOn / summary.rateOff;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const name = `soak-${dialect}-${stamp}`;
  const dir = new URL('../results/', import.meta.url);
  const m = machine();
  writeFileSync(
    new URL(`${name}.json`, dir),
    `${JSON.stringify({ benchmark: 'soak', dialect, target, age: AGE, rate: RATE, machine: m, summary, ratio, results }, null, 2)}\n`,
  );
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  const table = (samples: Sample[]) => [
    '| t (s) | runs ended | rows in runs | database MiB | detail MiB | runs pruned |',
    '|---|---|---|---|---|---|',
    ...samples.map(
      (s) => `| ${s.atS} | ${s.ended} | ${s.runs} | ${mib(s.bytes)} | ${mib(s.detailBytes)} | ${s.pruned} |`,
    ),
  ];
  const vacuumLine = (r: StackResult) =>
    r.autovacuum === false
      ? `harness VACUUM (ANALYZE) every 30 s: ${r.vacuumMs.length} times, ${r.vacuumMs.join(', ')} ms`
      : '';
  const md = [
    `# Retention soak, ${dialect}: ${target.toLocaleString('en')} runs, every age ${AGE}${ALONE ? ', the pruning stack alone' : ', against retention off'}`,
    '',
    `${m.cpu} × ${m.cores}, ${m.memoryGiB} GiB, ${m.os}, Node.js ${m.node}. ${ALONE ? 'One stack, with retention' : 'Both stacks ran side by side'}; ${RATE === null ? `each producer kept ${BACKLOG.toLocaleString('en')} runs queued` : `each producer triggered ${RATE} runs/s (at most ${BACKLOG.toLocaleString('en')} queued)`}.`,
    '',
    summary.rateOff === null || summary.endedOff === null || ratio === null
      ? `- Drain with retention on: **${summary.rateOn.toFixed(0)} runs/s** (${summary.endedOn.toLocaleString('en')} runs ended).`
      : `- Drain with retention on: **${summary.rateOn.toFixed(0)} runs/s** (${summary.endedOn.toLocaleString('en')} runs ended); off: **${summary.rateOff.toFixed(0)} runs/s** (${summary.endedOff.toLocaleString('en')}); on/off **${ratio.toFixed(3)}**.`,
    `- Database with retention on: ${mib(summary.bytesSettled)} MiB at ${summary.settledAtS} s (first retention period and a cycle), at most ${mib(maxAfter)} MiB after (**${(growth * 100).toFixed(1)} %**), ${mib(summary.bytesEndOn)} MiB at the end${summary.bytesEndOff === null ? '' : `; retention off ended at ${mib(summary.bytesEndOff)} MiB`}.`,
    ...(results.on.autovacuum === false
      ? [`- The server's autovacuum is off; on: ${vacuumLine(results.on)}; off: ${vacuumLine(results.off)}.`]
      : results.on.autovacuum === true
        ? [`- The server's autovacuum is on; naptime ${results.on.vacuumSettings}.`]
        : []),
    '',
    '## Retention on',
    '',
    ...table(on),
    ...(ALONE ? [] : ['', '## Retention off', '', ...table(off)]),
    '',
  ].join('\n');
  writeFileSync(new URL(`${name}.md`, dir), md);
  console.log(md.split('\n').slice(0, 8).join('\n'));
  console.log(`wrote bench/results/${name}.md`);
}

if (values.stack) await stack(values.stack === 'on');
else await main();
