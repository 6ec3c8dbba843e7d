// `npm run bench:overload -- --dialect sqlite|postgres [--step-seconds 20] [--overload-seconds 60]
//   [--steps 1000,2000,4000,7000,10000,14000,20000,28000,40000] [--factor 2] [--recover-to N]`
//
// One real `kairos server` node. A ramp of every-second jobs (no worker: their runs stay queued;
// written by the harness into the store), step by step, each measured over its last
// `step-seconds` − 5 s from the store itself (the bulk jobs' fires due in the window, cut to whole
// seconds and read 2 s after it, and their lateness, created_at − fire_time, fires made ahead
// count as 0; ledger rows by reason), so that the measurement never asks the node for anything. A step is
// sustained when it fires ≥ 95 % of its jobs each second with p99 lateness ≤ 1 s and sheds
// nothing; the ramp stops at the first step that is not. Then the overload phase: `factor` × the
// largest sustained step, for `overload-seconds`, and the recovery after the surplus jobs are
// paused, back to `recover-to` jobs (default: the step below the largest sustained one; the
// largest itself leaves no room to work off the backlog, and the overload has grown the store by
// every queued run it made). Throughout: `/v1/health` every 250 ms (latency), a separate every-second job (the
// canary) whose SDK worker measures start lateness and gaps between starts, and the canary
// worker's status (never declared lost, never registered again).
// Writes bench/results/overload-<dialect>-<time>.{json,md}.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from '@kairos/worker';
import { machine } from './environment.ts';
import {
  BulkJobs,
  type FireWindow,
  fireWindow,
  isSustained,
  percentile,
  postgresReader,
  sqliteReader,
} from './fire-window.ts';
import { ADMIN_TOKEN, startNodeProcess, stopNodeProcess } from './kairos-process.ts';
import { createDatabase, type FreshDatabase, postgresInfo } from './pg.ts';
import { sleep } from './util.ts';

const { values } = parseArgs({
  options: {
    dialect: { type: 'string', default: 'sqlite' },
    'step-seconds': { type: 'string', default: '20' },
    'overload-seconds': { type: 'string', default: '60' },
    steps: { type: 'string', default: '1000,2000,4000,7000,10000,14000,20000,28000,40000' },
    factor: { type: 'string', default: '2' },
    'recover-to': { type: 'string' },
  },
});
const dialect = values.dialect === 'postgres' ? 'postgres' : 'sqlite';
const stepMs = Number(values['step-seconds']) * 1000;
const overloadMs = Number(values['overload-seconds']) * 1000;
const steps = values.steps!.split(',').map(Number);
const factor = Number(values.factor);
/** The first seconds of a step are not measured: jobs just created settle into their second. */
const SETTLE_MS = 5000;
/** How long the recovery is watched for a 5-s slice on time. */
const RECOVERY_MS = 180_000;

