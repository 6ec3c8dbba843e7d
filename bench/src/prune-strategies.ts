// `npm run bench:prune -- [--minutes 8] [--rate 200] [--age 60] [--slot 20] [--extra-slots 0]`
// (ages in seconds; the pruner keeps a run at least a minute after it ended): which way should
// Kairos prune runs on PostgreSQL (issue 17)? Two databases on the local server side by side in one
// process, under the same load at the same time, so the machine's noise hits both:
//
// - `delete`: Kairos's schema (its own migrations) and Kairos's own pruner (scheduler/pruner.ts, the
//   batched deletes of store/postgres/retention.ts), a cycle every 10 s, every age 1 minute.
// - `partition`: the same migrations, then runs, attempts, run_logs, run_log_state, run_progress and
//   late_reports partitioned by run id, one range per 20-second slot (partitioned-schema.ts); retention
//   detaches and drops a slot's partitions once its newest run ended more than a minute ago and none
//   of its runs is unfinished, checked every 10 s; partitions are made two slots ahead.
//
// Load on each (the store's own hot-path methods, as a node calls them): every 100 ms `enqueueRuns`
// of rate/10 manual runs (insert); a worker loop `dispatchRuns` of up to 100 (claim), one log line
// per run (`appendRunLogs`), and `AttemptEnder.report` (finish), one run in ten failed. Each call is
// timed and tagged with whether pruning (or the VACUUM) of its own database, or of the other, was
// running. This server runs with autovacuum off: as bench:retention does, the harness runs VACUUM
// (ANALYZE) every 30 s on both databases in its place, on what autovacuum would take (the tables the
// hot path writes; on the partitioned side their partitions with rows: claim and finish update runs
// there too). Without the ANALYZE the delete side's pruner read (RUNS_TO_PRUNE) took 7–50 s a batch
// with one job holding every run: its plan needs the statistics autovacuum's analyze keeps.
//
// Server CPU: each database's backends are told apart by application_name (hot path, pruner,
// maintenance) and their CPU read from /proc every second. Every 10 s: rows and database size.
// Writes bench/results/prune-strategies-<time>.{json,md}.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { AttemptEnder, compileJob, openStore, type Store, systemClock } from '@kairos/server';
import type pg from 'pg';
import type { RetentionConfig } from '../../packages/kairos/src/core/retention.ts';
import { Pruner } from '../../packages/kairos/src/scheduler/pruner.ts';
import { machine } from './environment.ts';
import { addSlot, advanceSequence, dropSlot, partitionRunTables, slots } from './partitioned-schema.ts';
import { createDatabase, type FreshDatabase, postgresInfo, serverClient } from './pg.ts';
import { type LatencyStats, latencyStats, round } from './stats.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '8' },
    rate: { type: 'string', default: '200' },
    age: { type: 'string', default: '60' },
    slot: { type: 'string', default: '20' },
    'extra-slots': { type: 'string', default: '0' },
  },
});
const minutes = Number(values.minutes);
const rate = Number(values.rate);
const ageMs = Number(values.age) * 1000;
const slotMs = Number(values.slot) * 1000;
/** Empty partitions far ahead, as a production table with hourly partitions over weeks has (each
 * statement that cannot prune by run id plans and scans every partition). */
const extraSlots = Number(values['extra-slots']);
const INTERVAL_MS = 10_000;
const VACUUM_MS = 30_000;
const SAMPLE_MS = 10_000;
const BATCH = 1000;
const HOT_TABLES = ['runs', 'attempts', 'run_logs', 'run_log_state', 'run_progress', 'late_reports'];
const OPS = ['insert', 'claim', 'log', 'finish'] as const;
type Op = (typeof OPS)[number];
type Name = 'delete' | 'partition';
const silent = {
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error() {},
  fatal() {},
  child() {
    return silent;
  },
} as never;

interface Timing {
  op: Op;
  ms: number;
  /** Pruning, VACUUM of this database, or either of the other, was running when the call started or ended. */
  prune: boolean;
  vacuum: boolean;
  other: boolean;
}

