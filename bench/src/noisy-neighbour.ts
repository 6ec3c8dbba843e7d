// `npm run bench:neighbour -- --dialect sqlite|postgres [--seconds 60]`: one real `kairos server` node,
// namespace B with 5 jobs firing every second, namespace A first idle, then at its quotas: 20 jobs
// firing every second (its maxFiresPerSecond of 20 reached) and 8 concurrent loops triggering runs as
// fast as answers come back (in a process of their own), refused by requestsPerSecond (50/s) and
// maxQueuedRuns (500).
// Reports B's fire lateness in each phase of the same run: when B's worker (an SDK worker of
// namespace B, in the harness) starts a run, minus the run's fire time — what a user of B sees,
// through fire ahead, the queue and the claim. A's runs have no worker: they stay queued.
// Also A's answers and refusals. Writes bench/results/noisy-neighbour-<dialect>-<time>.{json,md}.
import { fork } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { KairosClient } from '@kairos/client';
import { Worker } from '@kairos/worker';
import { machine } from './environment.ts';
import { ADMIN_TOKEN, startNodeProcess, stopNodeProcess } from './kairos-process.ts';
import { createDatabase, type FreshDatabase, postgresInfo } from './pg.ts';
import { sleep } from './util.ts';

const { values } = parseArgs({
  options: {
    dialect: { type: 'string', default: 'sqlite' },
    seconds: { type: 'string', default: '60' },
    flood: { type: 'string' },
  },
});
const dialect = values.dialect === 'postgres' ? 'postgres' : 'sqlite';
const phaseMs = Number(values.seconds) * 1000;
const B_JOBS = 5;
const A_JOBS = 20;
const A_QUOTAS = { maxFiresPerSecond: 20, requestsPerSecond: 50, maxQueuedRuns: 500 };
const FLOOD_LOOPS = 8;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** B's starts: [fire time, lateness] in ms, as B's worker saw them. */
const starts: Array<[number, number]> = [];

function latenessOf(from: number, to: number): number[] {
  return starts
    .filter(([fire]) => fire >= from && fire < to)
    .map(([, lateness]) => lateness)
    .sort((x, y) => x - y);
}

function summary(lateness: number[]) {
  return {
    fires: lateness.length,
    p50Ms: percentile(lateness, 50),
    p99Ms: percentile(lateness, 99),
    maxMs: lateness.at(-1) ?? Number.NaN,
  };
}

