// `npm run bench:burst`: how fast the worker SDK starts a burst of held runs, in one process.
// A stand-in node (node:http, in this process) hands the worker `--runs` runs due at one instant,
// `--ahead` ms before it, once a second (as fire ahead does for 1,000 schedules every second); the
// worker holds them and starts each handler at its instant. The handler, like the benchmark's, reads
// the params and the fire time and records when it started. Per burst: first start − instant, first →
// p99 start, first → last start, and the process's CPU time between the first and the last start per
// start. The first bursts warm up and are left out. No store, no other load of its own: the SDK's
// start path alone, for comparing changes to it (`--cpu-prof` shows where a start's time goes).
// Result: bench/results/burst-<timestamp>.json.
//   node --import tsx --conditions=@kairos/source src/burst.ts [--runs 1000] [--concurrency 200] [--bursts 12] [--warmup 3] [--ahead 300]
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Assignment, Report } from '@kairos/client';
import { Worker } from '@kairos/worker';
import { saveResult } from './results.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '200' },
    bursts: { type: 'string', default: '12' },
    warmup: { type: 'string', default: '3' },
    ahead: { type: 'string', default: '300' },
  },
});
const runs = Number(values.runs);
const concurrency = Number(values.concurrency);
const bursts = Number(values.bursts);
const warmup = Number(values.warmup);
const aheadMs = Number(values.ahead);

/** One burst as the handler saw it: start instants (performance.now()) and CPU marks (µs). */
interface Burst {
  instant: number;
  starts: number[];
  /** `params.i` of each start, in start order. */
  order: number[];
  cpuFirst: number;
  cpuLast: number;
  reported: number;
  allReported: () => void;
  done: Promise<void>;
}

const cpu = (): number => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

function newBurst(instant: number): Burst {
  let allReported!: () => void;
  const done = new Promise<void>((resolve) => {
    allReported = resolve;
  });
  return { instant, starts: [], order: [], cpuFirst: 0, cpuLast: 0, reported: 0, allReported, done };
}

/** The instants (epoch ms) of the bursts: whole seconds, the first at least 1.5 s away. */
const first = Math.ceil((Date.now() + 1500) / 1000) * 1000;
const plan = Array.from({ length: bursts }, (_, k) => newBurst(first + k * 1000));
const byInstant = new Map(plan.map((burst) => [burst.instant, burst]));
let handedOut = 0;

function assignments(k: number, instant: number, answeredAt: number): Assignment[] {
  const fireTime = new Date(instant).toISOString();
  return Array.from({ length: runs }, (_, i) => ({
    runId: k * runs + i + 1,
    attempt: 1,
    jobName: `burst.${i}`,
    handler: 'noop',
    params: { i },
    fireTime,
    timeout: 30_000,
    maxAttempts: 1,
    startInMs: instant - answeredAt,
  }));
}

/** The next burst's runs when its time to be handed out came, else null. */
function takeBatch(): Assignment[] | null {
  const burst = plan[handedOut];
  if (!burst || Date.now() < burst.instant - aheadMs) return null;
  return assignments(handedOut++, burst.instant, Date.now());
}

function answer(res: ServerResponse, json: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(json));
}

/** A long poll: answered with the next burst once it may be handed out, or empty after `waitMs`. */
function poll(res: ServerResponse, body: { waitMs?: number }): void {
  const batch = takeBatch();
  if (batch) {
    answer(res, { runs: batch });
    return;
  }
  const next = plan[handedOut];
  const until = Math.min(
    body.waitMs ?? 0,
    next ? next.instant - aheadMs - Date.now() : Number.POSITIVE_INFINITY,
  );
  const timer = setTimeout(() => answer(res, { runs: takeBatch() ?? [] }), Math.max(0, until));
  res.on('close', () => clearTimeout(timer));
}

