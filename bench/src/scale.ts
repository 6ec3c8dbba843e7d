// Scale: 100,000 active cron schedules on one node (`npm run bench:scale -w bench`, and part of `--all`).
// The jobs are written to a fresh store first; then a `kairos server` process starts on it (time to
// ready), every job fires at the same second of the minute (`S * * * * *`), and the store tells how
// late each run was created against that instant. The node's resident memory is read from /proc after the storm.
// Alone, it writes bench/results/scale-<timestamp>.json.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { compileJob, firstFire, openStore } from '@kairos/server';
import type { IdleWork } from './idle.ts';
import { memoryOf, startNodeProcess, stopNodeProcess } from './kairos-process.ts';
import { saveResult } from './results.ts';
import { latencyStats, round } from './stats.ts';
import { Timings } from './timings.ts';
import { sleep } from './util.ts';

export interface ScaleResult {
  jobs: number;
  /** Writing the jobs into the store before the node starts (not a Kairos figure; for context). */
  createSeconds: number;
  /** `kairos server` spawn → first healthy answer, with the jobs in the store (includes Node start-up). */
  startMs: number;
  /** Runs created for the storm's instant, and how late (created − nominal), in milliseconds. */
  fired: number;
  p50: number;
  p99: number;
  max: number;
  rssMiB: number;
  peakMiB: number;
}

/** Writes `jobs` cron jobs `cron.0…` into a new SQLite store at `file`, each first due at `firstAt`;
 * resolves with the milliseconds the last 1,000 took. */
async function writeJobs(file: string, jobs: number, cron: string, firstAt: number): Promise<number> {
  const store = openStore(`sqlite:${file}`);
  await store.migrate();
  const now = Date.now();
  let lastThousand = now;
  for (let i = 0; i < jobs; i++) {
    if (i === jobs - 1000) lastThousand = Date.now();
    const job = compileJob({
      name: `cron.${i}`,
      handler: 'noop',
      params: { i },
      trigger: { kind: 'cron', cron },
    });
    await store.createJob(job, firstFire(job.trigger, firstAt - 1000), now);
  }
  const ms = Date.now() - lastThousand;
  await store.close();
  return ms;
}

/** How long the node gets to start before the storm (its start took 1.1–3.8 s in the full runs of
 * 2026-11-25: twice the slowest). */
const START_MS = 8000;
/** Spare time for the writing beyond its estimate, at least (a share of the estimate comes on top). */
const WRITE_SPARE_MS = 3000;

/** Runs the scale benchmark on SQLite in a temporary folder; once-only sections that end before the
 * node has to start may run in the wait for the storm (see idle.ts). */
export async function scale(jobs: number, timings = new Timings(), idle?: IdleWork): Promise<ScaleResult> {
  const dir = mkdtempSync(join(tmpdir(), 'kairos-scale-'));
  const file = join(dir, 'kairos.db');
  try {
    // The storm is one second of the minute (`S * * * * *`), chosen so that writing the jobs and
    // starting the node end before it: the writing is expected to take `jobs / 1,000` times what the
    // last 1,000 of 3,000 take in a scratch store (within 10 % when measured), and gets half as much
    // again to spare (3 s at least). The once-only sections still queued would run after this section:
    // the spare time grows to hold them, and they run in it.
    const probe = await writeJobs(join(dir, 'probe.db'), 3000, '0 * * * * *', Date.now() + 60_000);
    const created = Date.now();
    const writing = probe * (jobs / 1000);
    const pending = (idle?.pendingSeconds() ?? 0) * 1000;
    const spare = pending + Math.max(WRITE_SPARE_MS, writing / 2);
    const storm = Math.ceil((created + writing + spare + START_MS) / 1000) * 1000;
    await timings.time('scale: create jobs', () =>
      writeJobs(file, jobs, `${new Date(storm).getUTCSeconds()} * * * * *`, storm),
    );
    const createSeconds = round((Date.now() - created) / 1000);

    await timings.time('scale: wait for the storm', async () => {
      await idle?.fill(storm - START_MS, "the scale section's wait for its storm");
      await sleep(storm - START_MS - Date.now());
    });
    const node = await timings.time('scale: node start', () => startNodeProcess('scale', `sqlite:${file}`));
    try {
      const { default: Database } = await import('better-sqlite3');
      const db = new Database(file, { readonly: true });
      try {
        const count = db.prepare('SELECT count(*) AS n FROM runs WHERE fire_time = ?');
        await timings.time('scale: wait for the storm', () => sleep(storm - Date.now()));
        const deadline = Date.now() + 60_000;
        await timings.time('scale: storm', async () => {
          while ((count.get(storm) as { n: number }).n < jobs && Date.now() < deadline) await sleep(50);
        });
        const late = db
          .prepare('SELECT created_at - fire_time AS late FROM runs WHERE fire_time = ?')
          .pluck()
          .all(storm) as number[];
        const stats = latencyStats(late);
        return {
          jobs,
          createSeconds,
          startMs: Math.round(node.startMs),
          fired: late.length,
          p50: stats.p50,
          p99: stats.p99,
          max: stats.max,
          ...memoryOf(node.child.pid!),
        };
      } finally {
        db.close();
      }
    } finally {
      await stopNodeProcess(node, 'SIGTERM');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The result in a few lines. */
export function describeScale(r: ScaleResult): string {
  return [
    `Kairos with ${r.jobs} cron schedules on one node (SQLite), all due at one instant`,
    `  node start → ready: ${r.startMs} ms (jobs written beforehand in ${r.createSeconds} s)`,
    `  storm: ${r.fired} runs created; late by p50 ${r.p50} ms, p99 ${r.p99} ms, max ${r.max} ms`,
    `  node memory after the storm: ${r.rssMiB} MiB resident (peak ${r.peakMiB} MiB)`,
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const result = await scale(Number(process.env.JOBS ?? 100_000));
  console.log(describeScale(result));
  saveResult('scale', { result });
}