async function main(): Promise<void> {
  let db: FreshDatabase | undefined;
  let databaseUrl: string;
  let sqlitePath = '';
  if (dialect === 'postgres') {
    db = await createDatabase('overload');
    databaseUrl = db.url;
  } else {
    sqlitePath = join(mkdtempSync(join(tmpdir(), 'kairos-overload-')), 'kairos.db');
    databaseUrl = `sqlite:${sqlitePath}`;
  }
  const node = await startNodeProcess('overload', databaseUrl, { KAIROS_LOG_LEVEL: 'warn' });
  const reader = dialect === 'postgres' ? await postgresReader(databaseUrl) : sqliteReader(sqlitePath);
  const admin = node.client;

  // Health latency, every 250 ms, in windows.
  const health: Array<[at: number, ms: number]> = [];
  let probing = true;
  const prober = (async () => {
    while (probing) {
      const started = performance.now();
      try {
        const answer = await fetch(`${node.url}/v1/health`, { signal: AbortSignal.timeout(120_000) });
        await answer.arrayBuffer();
        health.push([Date.now(), answer.ok ? performance.now() - started : Number.POSITIVE_INFINITY]);
      } catch {
        health.push([Date.now(), Number.POSITIVE_INFINITY]);
      }
      await sleep(250);
    }
  })();
  const healthOf = (from: number, to: number) => {
    const ms = health
      .filter(([at]) => at >= from && at < to)
      .map(([, v]) => v)
      .sort((a, b) => a - b);
    return {
      probes: ms.length,
      p99Ms: Math.round(percentile(ms, 99)),
      maxMs: Math.round(ms.at(-1) ?? Number.NaN),
    };
  };

  // The canary: a separate every-second job and its worker.
  const starts: Array<[fire: number, started: number]> = [];
  const worker = new Worker({
    url: node.url,
    token: ADMIN_TOKEN,
    group: 'canary',
    concurrency: 8,
    handleSignals: false,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  }).handle('canary', async (ctx) => {
    if (ctx.fireTime) starts.push([ctx.fireTime.getTime(), Date.now()]);
    return 'ok';
  });
  await worker.start();
  await admin.createJob({
    name: 'canary',
    handler: 'canary',
    group: 'canary',
    trigger: { kind: 'every', every: '1s' },
  });
  const canaryWorker = (await admin.listWorkers()).items.find((w) => w.group === 'canary')!;
  const canaryOf = (from: number, to: number) => {
    const inWindow = starts.filter(([fire]) => fire >= from && fire < to);
    const late = inWindow.map(([fire, started]) => started - fire).sort((a, b) => a - b);
    const fires = inWindow.map(([fire]) => fire).sort((a, b) => a - b);
    let gap = 0;
    for (let i = 1; i < fires.length; i++) gap = Math.max(gap, fires[i]! - fires[i - 1]!);
    return { starts: inWindow.length, p99LatenessMs: percentile(late, 99), maxGapMs: gap };
  };

  const bulk = new BulkJobs(databaseUrl);

  const ramp: Array<Record<string, unknown>> = [];
  let best = 0;
  let bestFires = 0;
  for (const jobs of steps) {
    const createdFrom = Date.now();
    await bulk.grow(jobs);
    const createMs = Date.now() - createdFrom;
    await sleep(SETTLE_MS);
    const from = Date.now();
    await sleep(Math.max(1000, stepMs - SETTLE_MS));
    const to = Date.now();
    const fired = await fireWindow(reader, from, to);
    const sustained = isSustained(jobs, fired);
    const step = {
      jobs,
      createMs,
      ...fired,
      health: healthOf(from, to),
      canary: canaryOf(from, to),
      sustained,
    };
    ramp.push(step);
    console.log(JSON.stringify(step));
    if (!sustained) break;
    best = jobs;
    bestFires = fired.firesPerSecond;
  }

  // Overload: factor × the largest sustained step (at least the step that was not).
  const overloadJobs = Math.max(Math.round(factor * best), bulk.created);
  await bulk.grow(overloadJobs);
  const overloadFrom = Date.now();
  const slices: Array<Record<string, unknown>> = [];
  for (let at = overloadFrom; at < overloadFrom + overloadMs; at += 5000) {
    await sleep(Math.max(0, at + 5000 - Date.now()));
    const slice = {
      second: Math.round((at - overloadFrom) / 1000),
      ...(await fireWindow(reader, at, at + 5000)),
    };
    slices.push({ ...slice, health: healthOf(at, at + 5000) });
    console.log(JSON.stringify(slices.at(-1)));
  }
  const overloadTo = Date.now();
  const overload = {
    jobs: overloadJobs,
    seconds: overloadMs / 1000,
    ...(await fireWindow(reader, overloadFrom, overloadTo)),
    health: healthOf(overloadFrom, overloadTo),
    canary: canaryOf(overloadFrom, overloadTo),
    slices,
  };

  // Recovery: back below the largest sustained step; how long until a 5-s slice is on time again.
  const recoverTo = values['recover-to']
    ? Number(values['recover-to'])
    : (steps[steps.indexOf(best) - 1] ?? Math.round(best / 2));
  const recoveryFrom = Date.now();
  await bulk.pause(recoverTo);
  const pausedMs = Date.now() - recoveryFrom;
  let recoveredAfterMs: number | null = null;
  for (let at = Date.now(); at < recoveryFrom + RECOVERY_MS; at += 5000) {
    await sleep(Math.max(0, at + 5000 - Date.now()));
    const slice = await fireWindow(reader, at, at + 5000);
    if (slice.lateness.p99Ms <= 1000 && !((slice.shedPerSecond.overloaded ?? 0) > 0)) {
      recoveredAfterMs = at + 5000 - recoveryFrom;
      break;
    }
  }

  const canaryWorkers = (await admin.listWorkers({ all: true })).items.filter((w) => w.group === 'canary');
  const workerKept =
    canaryWorkers.length === 1 &&
    canaryWorkers[0]!.id === canaryWorker.id &&
    canaryWorkers[0]!.status === 'active';
  const metrics = await (await fetch(`${node.url}/metrics`)).text();
  const metricLines = metrics
    .split('\n')
    .filter((l) => /^kairos_(overload_shed_fires_total|trigger_overloaded|trigger_backlog_seconds) /.test(l));
  probing = false;
  await prober;
  await worker.stop();
  await stopNodeProcess(node, 'SIGTERM');
  await bulk.close();
  await reader.close();
  const postgres = dialect === 'postgres' ? await postgresInfo() : undefined;
  await db?.drop();

  const result = {
    dialect,
    machine: machine(),
    ...(postgres ? { postgres } : {}),
    setup: { stepSeconds: stepMs / 1000, overloadSeconds: overloadMs / 1000, steps, factor },
    highestSustained: { jobs: best, firesPerSecond: bestFires },
    ramp,
    overload,
    recovery: { toJobs: recoverTo, pausedMs, recoveredAfterMs },
    canaryWorkerKept: workerKept,
    metrics: metricLines,
  };
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const base = new URL(`../results/overload-${dialect}-${stamp}`, import.meta.url).pathname;
  writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
  const row = (name: string, s: Record<string, unknown> & FireWindow, h: unknown) =>
    `| ${name} | ${s.firesPerSecond} | ${s.lateness.p50Ms} | ${s.lateness.p99Ms} | ${s.lateness.maxMs} | ${JSON.stringify(s.shedPerSecond)} | ${JSON.stringify(h)} |`;
  writeFileSync(
    `${base}.md`,
    [
      `# Overload, ${dialect}`,
      '',
      `Highest sustained: ${best} every-second jobs, ${bestFires} fires/s with p99 lateness ≤ 1 s.`,
      '',
      '| jobs | fires/s | p50 lateness (ms) | p99 (ms) | max (ms) | shed/s | health |',
      '|---|---|---|---|---|---|---|',
      ...ramp.map((s) => row(String(s.jobs), s as never, s.health)),
      row(`${overloadJobs} (overload, ${overloadMs / 1000} s)`, overload as never, overload.health),
      '',
      `Canary during the overload: ${JSON.stringify(overload.canary)}; its worker kept (never lost, never registered again): ${workerKept}.`,
      `Recovery to ${recoverTo} jobs (the surplus paused in ${pausedMs} ms): ${recoveredAfterMs === null ? `not within ${RECOVERY_MS / 1000} s` : `${recoveredAfterMs} ms`} after the pause began.`,
      '',
    ].join('\n'),
  );
  console.log(
    JSON.stringify(
      { highestSustained: result.highestSustained, overload: { ...overload, slices: undefined } },
      null,
      2,
    ),
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
