import { type Attempt, KairosClient } from '@kairos/client';
import { Worker } from '@kairos/worker';
import { afterAll, describe, expect, it } from 'vitest';
import { Cluster, TOKENS } from './cluster-harness.ts';
import { checkHistory, readHistory } from './history.ts';
import { waitFor } from './processes.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

// A node that accepts connections but never answers (SIGSTOP: a VM freeze, a long GC) for longer
// than the worker lease. The workers attached to it must move to the other node well within their
// lease: none is declared lost, and no fire runs twice unless the run's history shows the attempt
// that was fenced out and still ran.

const DATABASE = testDatabaseUrl();
const FREEZE_MS = 8000;
const ROUNDS = 2;
const JOBS = 10;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

afterAll(dropTestSchemas);

interface Execution {
  runId: number;
  attempt: number;
  worker: string;
  at: number;
}

describe('a node frozen past the worker lease', () => {
  const schema = testSchema('kairos_frozen');
  const cluster = new Cluster(`${DATABASE}?schema=${schema}`);
  const workers: Worker[] = [];
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await cluster.stopAll();
  });

  it('costs no execution twice: its workers carry on through the other node, leases intact', async () => {
    const a = await cluster.start('a');
    const b = await cluster.start('b');
    await cluster.settled();
    const admin = new KairosClient({ url: b.url, token: TOKENS.KAIROS_ADMIN_TOKEN, timeoutMs: 10_000 });
    for (let i = 0; i < JOBS; i++) {
      await admin.createJob({ name: `tick-${i}`, handler: 'tick', trigger: { kind: 'every', every: '1s' } });
    }
    const executions: Execution[] = [];
    const worker = (name: string, urls: string[]) => {
      const w = new Worker({
        url: urls,
        token: TOKENS.KAIROS_WORKER_TOKEN,
        name,
        concurrency: 8,
        handleSignals: false,
        logger: quiet,
      }).handle('tick', async (ctx) => {
        executions.push({ runId: ctx.runId, attempt: ctx.attempt, worker: name, at: Date.now() });
        // A little work: at a freeze, some handlers are running and their reports are due soon.
        await sleep(300);
        return null;
      });
      workers.push(w);
      return w;
    };
    // `onA` talks to the node that will freeze; `onB` to the other one.
    const onA = worker('on-a', [a.url, b.url]);
    const onB = worker('on-b', [b.url, a.url]);
    await Promise.all([onA.start(), onB.start()]);
    const idOnA = onA.id;
    await waitFor(
      async () =>
        (executions.some((e) => e.worker === 'on-a') && executions.some((e) => e.worker === 'on-b')) ||
        undefined,
      30_000,
      'both workers to run fires',
    );

    const freezes: Array<{ from: number; to: number }> = [];
    for (let round = 0; round < ROUNDS; round++) {
      const from = Date.now();
      a.child.process.kill('SIGSTOP');
      await sleep(FREEZE_MS);
      a.child.process.kill('SIGCONT');
      const thawed = Date.now();
      freezes.push({ from, to: thawed });
      // The next freeze only once the thawed node answers again and its worker ran a fire since.
      await waitFor(
        async () =>
          (executions.some((e) => e.worker === 'on-a' && e.at > thawed) &&
            (await fetch(`${a.url}/livez`).then(
              (r) => r.ok,
              () => false,
            ))) ||
          undefined,
        30_000,
        'the thawed node to answer and its worker to run a fire',
      );
    }
    await Promise.all(Array.from({ length: JOBS }, (_, i) => admin.pauseJob(`tick-${i}`)));
    // Every run fired so far ends.
    await waitFor(
      async () => (await admin.listRuns({ status: 'running', limit: 1 })).items.length === 0 || undefined,
      30_000,
      'the runs in flight to end',
    );

    // The worker of the frozen node kept its registration and went on working through the other.
    expect(onA.id).toBe(idOnA);
    const workersNow = (await admin.listWorkers({ all: true })).items;
    expect(workersNow.filter((w) => w.status !== 'active').map((w) => `${w.name}: ${w.status}`)).toEqual([]);
    for (const freeze of freezes) {
      const during = executions.filter(
        (e) => e.worker === 'on-a' && e.at > freeze.from + 2000 && e.at < freeze.to,
      );
      expect(during.length).toBeGreaterThan(0);
    }

    // A fire executed twice is explained by its history: an attempt fenced out whose late report was kept.
    const byRun = new Map<number, Execution[]>();
    for (const e of executions) byRun.set(e.runId, [...(byRun.get(e.runId) ?? []), e]);
    const twice = [...byRun.entries()].filter(([, list]) => list.length > 1);
    const unexplained: Array<{ runId: number; executions: Execution[]; attempts: Attempt[] }> = [];
    for (const [runId, list] of twice) {
      const attempts = (await admin.getRun(runId)).attempts ?? [];
      const fenced = attempts.filter((at) => at.lateReport !== undefined);
      if (fenced.length < list.length - 1) unexplained.push({ runId, executions: list, attempts });
    }
    expect(unexplained).toEqual([]);
    // Nothing doubled or stuck in the store either; no attempt lost.
    const history = (await readHistory(DATABASE, schema)).filter((r) => r.job.startsWith('tick-'));
    const report = checkHistory(history, { from: 0, to: 0, expected: () => [], stuckBefore: Date.now() });
    expect(report.duplicates).toEqual([]);
    expect(report.stuck).toEqual([]);
    expect(executions.length).toBeGreaterThan(JOBS * 10);
  }, 180_000);
});
