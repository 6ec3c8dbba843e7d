// `npm run bench:scale-out -w bench -- [--runs 50000 (0: no drain)] [--workers 4] [--repetitions 2] [--nodes 1,3]
//   [--step-seconds 15] [--steps 1000,2000,…]`
//
// Scale-out on one PostgreSQL: the same work with 1 `kairos server` node and with 3, each node count
// on a fresh database, the counts alternating (1, 3, 3, 1 for two repetitions; the order is in the
// result). Each run:
// 1. Drain: `runs` runs queued through the API's batch trigger, then `workers` worker processes
//    (the SDK, a no-op handler, one OS process each, connected round-robin to the nodes) start and
//    drain them. Rate from the first claim to the last end (the store's started_at / finished_at),
//    the steady-state rate between the 10 % and 90 % claims, and CPU per 1,000 runs of PostgreSQL (all
//    its processes, server-cpu.ts), the node processes and the worker processes (/proc/<pid>).
// 2. Fires: once the nodes have settled their trigger partitions, every-second jobs written into the
//    store in steps, each measured from the store as bench:overload does (fire-window.ts); a step is
//    sustained when ≥ 95 % of its jobs fire each second with p99 lateness ≤ 1 s and nothing shed; the
//    ramp stops at the first that is not. The CPU share (cores' worth) of PostgreSQL, the nodes and
//    the whole machine over each step's window.
// Writes bench/results/scale-out-<time>.{json,md}.
import { parseArgs } from 'node:util';
import { serviceSettings } from './environment.ts';
import { BulkJobs, type FireWindow, fireWindow, isSustained, postgresReader } from './fire-window.ts';
import { type NodeProcess, settledPartitions, startNodeProcess, stopNodeProcess } from './kairos-process.ts';
import { createDatabase, type FreshDatabase } from './pg.ts';
import { type Child, spawnChild } from './processes.ts';
import { saveResult } from './results.ts';
import { databaseBackendsNs, machineCpuMs, processTreeCpuMs, serverCpuMs, spentNs } from './server-cpu.ts';
import { middleRate, round, spread } from './stats.ts';
import { packageVersion, sleep, until } from './util.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '50000' },
    workers: { type: 'string', default: '4' },
    repetitions: { type: 'string', default: '2' },
    nodes: { type: 'string', default: '1,3' },
    'step-seconds': { type: 'string', default: '15' },
    steps: { type: 'string', default: '1000,2000,3000,4000,6000,8000,11000,15000,20000,28000,40000' },
  },
});
const runs = Number(values.runs);
const workerCount = Number(values.workers);
const repetitions = Number(values.repetitions);
const nodeCounts = values.nodes!.split(',').map(Number);
const stepMs = Number(values['step-seconds']) * 1000;
const steps = values.steps!.split(',').map(Number);
/** The first seconds of a step are not measured: jobs just created settle into their second. */
const SETTLE_MS = 5000;
/** Worker slots per worker process (the Kairos contestant's `BENCH_CONCURRENCY`, default 200). */
const SLOTS = Number(process.env.BENCH_CONCURRENCY ?? 200);

const began = Date.now();
/** Prints a line with the seconds since the benchmark began. */
const log = (line: string) => console.log(`[${((Date.now() - began) / 1000).toFixed(1)} s] ${line}`);

/** What the run in progress started, ended on an interrupt too (a node outlives its harness). */
const live: { db?: FreshDatabase; nodes: NodeProcess[]; workers: Child[] } = { nodes: [], workers: [] };
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, async () => {
    for (const node of live.nodes) node.child.kill('SIGKILL');
    await Promise.all(live.workers.map((w) => w.kill()));
    const db = live.db;
    live.db = undefined;
    await db?.drop();
    process.exit(130);
  });

/** CPU time so far of each kind of process, in ms, and when it was read. */
interface CpuMark {
  at: number;
  /** Every PostgreSQL process on the machine, other databases' backends included. */
  postgres: number;
  /** This run's database's backends, ns by pid. */
  backends: Map<number, number>;
  nodes: number;
  workers: number;
  machineBusy: number;
}

async function cpuMark(db: FreshDatabase, nodes: number[], workers: number[]): Promise<CpuMark> {
  const ms = (pids: number[]) => pids.reduce((sum, pid) => sum + (processTreeCpuMs(pid) ?? Number.NaN), 0);
  return {
    at: Date.now(),
    postgres: serverCpuMs('postgres') ?? Number.NaN,
    backends: await databaseBackendsNs(db.pool, new URL(db.url).pathname.slice(1)),
    nodes: ms(nodes),
    workers: ms(workers),
    machineBusy: machineCpuMs().busyMs,
  };
}