interface Cycle {
  atS: number;
  ms: number;
  runs: number;
  logs: number;
  /** Server CPU of the backends that did it, ms. */
  cpuMs: number;
}

interface Sample {
  atS: number;
  runs: number;
  attempts: number;
  runLogs: number;
  databaseBytes: number;
  runsBytes: number;
  cpuMs: Record<string, number>;
}

interface Side {
  name: Name;
  db: FreshDatabase;
  hot: Store;
  maint: pg.Client;
  probe: pg.Client;
  jobId: number;
  busy: { prune: boolean; vacuum: boolean };
  timings: Timing[];
  cycles: Cycle[];
  vacuums: Cycle[];
  samples: Sample[];
  created: number;
  notes: string[];
  /** delete: the pruner and its store. */
  pruner?: Pruner;
  pruneStore?: Store;
}

const withApp = (url: string, app: string) => `${url}${url.includes('?') ? '&' : '?'}application_name=${app}`;

// Server CPU per database and role, from /proc of each backend (the last value seen of each pid).
const backendTicks = new Map<number, { side: Name; role: string; ticks: number }>();
function ticksOf(pid: number): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
}
async function pollCpu(admin: pg.Client, sides: Side[]): Promise<void> {
  const { rows } = await admin.query<{ pid: number; datname: string; app: string }>(
    'SELECT pid, datname, application_name AS app FROM pg_stat_activity WHERE datname = ANY($1)',
    [sides.map((s) => new URL(s.db.url).pathname.slice(1))],
  );
  for (const row of rows) {
    const side = sides.find((s) => new URL(s.db.url).pathname.slice(1) === row.datname)!;
    const ticks = ticksOf(row.pid);
    if (ticks !== null) backendTicks.set(row.pid, { side: side.name, role: row.app || 'other', ticks });
  }
}
function cpuByRole(side: Name): Record<string, number> {
  const out: Record<string, number> = {};
  for (const b of backendTicks.values()) if (b.side === side) out[b.role] = (out[b.role] ?? 0) + b.ticks * 10;
  return out;
}
/** CPU ms of this database's backends with application_name `role`, read now. */
async function roleCpuNow(admin: pg.Client, side: Side, role: string): Promise<number> {
  await pollCpu(admin, [side]);
  return cpuByRole(side.name)[role] ?? 0;
}

