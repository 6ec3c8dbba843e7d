import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../src/scheduler/clock.ts';
import { JobService } from '../src/scheduler/job-service.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { tempDir } from './helpers.ts';
import { freePort, spawnKairos, waitFor } from './processes.ts';

const JOBS = 10_000;
/** The bound a probe must answer within: the node's worker lease, which workers judge it by too. */
const LEASE_MS = 10_000;
const PROBES = 20;
/** The jobs were created this long ago: each has ~50 missed fires within the misfire grace (60 s) to run. */
const BACKLOG_MS = 50_000;

/**
 * Overload: a SQLite node with 10,000 every-second jobs and a backlog of half a million fires to
 * catch up on keeps answering its probes. Its trigger loop once fired batch after batch without yielding to
 * the event loop (better-sqlite3 answers synchronously), and `/v1/health` went unanswered for more
 * than 80 s. The bound is the lease, not a latency target: the machine is shared.
 */
describe('probes under a storm of fires', async () => {
  const dataDir = tempDir();
  const database = join(dataDir, 'kairos.db');
  const store = new SqliteStore(database);
  await store.migrate();
  const jobs = new JobService(store, { ...systemClock, now: () => Date.now() - BACKLOG_MS });
  for (let i = 0; i < JOBS; i++) {
    await jobs.create({ name: `every-second-${i}`, handler: 'h', trigger: { kind: 'every', every: '1s' } });
  }
  await store.close();

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const node = spawnKairos(['server', '--port', String(port), '--data-dir', dataDir], {
    KAIROS_ADMIN_TOKEN: 'admin-t',
    KAIROS_WORKER_TOKEN: 'worker-t',
    KAIROS_WORKER_LEASE: String(LEASE_MS),
    KAIROS_DATABASE_URL: '',
    KAIROS_LOG_LEVEL: 'warn',
  });
  // Up when it prints its banner: it listens, and its trigger loop has started.
  await waitFor(
    async () => node.output().includes('Kairos node running'),
    120_000,
    `the node\n${node.output()}`,
  );
  const runs = new Database(database, { readonly: true }).prepare('SELECT count(*) AS n FROM runs');
  const runCount = () => (runs.get() as { n: number }).n;

  async function probe(path: string): Promise<{ status: number; ms: number }> {
    const started = performance.now();
    const answer = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(LEASE_MS) }).catch(
      (error: unknown) => {
        throw new Error(`${path} unanswered within the lease (${LEASE_MS} ms) under load: ${error}`);
      },
    );
    await answer.text();
    return { status: answer.status, ms: performance.now() - started };
  }

  it('answers /livez and /readyz while the node fires thousands of runs a second', async () => {
    const before = runCount();
    const latencies: number[] = [];
    for (let i = 0; i < PROBES; i++) {
      const live = await probe('/livez');
      expect(live.status).toBe(200);
      expect((await probe('/readyz')).status).toBe(200);
      latencies.push(live.ms);
    }
    // Loaded while probed: at least a round of fires happened meanwhile.
    expect(runCount() - before).toBeGreaterThanOrEqual(JOBS);
    latencies.sort((a, b) => a - b);
    console.info(
      `/livez under ${JOBS} every-second jobs: p50 ${Math.round(latencies[PROBES / 2]!)} ms, max ${Math.round(latencies.at(-1)!)} ms`,
    );
  });
});