/** CPU ms of each kind between two marks, and the wall time between them. */
function cpuSpent(a: CpuMark, b: CpuMark) {
  return {
    wallMs: b.at - a.at,
    postgres: b.postgres - a.postgres,
    backends: spentNs(a.backends, b.backends) / 1e6,
    nodes: b.nodes - a.nodes,
    workers: b.workers - a.workers,
    machineBusy: b.machineBusy - a.machineBusy,
  };
}

/** Each kind's CPU as cores' worth (CPU ms / wall ms) between two marks. */
function cpuShare(a: CpuMark, b: CpuMark) {
  const spent = cpuSpent(a, b);
  const cores = (ms: number) => round(ms / spent.wallMs);
  return {
    postgres: cores(spent.postgres),
    backends: cores(spent.backends),
    nodes: cores(spent.nodes),
    machine: cores(spent.machineBusy),
  };
}
type CpuShare = ReturnType<typeof cpuShare>;

async function drain(nodes: NodeProcess[], db: FreshDatabase) {
  const { pool } = db;
  const admin = nodes[0]!.client;
  const job = await admin.createJob({
    name: 'drain',
    group: 'drain',
    handler: 'noop',
    trigger: { kind: 'manual' },
  });
  for (let i = 0; i < runs; i += 1000) {
    const n = Math.min(1000, runs - i);
    await admin.triggerJobBatch(
      'drain',
      Array.from({ length: n }, (_, k) => ({ params: { i: i + k } })),
    );
  }
  log(`${runs} runs queued`);
  // The Kairos contestant's worker side (contestants/kairos.ts): group and handler named after the queue.
  const workers: Child[] = [];
  live.workers = workers;
  try {
    for (let w = 0; w < workerCount; w++)
      workers.push(
        await spawnChild({
          execPath: process.execPath,
          role: 'worker',
          contestant: 'kairos-pg',
          env: { KAIROS_URL: nodes[w % nodes.length]!.url },
          queues: ['drain'],
        }),
      );
    log(`${workerCount} worker processes ready`);
    const nodePids = nodes.map((n) => n.child.pid!);
    const workerPids = workers.map((w) => w.pid);
    const before = await cpuMark(db, nodePids, workerPids);
    await Promise.all(workers.map((w) => w.call('go')));
    log('workers started');
    const distinct = async () =>
      (await Promise.all(workers.map((w) => w.call<number>('distinct')))).reduce((s, n) => s + n, 0);
    const unfinished = async () =>
      Number(
        (
          await pool.query("SELECT count(*) AS n FROM runs WHERE job_id = $1 AND status <> 'succeeded'", [
            job.id,
          ])
        ).rows[0].n,
      );
    const complete =
      (await until(async () => (await distinct()) >= runs, 20, 300_000)) &&
      (await until(async () => (await unfinished()) === 0, 20, 60_000));
    const after = await cpuMark(db, nodePids, workerPids);
    if (!complete) throw new Error(`drain incomplete: ${await unfinished()} of ${runs} runs unfinished`);
    const reports = await Promise.all(workers.map((w) => w.call<{ calls: number; ids: number[] }>('report')));
    const calls = reports.reduce((s, r) => s + r.calls, 0);
    const ran = new Set(reports.flatMap((r) => r.ids)).size;
    const { rows } = await pool.query<{ started_at: string; finished_at: string }>(
      'SELECT started_at, finished_at FROM runs WHERE job_id = $1',
      [job.id],
    );
    const starts = rows.map((r) => Number(r.started_at));
    const first = starts.reduce((a, b) => Math.min(a, b));
    const last = rows.reduce((end, r) => Math.max(end, Number(r.finished_at)), 0);
    const spent = cpuSpent(before, after);
    const per1000 = (ms: number) => round((ms / runs) * 1000, 1);
    return {
      runsPerSecond: Math.round((runs / (last - first)) * 1000),
      firstClaimToLastEndMs: last - first,
      steadyState: middleRate(starts, first),
      wallMs: spent.wallMs,
      cpuMsPer1000Runs: {
        postgres: per1000(spent.postgres),
        backends: per1000(spent.backends),
        nodes: per1000(spent.nodes),
        workers: per1000(spent.workers),
        machine: per1000(spent.machineBusy),
      },
      runTwice: calls - ran,
      lost: runs - ran,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

interface Step extends FireWindow {
  jobs: number;
  createMs: number;
  cpu: CpuShare;
  sustained: boolean;
}

async function fires(nodes: NodeProcess[], db: FreshDatabase) {
  const databaseUrl = db.url;
  const partitions = Object.fromEntries((await settledPartitions(nodes)).map((n) => [n.id, n.partitions]));
  log(`partitions settled: ${JSON.stringify(partitions)}`);
  const reader = await postgresReader(databaseUrl);
  const bulk = new BulkJobs(databaseUrl, 8);
  const nodePids = nodes.map((n) => n.child.pid!);
  const ramp: Step[] = [];
  try {
    for (const jobs of steps) {
      const created = Date.now();
      await bulk.grow(jobs);
      const createMs = Date.now() - created;
      await sleep(SETTLE_MS);
      const from = Date.now();
      const before = await cpuMark(db, nodePids, []);
      await sleep(Math.max(1000, stepMs - SETTLE_MS));
      const cpu = cpuShare(before, await cpuMark(db, nodePids, []));
      const fired = await fireWindow(reader, from, Date.now());
      const step = { jobs, createMs, ...fired, cpu, sustained: isSustained(jobs, fired) };
      ramp.push(step);
      log(`${nodes.length} node(s), ${JSON.stringify(step)}`);
      if (!step.sustained) break;
    }
  } finally {
    await bulk.close();
    await reader.close();
  }
  const top = ramp.filter((s) => s.sustained).at(-1);
  return {
    partitions,
    highestSustained: top
      ? { jobs: top.jobs, firesPerSecond: top.firesPerSecond, p99Ms: top.lateness.p99Ms, cpu: top.cpu }
      : null,
    firstNotSustained: ramp.find((s) => !s.sustained) ?? null,
    ramp,
  };
}

async function once(nodeCount: number, repetition: number) {
  const db = await createDatabase('scale_out');
  const nodes: NodeProcess[] = [];
  Object.assign(live, { db, nodes });
  try {
    nodes.push(
      ...(await Promise.all(
        Array.from({ length: nodeCount }, (_, i) => startNodeProcess(`scale-out-${repetition}-${i}`, db.url)),
      )),
    );
    log(`${nodeCount} node(s) started`);
    // `--runs 0`: the fires alone.
    const drained = runs > 0 ? await drain(nodes, db) : null;
    log(`${nodeCount} node(s), drain: ${JSON.stringify(drained)}`);
    return { nodes: nodeCount, repetition, drain: drained, fires: await fires(nodes, db) };
  } finally {
    // Killed, not stopped: a node behind on its fires would finish its batch first, and the database
    // is dropped next.
    await Promise.all(nodes.map((n) => stopNodeProcess(n, 'SIGKILL')));
    if (live.db === db) {
      live.db = undefined;
      await db.drop();
    }
  }
}

type Run = Awaited<ReturnType<typeof once>>;

// 1, 3, 3, 1, …: each count runs as often first as second, on a machine warming up or cooling down.
const order = Array.from({ length: repetitions }, (_, r) =>
  r % 2 ? [...nodeCounts].reverse() : nodeCounts,
).flat();
console.log(`scale-out: order ${order.join(', ')}; ${runs} runs, ${workerCount} worker processes`);
const results: Run[] = [];
for (const [i, n] of order.entries()) results.push(await once(n, Math.floor(i / nodeCounts.length) + 1));

const figures: Array<[string, (r: Run) => number | undefined]> = [
  ['drain, first claim → last end (runs/s)', (r) => r.drain?.runsPerSecond],
  ['drain, steady state 10–90 % of claims (runs/s)', (r) => r.drain?.steadyState.perSecond],
  [
    "drain: PostgreSQL, this database's backends, CPU per 1,000 runs (ms)",
    (r) => r.drain?.cpuMsPer1000Runs.backends,
  ],
  ['drain: PostgreSQL, every process, CPU per 1,000 runs (ms)', (r) => r.drain?.cpuMsPer1000Runs.postgres],
  ['drain: node processes CPU per 1,000 runs (ms)', (r) => r.drain?.cpuMsPer1000Runs.nodes],
  ['drain: worker processes CPU per 1,000 runs (ms)', (r) => r.drain?.cpuMsPer1000Runs.workers],
  ['drain: whole machine CPU per 1,000 runs (ms)', (r) => r.drain?.cpuMsPer1000Runs.machine],
  ['fires: highest sustained step (every-second jobs)', (r) => r.fires.highestSustained?.jobs ?? 0],
  ['fires: fires/s at that step', (r) => r.fires.highestSustained?.firesPerSecond],
  ['fires: p99 lateness at that step (ms)', (r) => r.fires.highestSustained?.p99Ms],
  [
    "fires, top step: PostgreSQL, this database's backends (cores)",
    (r) => r.fires.highestSustained?.cpu.backends,
  ],
  ['fires, top step: PostgreSQL, every process (cores)', (r) => r.fires.highestSustained?.cpu.postgres],
  ['fires, top step: node processes CPU (cores)', (r) => r.fires.highestSustained?.cpu.nodes],
  ['fires, top step: whole machine busy (cores)', (r) => r.fires.highestSustained?.cpu.machine],
  ['fires, first step not sustained: fires/s', (r) => r.fires.firstNotSustained?.firesPerSecond],
  [
    "fires, first step not sustained: PostgreSQL, this database's backends (cores)",
    (r) => r.fires.firstNotSustained?.cpu.backends,
  ],
  [
    'fires, first step not sustained: PostgreSQL, every process (cores)',
    (r) => r.fires.firstNotSustained?.cpu.postgres,
  ],
  ['fires, first step not sustained: nodes CPU (cores)', (r) => r.fires.firstNotSustained?.cpu.nodes],
];
const medians = Object.fromEntries(
  nodeCounts.map((n) => {
    const mine = results.filter((r) => r.nodes === n);
    return [
      `${n} node${n > 1 ? 's' : ''}`,
      Object.fromEntries(figures.map(([name, of]) => [name, spread(mine.map((r) => of(r) ?? Number.NaN))])),
    ];
  }),
);
const cell = (n: number, of: (r: Run) => number | undefined) => {
  const values = results.filter((r) => r.nodes === n).map((r) => of(r) ?? Number.NaN);
  const s = spread(values);
  return s ? `**${round(s.median)}** (${values.map((v) => round(v)).join(', ')})` : 'n/a';
};
const markdown = [
  '# Scale-out: 1 node against 3 on one PostgreSQL',
  '',
  `${runs} runs drained by ${workerCount} worker processes (${SLOTS} slots each, round-robin over the nodes); every-second jobs in steps of ${stepMs / 1000} s (${steps.join(', ')}), measured over the last ${(stepMs - SETTLE_MS) / 1000} s of each. Order: ${order.join(', ')}. Median (each run in order).`,
  '',
  `| figure | ${nodeCounts.map((n) => `${n} node${n > 1 ? 's' : ''}`).join(' | ')} |`,
  `|---|${nodeCounts.map(() => '---').join('|')}|`,
  ...figures.map(([name, of]) => `| ${name} | ${nodeCounts.map((n) => cell(n, of)).join(' | ')} |`),
  '',
  'Partitions per node (3 nodes): ' +
    results
      .filter((r) => r.nodes > 1)
      .map((r) =>
        Object.values(r.fires.partitions)
          .map((p) => p.length)
          .join('/'),
      )
      .join('; '),
  '',
  "Steps per run (jobs: fires/s, p99 ms, cores of this database's backends / every PostgreSQL process / nodes / machine):",
  '',
  ...results.map(
    (r) =>
      `- ${r.nodes} node(s), repetition ${r.repetition}: ` +
      r.fires.ramp
        .map(
          (s) =>
            `${s.jobs}: ${s.firesPerSecond}, ${s.lateness.p99Ms}, ${s.cpu.backends}/${s.cpu.postgres}/${s.cpu.nodes}/${s.cpu.machine}${s.sustained ? '' : ' (not sustained)'}`,
        )
        .join('; '),
  ),
  '',
].join('\n');
saveResult(
  'scale-out',
  {
    versions: { kairos: packageVersion('@kairos/server'), worker: packageVersion('@kairos/worker') },
    services: { postgres: await serviceSettings('postgres') },
    settings: {
      runs,
      workers: workerCount,
      slotsPerWorker: SLOTS,
      repetitions,
      nodeCounts,
      stepSeconds: stepMs / 1000,
      measuredSeconds: (stepMs - SETTLE_MS) / 1000,
      steps,
      partitions: 16,
      enqueue: 'POST /v1/jobs/drain/trigger-batch, 1,000 runs per request, through the first node',
    },
    order,
    medians,
    results,
  },
  markdown,
);
console.log(markdown);