/** The flood process: FLOOD_LOOPS loops triggering A's manual job until told to stop; sends back the answers by status. */
async function flood(url: string): Promise<void> {
  const answers: Record<string, number> = {};
  let flooding = true;
  process.once('message', () => {
    flooding = false;
  });
  const loop = async () => {
    while (flooding) {
      const answer = await fetch(`${url}/v1/jobs/a-manual/trigger`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${ADMIN_TOKEN}`,
          'kairos-namespace': 'a',
          'content-type': 'application/json',
        },
        body: '{}',
      });
      const code =
        answer.status === 201
          ? '201'
          : `${answer.status} ${((await answer.json()) as { error?: { details?: { quota?: string } } }).error?.details?.quota ?? ''}`;
      if (answer.status === 201) await answer.arrayBuffer().catch(() => undefined);
      answers[code] = (answers[code] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: FLOOD_LOOPS }, loop));
  process.send!(answers, undefined, {}, () => process.exit(0));
}

async function main(): Promise<void> {
  let db: FreshDatabase | undefined;
  let databaseUrl: string;
  if (dialect === 'postgres') {
    db = await createDatabase('neighbour');
    databaseUrl = db.url;
  } else {
    databaseUrl = `sqlite:${join(mkdtempSync(join(tmpdir(), 'kairos-neighbour-')), 'kairos.db')}`;
  }
  const node = await startNodeProcess('neighbour', databaseUrl);
  const admin = node.client;
  await admin.createNamespace({ name: 'a' });
  await admin.createNamespace({ name: 'b' });
  const a = new KairosClient({ url: node.url, token: ADMIN_TOKEN, namespace: 'a' });
  const b = new KairosClient({ url: node.url, token: ADMIN_TOKEN, namespace: 'b' });
  const everySecond = (name: string) => ({
    name,
    handler: 'h',
    trigger: { kind: 'every' as const, every: '1s' },
  });
  const worker = new Worker({
    url: node.url,
    token: ADMIN_TOKEN,
    namespace: 'b',
    group: 'default',
    concurrency: 16,
    handleSignals: false,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  }).handle('h', async (ctx) => {
    if (ctx.fireTime) starts.push([ctx.fireTime.getTime(), Date.now() - ctx.fireTime.getTime()]);
    return 'ok';
  });
  await worker.start();
  for (let i = 0; i < B_JOBS; i++) await b.createJob(everySecond(`b-${i}`));
  // Let the first fires settle before measuring.
  await sleep(3000);

  const idleFrom = Date.now();
  await sleep(phaseMs);
  const idleTo = Date.now();

  await admin.putNamespaceQuotas('a', A_QUOTAS);
  for (let i = 0; i < A_JOBS; i++) await a.createJob(everySecond(`a-${i}`));
  let refusedJob = '';
  try {
    await a.createJob(everySecond('a-over'));
  } catch (error) {
    refusedJob = (error as { code?: string }).code ?? String(error);
  }
  await a.createJob({ name: 'a-manual', handler: 'h', trigger: { kind: 'manual' } });
  await sleep(2000);
  // A's clients run in a process of their own, as another tenant's would: in the harness's process
  // their thousands of answers a second would delay B's worker there and count as B's lateness.
  const flooder = fork(fileURLToPath(import.meta.url), ['--flood', node.url], {
    execArgv: ['--import', 'tsx', '--conditions=@kairos/source'],
  });
  const answered = new Promise<Record<string, number>>((resolve) =>
    flooder.once('message', (message) => resolve(message as Record<string, number>)),
  );
  const busyFrom = Date.now();
  await sleep(phaseMs);
  const busyTo = Date.now();
  flooder.send('stop');
  const answers = await answered;
  await sleep(2000);

  const idle = summary(latenessOf(idleFrom, idleTo));
  const busy = summary(latenessOf(busyFrom, busyTo));
  await worker.stop();
  const metrics = await (await fetch(`${node.url}/metrics`)).text();
  const refusals = metrics.split('\n').filter((l) => l.startsWith('kairos_quota_refusals_total{'));
  await stopNodeProcess(node, 'SIGTERM');
  const postgres = dialect === 'postgres' ? await postgresInfo() : undefined;
  await db?.drop();

  const result = {
    dialect,
    phaseSeconds: phaseMs / 1000,
    machine: machine(),
    ...(postgres ? { postgres } : {}),
    setup: { bJobs: B_JOBS, aJobs: A_JOBS, aQuotas: A_QUOTAS, floodLoops: FLOOD_LOOPS, refusedJob },
    bLateness: { aIdle: idle, aAtQuota: busy, p99IncreaseMs: busy.p99Ms - idle.p99Ms },
    aAnswers: answers,
    refusals,
  };
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const base = new URL(`../results/noisy-neighbour-${dialect}-${stamp}`, import.meta.url).pathname;
  writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
  const row = (name: string, s: ReturnType<typeof summary>) =>
    `| ${name} | ${s.fires} | ${s.p50Ms} | ${s.p99Ms} | ${s.maxMs} |`;
  writeFileSync(
    `${base}.md`,
    [
      `# Noisy neighbour, ${dialect}, ${phaseMs / 1000} s per phase`,
      '',
      "| namespace A | B's fires | B p50 lateness (ms) | B p99 (ms) | B max (ms) |",
      '|---|---|---|---|---|',
      row('idle', idle),
      row('at its quotas', busy),
      '',
      `A's trigger answers: ${JSON.stringify(answers)}; A's 21st every-second job: ${refusedJob || 'accepted'}.`,
      '',
    ].join('\n'),
  );
  console.log(JSON.stringify(result.bLateness, null, 2));
  console.log(JSON.stringify(answers));
}

(values.flood ? flood(values.flood) : main()).catch((error) => {
  console.error(error);
  process.exit(1);
});