async function setUp(name: Name): Promise<Side> {
  const db = await createDatabase(`prune_${name}`);
  if (process.env.BENCH_LOG_SLOW)
    await db.pool.query(
      `ALTER DATABASE ${new URL(db.url).pathname.slice(1)} SET log_min_duration_statement = ${Number(process.env.BENCH_LOG_SLOW)}`,
    );
  const hot = openStore(withApp(db.url, 'hot'));
  await hot.migrate();
  const maint = serverClient(withApp(db.url, 'maint'));
  await maint.connect();
  const probe = serverClient(withApp(db.url, 'probe'));
  await probe.connect();
  const notes: string[] = [];
  if (name === 'partition') {
    notes.push(...(await partitionRunTables(maint)));
    const slot = Math.floor(Date.now() / slotMs);
    for (let s = slot - 1; s <= slot + 2; s++) await addSlot(maint, s);
    for (let i = 0; i < extraSlots; i++) await addSlot(maint, slot + 100_000 + i);
    if (extraSlots > 0) notes.push(`${extraSlots} empty partitions far ahead (each table)`);
    await advanceSequence(maint, slot);
  }
  const job = await hot.createJob(
    compileJob({ name: 'load', handler: 'work', trigger: { kind: 'manual' }, retry: { maxAttempts: 1 } }),
    null,
    Date.now(),
  );
  await hot.registerWorker(
    {
      id: 'w',
      name: 'w',
      group: job.group,
      handlers: [job.handler],
      capacity: 1000,
      labels: {},
      version: '',
      host: 'localhost',
    },
    3_600_000,
    Date.now(),
  );
  const side: Side = {
    name,
    db,
    hot,
    maint,
    probe,
    jobId: job.id,
    busy: { prune: false, vacuum: false },
    timings: [],
    cycles: [],
    vacuums: [],
    samples: [],
    created: 0,
    notes,
  };
  if (name === 'delete') {
    const retention: RetentionConfig = {
      finishedMs: ageMs,
      failedMs: ageMs,
      skippedFiresMs: ageMs,
      auditMs: ageMs,
      logsMs: ageMs,
      workersMs: ageMs,
      intervalMs: INTERVAL_MS,
      batch: BATCH,
    };
    side.pruneStore = openStore(withApp(db.url, 'prune'));
    side.pruner = new Pruner({
      store: side.pruneStore,
      clock: systemClock,
      logger: silent,
      owner: 'bench',
      retention,
    });
  }
  return side;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function timed<T>(side: Side, other: Side, op: Op, call: () => Promise<T>): Promise<T> {
  const prune0 = side.busy.prune;
  const vacuum0 = side.busy.vacuum;
  const other0 = other.busy.prune || other.busy.vacuum;
  const at = performance.now();
  const out = await call();
  side.timings.push({
    op,
    ms: performance.now() - at,
    prune: prune0 || side.busy.prune,
    vacuum: vacuum0 || side.busy.vacuum,
    other: other0 || other.busy.prune || other.busy.vacuum,
  });
  return out;
}

/**
 * What autovacuum would vacuum and analyze: the tables the hot path writes, and on the partition side
 * their partitions of the slots that have rows (autovacuum works on leaf partitions, leaves untouched
 * empty ones alone, and never analyzes a partitioned parent).
 */
async function vacuumTargets(side: Side): Promise<string[]> {
  if (side.name === 'delete') return [...HOT_TABLES, 'jobs', 'workers'];
  const current = Math.floor(Date.now() / slotMs);
  const live = (await slots(side.maint)).filter((s) => s <= current);
  return [...live.flatMap((s) => HOT_TABLES.map((table) => `${table}_s${s}`)), 'jobs', 'workers'];
}

/** One cycle of the partition strategy: partitions ahead, the sequence, the drops. */
async function partitionCycle(side: Side): Promise<{ runs: number; logs: number }> {
  const db = side.maint;
  const now = Date.now();
  const current = Math.floor(now / slotMs);
  const have = await slots(db);
  for (let s = current; s <= current + 2; s++) if (!have.includes(s)) await addSlot(db, s);
  await advanceSequence(db, current);
  let runs = 0;
  let logs = 0;
  for (const s of have.filter((slot) => slot < current)) {
    const { rows } = await db.query<{ n: string; open: string; last: string | null }>(
      `SELECT count(*) AS n, count(*) FILTER (WHERE finished_at IS NULL) AS open, max(finished_at) AS last
       FROM runs_s${s}`,
    );
    const row = rows[0]!;
    if (Number(row.open) > 0 || (row.last !== null && Number(row.last) >= now - ageMs)) continue;
    const lines = await db.query<{ n: string }>(`SELECT count(*) AS n FROM run_logs_s${s}`);
    await dropSlot(db, s);
    runs += Number(row.n);
    logs += Number(lines.rows[0]!.n);
  }
  return { runs, logs };
}

async function main(): Promise<void> {
  const admin = serverClient();
  await admin.connect();
  const a = await setUp('delete');
  const b = await setUp('partition');
  const sides = [a, b];
  const otherOf = (side: Side) => (side === a ? b : a);
  const started = Date.now();
  const end = started + minutes * 60_000;
  let running = true;
  const atS = () => Math.round((Date.now() - started) / 1000);

  const producer = async (side: Side) => {
    const per = Math.max(1, Math.round(rate / 10));
    while (running) {
      const t = Date.now();
      const ids = await timed(side, otherOf(side), 'insert', () =>
        side.hot.enqueueRuns(
          side.jobId,
          Array.from({ length: per }, () => ({ params: {}, priority: 0 })),
          Date.now(),
        ),
      );
      side.created += ids.length;
      await sleep(Math.max(0, 100 - (Date.now() - t)));
    }
  };
  const worker = async (side: Side) => {
    const ender = new AttemptEnder(side.hot);
    while (running) {
      const claimed = await timed(side, otherOf(side), 'claim', () =>
        side.hot.dispatchRuns('w', 100, Date.now(), Math.random()),
      );
      if (claimed.length === 0) {
        await sleep(20);
        continue;
      }
      const now = Date.now();
      await timed(side, otherOf(side), 'log', () =>
        side.hot.appendRunLogs(
          'w',
          {
            logs: claimed.map((run) => ({
              runId: run.runId,
              attempt: run.attempt,
              level: 'info' as const,
              message: 'working',
              fields: { run: run.runId },
              time: now,
            })),
            progress: [],
          },
          1000,
          now,
        ),
      );
      await timed(side, otherOf(side), 'finish', () =>
        ender.report(
          claimed.map((run) =>
            run.runId % 10 === 0
              ? {
                  runId: run.runId,
                  attempt: run.attempt,
                  outcome: 'failed' as const,
                  error: { name: 'Error', message: 'one in ten fails' },
                  retryable: false,
                }
              : { runId: run.runId, attempt: run.attempt, outcome: 'succeeded' as const },
          ),
          Date.now(),
          'w',
        ),
      );
    }
  };
  const pruning = async (side: Side) => {
    while (running) {
      await sleep(INTERVAL_MS);
      if (!running) break;
      // The partition side's maintenance client runs both its cycles and its VACUUM: one at a time.
      while (side.name === 'partition' && side.busy.vacuum) await sleep(50);
      const role = side.name === 'delete' ? 'prune' : 'maint';
      const cpu0 = await roleCpuNow(admin, side, role);
      side.busy.prune = true;
      const t = performance.now();
      let runs = 0;
      let logs = 0;
      try {
        if (side.pruner) {
          const counts = await side.pruner.cycle();
          runs = counts?.runs ?? 0;
          logs = counts?.run_logs ?? 0;
        } else {
          ({ runs, logs } = await partitionCycle(side));
        }
      } catch (error) {
        console.error(`${side.name} pruning: ${(error as Error).message}`);
      } finally {
        side.busy.prune = false;
      }
      const ms = performance.now() - t;
      const cpuMs = (await roleCpuNow(admin, side, role)) - cpu0;
      side.cycles.push({ atS: atS(), ms: round(ms, 1), runs, logs, cpuMs });
    }
  };
  const vacuuming = async (side: Side) => {
    while (running) {
      await sleep(VACUUM_MS);
      if (!running) break;
      // The partition side's maintenance client runs both its cycles and its VACUUM: one at a time.
      while (side.busy.prune) await sleep(50);
      const cpu0 = await roleCpuNow(admin, side, 'maint');
      side.busy.vacuum = true;
      const t = performance.now();
      try {
        await side.maint.query(`VACUUM (ANALYZE) ${(await vacuumTargets(side)).join(', ')}`);
      } finally {
        side.busy.vacuum = false;
      }
      const ms = performance.now() - t;
      const cpuMs = (await roleCpuNow(admin, side, 'maint')) - cpu0;
      side.vacuums.push({ atS: atS(), ms: round(ms, 1), runs: 0, logs: 0, cpuMs });
    }
  };
  const sampler = async () => {
    while (running) {
      await pollCpu(admin, sides);
      await sleep(1000);
    }
  };
  const sample = async (side: Side) => {
    const q = async (sql: string) => Number((await side.probe.query(sql)).rows[0].n);
    side.samples.push({
      atS: atS(),
      runs: await q('SELECT count(*) AS n FROM runs'),
      attempts: await q('SELECT count(*) AS n FROM attempts'),
      runLogs: await q('SELECT count(*) AS n FROM run_logs'),
      databaseBytes: await q('SELECT pg_database_size(current_database()) AS n'),
      // pg_partition_tree lists nothing for a table that is not partitioned: the tables themselves too.
      runsBytes: await q(
        `SELECT sum(pg_total_relation_size(relid)) AS n FROM (
           SELECT relid FROM pg_partition_tree('runs') UNION SELECT relid FROM pg_partition_tree('attempts')
           UNION SELECT relid FROM pg_partition_tree('run_logs')
           UNION SELECT unnest(ARRAY['runs', 'attempts', 'run_logs']::regclass[])) t`,
      ),
      cpuMs: cpuByRole(side.name),
    });
  };

  const loops = [
    sampler(),
    ...sides.flatMap((side) => [producer(side), worker(side), pruning(side), vacuuming(side)]),
  ];
  for (;;) {
    for (const side of sides) await sample(side);
    const line = sides
      .map((s) => {
        const last = s.samples.at(-1)!;
        return `${s.name}: runs ${last.runs} logs ${last.runLogs} ${(last.databaseBytes / 2 ** 20).toFixed(1)} MiB`;
      })
      .join(' | ');
    console.log(`${String(atS()).padStart(4)} s  ${line}`);
    if (Date.now() >= end) break;
    await sleep(SAMPLE_MS);
  }
  running = false;
  await Promise.all(loops);
  await pollCpu(admin, sides);

  const server = await postgresInfo();
  const results = sides.map((side) => summarize(side, started));
  for (const side of sides) {
    await side.pruneStore?.close();
    await side.hot.close();
    await side.maint.end();
    await side.probe.end();
    await side.db.drop();
  }
  await admin.end();

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const name = `prune-strategies-${stamp}`;
  const result = {
    benchmark: 'prune-strategies',
    minutes,
    ratePerSecond: rate,
    ageMs,
    slotMs,
    extraSlots,
    intervalMs: INTERVAL_MS,
    vacuumEveryMs: VACUUM_MS,
    batch: BATCH,
    machine: machine(),
    postgres: server,
    strategies: results,
  };
  const dir = new URL('../results/', import.meta.url);
  writeFileSync(new URL(`${name}.json`, dir), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(new URL(`${name}.md`, dir), markdown(result));
  console.log(`wrote bench/results/${name}.md`);
}

type Summary = ReturnType<typeof summarize>;

function summarize(side: Side, started: number) {
  const stats = (filter: (t: Timing) => boolean) =>
    Object.fromEntries(
      OPS.map((op) => [
        op,
        latencyStats(side.timings.filter((t) => t.op === op && filter(t)).map((t) => t.ms)),
      ]),
    ) as Record<Op, LatencyStats>;
  const pruned = side.cycles.reduce((n, c) => n + c.runs, 0);
  const pruneCpu = side.cycles.reduce((n, c) => n + c.cpuMs, 0);
  const pruneWall = side.cycles.reduce((n, c) => n + c.ms, 0);
  const vacuumCpu = side.vacuums.reduce((n, c) => n + c.cpuMs, 0);
  const last = side.samples.at(-1);
  return {
    name: side.name,
    notes: side.notes,
    runsCreated: side.created,
    runsPruned: pruned,
    durationS: Math.round((Date.now() - started) / 1000),
    latency: {
      all: stats(() => true),
      quiet: stats((t) => !t.prune && !t.vacuum && !t.other),
      ownPruning: stats((t) => t.prune),
      ownVacuum: stats((t) => t.vacuum && !t.prune),
      otherPruning: stats((t) => t.other && !t.prune && !t.vacuum),
    },
    perThousandRuns: {
      pruneCpuMs: pruned > 0 ? round((pruneCpu / pruned) * 1000, 1) : null,
      pruneWallMs: pruned > 0 ? round((pruneWall / pruned) * 1000, 1) : null,
      withVacuumCpuMs: pruned > 0 ? round(((pruneCpu + vacuumCpu) / pruned) * 1000, 1) : null,
    },
    serverCpuMs: last?.cpuMs ?? {},
    cycles: side.cycles,
    vacuums: side.vacuums,
    samples: side.samples,
  };
}

function markdown(r: {
  minutes: number;
  ratePerSecond: number;
  ageMs: number;
  slotMs: number;
  extraSlots: number;
  machine: ReturnType<typeof machine>;
  postgres: Record<string, string>;
  strategies: Summary[];
}): string {
  const m = r.machine;
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  const out = [
    '# Retention on PostgreSQL: batched deletes or partitions',
    '',
    `${m.cpu} × ${m.cores}, ${m.memoryGiB} GiB, ${m.os}, Node.js ${m.node}; PostgreSQL ${r.postgres.server_version}` +
      ` (shared_buffers ${r.postgres.shared_buffers}, synchronous_commit ${r.postgres.synchronous_commit}).`,
    `${r.minutes} min side by side${r.extraSlots > 0 ? ` (${r.extraSlots} extra empty partitions per table)` : ''}, ${r.ratePerSecond} runs/s on each, every age ${r.ageMs / 1000} s, partitions of ${r.slotMs / 1000} s,` +
      ' a pruning cycle every 10 s, VACUUM every 30 s on both (autovacuum off on this server).',
    '',
    '## Hot-path latency (ms, p50 / p99; count)',
    '',
    '| strategy | when | insert | claim | log | finish |',
    '|---|---|---|---|---|---|',
  ];
  for (const s of r.strategies) {
    for (const [when, label] of [
      ['all', 'all'],
      ['quiet', 'no pruning or VACUUM anywhere'],
      ['ownPruning', 'its own pruning running'],
      ['ownVacuum', 'its own VACUUM running'],
      ['otherPruning', "only the other's running"],
    ] as const) {
      const l = s.latency[when];
      out.push(
        `| ${s.name} | ${label} | ${OPS.map((op) => `${l[op].p50} / ${l[op].p99} (${l[op].count})`).join(' | ')} |`,
      );
    }
  }
  out.push(
    '',
    '## Pruning cost',
    '',
    '| strategy | runs created | runs pruned | per 1,000 runs pruned: server CPU ms | wall ms | server CPU incl. VACUUM ms | server CPU by role (ms) |',
    '|---|---|---|---|---|---|---|',
  );
  for (const s of r.strategies) {
    const p = s.perThousandRuns;
    out.push(
      `| ${s.name} | ${s.runsCreated} | ${s.runsPruned} | ${p.pruneCpuMs} | ${p.pruneWallMs} | ${p.withVacuumCpuMs} | ${Object.entries(
        s.serverCpuMs,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')} |`,
    );
  }
  out.push(
    '',
    '## Rows and size every 10 s',
    '',
    '| t (s) | ' +
      r.strategies
        .map((s) => `${s.name}: runs | run_logs | database MiB | runs+attempts+logs MiB`)
        .join(' | ') +
      ' |',
  );
  out.push(`|---|${r.strategies.map(() => '---|---|---|---|').join('')}`);
  const n = Math.min(...r.strategies.map((s) => s.samples.length));
  for (let i = 0; i < n; i++) {
    out.push(
      `| ${r.strategies[0]!.samples[i]!.atS} | ` +
        r.strategies
          .map((s) => {
            const x = s.samples[i]!;
            return `${x.runs} | ${x.runLogs} | ${mib(x.databaseBytes)} | ${mib(x.runsBytes)}`;
          })
          .join(' | ') +
        ' |',
    );
  }
  for (const s of r.strategies) {
    out.push(
      '',
      `## ${s.name}: cycles (t s: ms, runs, server CPU ms) and VACUUMs (t s: ms, server CPU ms)`,
      '',
    );
    out.push(
      s.cycles
        .filter((c) => c.runs > 0 || c.ms > 50)
        .map((c) => `${c.atS}: ${c.ms}, ${c.runs}, ${c.cpuMs}`)
        .join('; ') || '(none)',
    );
    out.push('');
    out.push(s.vacuums.map((c) => `${c.atS}: ${c.ms}, ${c.cpuMs}`).join('; ') || '(none)');
    if (s.notes.length > 0) out.push('', ...s.notes.map((note) => `- ${note}`));
  }
  return `${out.join('\n')}\n`;
}

await main();
