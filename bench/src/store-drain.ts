// `npm run bench:store`: the SQLite store's own cost per run, without HTTP or worker processes.
// N runs are queued through the store, then claimed in batches of 200 for one worker and reported
// succeeded through the node's AttemptEnder, until none is left; prints the CPU time per 1,000
// runs of the claims and of the reports. One process, no other load of its own: steadier than the
// full drain, for comparing changes to the store's statements and indexes.
// `--alert-rule`: with an enabled run-failed alert rule, so that every run end also writes its alert
// outbox row (the cost of alerts on the hot path).
//   node --import tsx --conditions=@kairos/source src/store-drain.ts [--runs 60000] [--batch 200] [--reps 3] [--alert-rule]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AttemptEnder, compileJob, SqliteStore } from '@kairos/server';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '60000' },
    batch: { type: 'string', default: '200' },
    reps: { type: 'string', default: '3' },
    'alert-rule': { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const batch = Number(values.batch);

async function once(): Promise<{ claim: number; report: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'kairos-store-drain-'));
  const store = new SqliteStore(join(dir, 'kairos.db'));
  try {
    await store.migrate();
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
    for (let queued = 0; queued < runs; queued += 1000) {
      const n = Math.min(1000, runs - queued);
      await store.enqueueRuns(
        job.id,
        Array.from({ length: n }, () => ({ params: {}, priority: 0 })),
        Date.now(),
      );
    }
    const worker = { id: 'w', name: 'w', group: job.group, handlers: [job.handler], capacity: batch };
    await store.registerWorker(
      { ...worker, labels: {}, version: '', host: 'localhost' },
      600_000,
      Date.now(),
    );
    const ender = new AttemptEnder(store);
    let claimUs = 0;
    let reportUs = 0;
    let done = 0;
    for (;;) {
      let mark = process.cpuUsage();
      const claimed = await store.dispatchRuns('w', batch, Date.now(), 0.5);
      let spent = process.cpuUsage(mark);
      claimUs += spent.user + spent.system;
      if (claimed.length === 0) break;
      mark = process.cpuUsage();
      const results = await ender.report(
        claimed.map((run) => ({ runId: run.runId, attempt: run.attempt, outcome: 'succeeded' as const })),
        Date.now(),
      );
      spent = process.cpuUsage(mark);
      reportUs += spent.user + spent.system;
      done += results.filter((r) => r.ok).length;
    }
    if (done !== runs) throw new Error(`drained ${done} of ${runs} runs`);
    return { claim: claimUs / runs, report: reportUs / runs };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(
  `SQLite store: ${runs} runs, claimed ${batch} at a time, reported succeeded (CPU ms per 1,000 runs)` +
    (values['alert-rule'] ? ', with an alert rule (an outbox row per run end)' : ''),
);
for (let rep = 0; rep < Number(values.reps); rep++) {
  const { claim, report } = await once();
  console.log(
    `  claim ${claim.toFixed(2)}  report ${report.toFixed(2)}  total ${(claim + report).toFixed(2)}`,
  );
}