function report(res: ServerResponse, body: { reports: Report[] }): void {
  for (const { runId } of body.reports) {
    const burst = plan[Math.floor((runId - 1) / runs)];
    if (burst && ++burst.reported === runs) burst.allReported();
  }
  answer(res, { results: body.reports.map(({ runId, attempt }) => ({ runId, attempt, ok: true })) });
}

const server = createServer((req, res) => {
  let text = '';
  req.on('data', (chunk) => {
    text += chunk;
  });
  req.on('end', () => {
    const path = req.url ?? '';
    const body = text === '' ? {} : JSON.parse(text);
    if (path.endsWith('/register'))
      return answer(res, { workerId: 'w', heartbeatMs: 1000, leaseMs: 5000, pollWaitMs: 30_000 });
    if (path.endsWith('/poll')) return poll(res, body);
    if (path.endsWith('/report')) return report(res, body);
    if (path.endsWith('/heartbeat')) return answer(res, { cancel: [] });
    answer(res, {});
  });
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

/** The benchmark's handler (probe.ts): reads the params and the fire time, records the start. */
const handle = (params: unknown, fireTime: number | undefined): void => {
  const at = performance.now();
  const burst = fireTime === undefined ? undefined : byInstant.get(fireTime);
  if (!burst) return;
  if (burst.starts.length === 0) burst.cpuFirst = cpu();
  burst.starts.push(at);
  burst.order.push((params as { i: number }).i);
  if (burst.starts.length === runs) burst.cpuLast = cpu();
};

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const worker = new Worker({ url, concurrency, handleSignals: false, logger: quiet }).handle(
  'noop',
  async (ctx) => {
    await handle(ctx.params, ctx.fireTime?.getTime());
    return null;
  },
);
await worker.start();
for (const burst of plan) await burst.done;
await worker.stop();
server.close();

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
};
const fixed = (x: number, digits = 2): string => x.toFixed(digits);

const rows = plan.slice(warmup).map((burst) => {
  const instant = burst.instant - performance.timeOrigin;
  const starts = burst.starts;
  const p99 = starts[Math.ceil(0.99 * starts.length) - 1]!;
  const inOrder = burst.order.every((i, k) => i === k);
  const early = starts.filter((at) => at < instant - 1).length;
  return {
    late: starts[0]! - instant,
    p99: p99 - starts[0]!,
    last: starts[starts.length - 1]! - starts[0]!,
    cpuPerStart: (burst.cpuLast - burst.cpuFirst) / (starts.length - 1),
    early,
    inOrder,
  };
});
console.log(
  `${runs} runs a burst, concurrency ${concurrency}, handed out ${aheadMs} ms ahead; ` +
    `${rows.length} bursts after ${warmup} of warm-up (ms; CPU in µs per start)`,
);
console.log('burst  first late  first→p99  first→last  CPU/start');
rows.forEach((row, i) => {
  console.log(
    `${String(i + warmup).padStart(5)}  ${fixed(row.late).padStart(10)}  ${fixed(row.p99).padStart(9)}  ` +
      `${fixed(row.last).padStart(10)}  ${fixed(row.cpuPerStart, 1).padStart(9)}`,
  );
});
console.log(
  `median  ${fixed(median(rows.map((r) => r.late))).padStart(9)}  ${fixed(median(rows.map((r) => r.p99))).padStart(9)}  ` +
    `${fixed(median(rows.map((r) => r.last))).padStart(10)}  ${fixed(median(rows.map((r) => r.cpuPerStart)), 1).padStart(9)}`,
);
const early = rows.reduce((sum, row) => sum + row.early, 0);
if (early > 0 || !rows.every((row) => row.inOrder)) console.log(`started early: ${early}; in order: no`);
saveResult('burst', {
  settings: { runs, concurrency, bursts, warmup, aheadMs },
  bursts: rows,
  median: {
    late: median(rows.map((r) => r.late)),
    p99: median(rows.map((r) => r.p99)),
    last: median(rows.map((r) => r.last)),
    cpuPerStart: median(rows.map((r) => r.cpuPerStart)),
  },
});
