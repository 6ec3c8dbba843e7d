import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../src/version.ts';
import { Cluster, TOKENS } from './cluster-harness.ts';
import { checkHistory, type RunHistory, readHistory } from './history.ts';
import {
  checkOutPreviousRelease,
  PREVIOUS_RELEASE,
  type PreviousReleaseCheckout,
} from './previous-release.ts';
import { type Child, freePort, spawnTs, waitFor } from './processes.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

// A rolling upgrade from the previous release to this code, as docs/operations.md prescribes it:
// three nodes of the previous release (its git tag, checked out and installed in a temporary
// worktree, run from its TypeScript sources) with its workers and every-second jobs on one
// PostgreSQL schema; then each node replaced by a node of this code, one at a time, then each
// worker. The verdict comes from the run history: no fire doubled, none missed, every attempt ended.
// Other changes to the store or the worker protocol that break a mixed cluster fail here, with the
// fire, run or attempt at fault, the upgrade step it happened in and the log tails of the processes.

const DATABASE = testDatabaseUrl();
const OLD = PREVIOUS_RELEASE.version;
const WORKER = fileURLToPath(new URL('./fixtures/upgrade-worker.ts', import.meta.url));
const WORKER_IN_TREE = 'packages/kairos/test/fixtures/upgrade-worker.ts';
const ECHO_JOBS = 20;
const SLEEP_JOBS = 4;
/** A sleep run lasts longer than a fire's second, so that attempts are in flight at every swap. */
const SLEEP_MS = 2000;
/** Two busy cores: how long one step of the upgrade may take to show progress or to settle. */
const STEP_TIMEOUT_MS = 90_000;

afterAll(dropTestSchemas);

interface Started {
  label: string;
  child: Child;
}

describe(`a rolling upgrade from ${OLD} to ${VERSION} on PostgreSQL`, () => {
  const schema = testSchema('kairos_upgrade');
  const cluster = new Cluster(`${DATABASE}?schema=${schema}`);
  const started: Started[] = [];
  const workers = new Map<string, Child>();
  /** Steps of the upgrade with their times, to say in which step a fire went wrong. */
  const timeline: Array<{ at: number; step: string }> = [];
  let previous: PreviousReleaseCheckout | undefined;

  const step = (what: string) => timeline.push({ at: Date.now(), step: what });
  const stepAt = (at: number) => timeline.filter((t) => t.at <= at).at(-1)?.step ?? 'before the upgrade';
  const iso = (ms: number) => new Date(ms).toISOString();
  const tails = () =>
    started
      .map(({ label, child }) => {
        // Without the banner a node prints when it is up: its log lines are what tell.
        const output = child.output().replace(/\nKairos node running[\s\S]*?Press Ctrl\+C to stop\.\n/, '\n');
        const lines = output.trimEnd().split('\n').slice(-15);
        return `--- ${label}, last lines:\n${lines.join('\n')}`;
      })
      .join('\n');
  /** A worker id as the worker process that registered it ("worker <id> ready"). */
  const workerLabel = (id: string) =>
    started.find(({ child }) => child.output().includes(`worker ${id} ready`))?.label ?? `worker ${id}`;
  const failure = (what: string, problems: string[]) =>
    new Error(
      `${what}:\n  ${problems.slice(0, 25).join('\n  ')}${problems.length > 25 ? `\n  … and ${problems.length - 25} more` : ''}\n` +
        `upgrade steps:\n  ${timeline.map((t) => `${iso(t.at)} ${t.step}`).join('\n  ')}\n${tails()}`,
    );

  const query = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> => {
    const client = new pg.Client({ connectionString: DATABASE, options: `-c search_path="${schema}"` });
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end();
    }
  };

  const ports = new Map<string, number>();
  const startNode = async (name: string, release: 'old' | 'new') => {
    const node = await cluster
      .start(name, { port: ports.get(name), root: release === 'old' ? previous!.root : undefined })
      .catch((error: Error) => {
        throw failure(`node ${name} (${release === 'old' ? OLD : VERSION}) did not start`, [error.message]);
      });
    started.push({
      label: `node ${name} (${release === 'old' ? OLD : VERSION}, id ${node.id})`,
      child: node.child,
    });
    step(`node ${name} started on ${release === 'old' ? OLD : VERSION}`);
    return node;
  };
  const stopNode = async (name: string) => {
    const node = cluster.nodes.get(name)!;
    step(`node ${name} stopping (SIGTERM)`);
    await cluster.signal(name, 'SIGTERM');
    const code = await node.child.exited;
    if (code !== 0) throw failure(`node ${name} did not stop cleanly`, [`exit code ${code}`]);
  };

  const startWorker = async (name: string, release: 'old' | 'new') => {
    const env = {
      ...TOKENS,
      KAIROS_URLS: [...ports.values()].map((port) => `http://127.0.0.1:${port}`).join(','),
      WORKER_NAME: name,
    };
    const child =
      release === 'old'
        ? spawnTs(join(previous!.root, WORKER_IN_TREE), [], env, previous!.root)
        : spawnTs(WORKER, [], env);
    workers.set(name, child);
    started.push({ label: `worker ${name} (${release === 'old' ? OLD : VERSION})`, child });
    try {
      await waitFor(async () => child.output().includes(' ready') || undefined, STEP_TIMEOUT_MS, 'ready');
    } catch {
      throw failure(`worker ${name} (${release === 'old' ? OLD : VERSION}) did not register`, [
        'its log is the last of the tails below',
      ]);
    }
    step(`worker ${name} started on ${release === 'old' ? OLD : VERSION}`);
  };
  const stopWorker = async (name: string) => {
    const child = workers.get(name)!;
    step(`worker ${name} stopping (SIGTERM)`);
    child.process.kill('SIGTERM');
    const code = await child.exited;
    workers.delete(name);
    if (code !== 0) throw failure(`worker ${name} did not stop cleanly`, [`exit code ${code}`]);
  };

  /** Waits until every job has a fire after now that ran to success: the cluster as it is now works. */
  const progress = async (what: string) => {
    const since = Date.now();
    const jobs = ECHO_JOBS + SLEEP_JOBS;
    let behind: string[] = [];
    try {
      await waitFor(
        async () => {
          const rows = await query<{ name: string }>(
            `SELECT j.name FROM jobs j WHERE NOT EXISTS (
               SELECT 1 FROM runs r WHERE r.job_id = j.id AND r.fire_time > $1 AND r.status = 'succeeded')`,
            [since],
          );
          behind = rows.map((r) => r.name);
          return behind.length === 0 || undefined;
        },
        STEP_TIMEOUT_MS,
        `every job to run once ${what}`,
      );
    } catch (error) {
      throw failure(`${(error as Error).message}: ${behind.length} of ${jobs} jobs had no successful run`, [
        behind.slice(0, 10).join(', '),
      ]);
    }
  };

  beforeAll(async () => {
    previous = await checkOutPreviousRelease();
    copyFileSync(WORKER, join(previous.root, WORKER_IN_TREE));
    for (const name of ['n1', 'n2', 'n3']) ports.set(name, await freePort());
  }, 300_000);

  afterAll(async () => {
    for (const child of workers.values()) child.process.kill('SIGKILL');
    await cluster.stopAll();
    await previous?.remove();
  }, 60_000);

  it('node by node, then worker by worker: no fire doubled, none missed, every attempt ended', async () => {
    // The cluster of the previous release, with its workers and jobs.
    await startNode('n1', 'old');
    await Promise.all([startNode('n2', 'old'), startNode('n3', 'old')]);
    await cluster.settled(16, STEP_TIMEOUT_MS);
    const client = cluster.any().client;
    for (let i = 0; i < ECHO_JOBS; i++)
      await client.createJob({ name: `echo-${i}`, handler: 'echo', trigger: { kind: 'every', every: '1s' } });
    for (let i = 0; i < SLEEP_JOBS; i++)
      await client.createJob({
        name: `sleep-${i}`,
        handler: 'sleep',
        params: { ms: SLEEP_MS },
        trigger: { kind: 'every', every: '1s' },
      });
    const jobsAt = Date.now();
    step('jobs created');
    await startWorker('w1', 'old');
    await startWorker('w2', 'old');
    await progress(`on ${OLD}`);
    const versionsSeen = new Set((await cluster.clusterNodes()).map((n) => n.version));

    // Node by node.
    for (const name of ['n1', 'n2', 'n3']) {
      await stopNode(name);
      await startNode(name, 'new');
      await cluster.settled(16, STEP_TIMEOUT_MS);
      for (const n of await cluster.clusterNodes()) versionsSeen.add(n.version);
      await progress(`with node ${name} on ${VERSION}`);
    }
    expect((await cluster.clusterNodes()).map((n) => n.version)).toEqual([VERSION, VERSION, VERSION]);
    expect(await query('SELECT schema_version, min_code_version, migrated_by FROM schema_meta')).toEqual([
      { schema_version: expect.any(Number), min_code_version: OLD, migrated_by: VERSION },
    ]);
    // Worker by worker.
    for (const name of ['w1', 'w2']) {
      await stopWorker(name);
      await startWorker(name, 'new');
      await progress(`with worker ${name} on ${VERSION}`);
    }
    const to = Math.floor(Date.now() / 1000) * 1000 - 1000;
    step(`fires checked up to ${iso(to)}`);

    // Every attempt can end: each run of a fire up to `to` leaves queued and running.
    let open: Array<{
      id: string;
      job: string;
      fire_time: string;
      status: string;
      attempt: number;
      worker_id: string | null;
    }> = [];
    try {
      await waitFor(
        async () => {
          open = await query(
            `SELECT r.id, j.name AS job, r.fire_time, r.status, r.attempt, r.worker_id FROM runs r
             JOIN jobs j ON j.id = r.job_id WHERE r.fire_time <= $1 AND r.status IN ('queued', 'running')
             ORDER BY r.id`,
            [to],
          );
          return open.length === 0 || undefined;
        },
        STEP_TIMEOUT_MS,
        'every run to end',
      );
    } catch {
      throw failure(
        `${open.length} runs could not end`,
        open.map(
          (r) =>
            `run ${r.id} (${r.job} @ ${iso(Number(r.fire_time))}, fired during "${stepAt(Number(r.fire_time))}"): ` +
            `${r.status}, attempt ${r.attempt}${r.worker_id ? ` on ${workerLabel(r.worker_id)}` : ''}`,
        ),
      );
    }

    // The history: one run per fire, each ended once.
    const from = Math.ceil(jobsAt / 1000) * 1000 + 1000;
    const fires = Array.from({ length: (to - from) / 1000 + 1 }, (_, i) => from + i * 1000);
    const runs = (await readHistory(DATABASE, schema)).filter(
      (r) => r.fireTime !== null && r.fireTime >= from && r.fireTime <= to,
    );
    const report = checkHistory(runs, {
      from,
      to,
      expected: () => fires,
      stuckBefore: Number.POSITIVE_INFINITY,
    });
    const describeRun = (r: RunHistory) =>
      `run ${r.id} (${r.status}; attempts ${
        r.attempts.map((a) => `#${a.attempt} ${a.status} on ${workerLabel(a.workerId)}`).join(', ') || 'none'
      })`;
    const problems: string[] = [];
    for (const d of report.duplicates) {
      const doubled = runs.filter((r) => r.job === d.job && r.fireTime === d.fireTime);
      problems.push(
        `fire doubled: ${d.job} @ ${iso(d.fireTime)} (during "${stepAt(d.fireTime)}") has ${d.runs} runs: ${doubled.map(describeRun).join('; ')}`,
      );
    }
    const skipped = await query<{ job: string; reason: string; first_fire: string; last_fire: string }>(
      'SELECT j.name AS job, s.reason, s.first_fire, s.last_fire FROM skipped_fires s JOIN jobs j ON j.id = s.job_id',
    );
    for (const g of report.gaps) {
      const why = skipped.find(
        (s) => s.job === g.job && Number(s.first_fire) <= g.fireTime && g.fireTime <= Number(s.last_fire),
      );
      problems.push(
        `fire missed: ${g.job} @ ${iso(g.fireTime)} (during "${stepAt(g.fireTime)}") has no run` +
          (why ? `; recorded as skipped: ${why.reason}` : ''),
      );
    }
    for (const r of runs) {
      const last = r.attempts.at(-1);
      const unended = r.attempts.filter((a) => a.finishedAt === null);
      if (r.status !== 'succeeded' || last?.status !== 'succeeded' || unended.length > 0)
        problems.push(
          `attempt did not end well: ${r.job} @ ${iso(r.fireTime!)} (during "${stepAt(r.fireTime!)}"): ${describeRun(r)}`,
        );
    }
    for (const id of report.unexplainedReruns)
      problems.push(`run ${id} executed again without its earlier attempt being fenced out`);
    // A node that failed a request or a loop logs it at level error (50) or fatal (60); a worker
    // whose reports or calls the nodes refused, at level error.
    for (const { label, child } of started)
      for (const line of child.output().split('\n'))
        if (/"level":(50|60|"error"|"fatal")/.test(line))
          problems.push(`${label} logged: ${line.slice(0, 400)}`);
    if (problems.length > 0) throw failure('the upgrade broke the history', problems);

    const attempts = runs.reduce((n, r) => n + r.attempts.length, 0);
    console.log(
      `rolling upgrade ${OLD} → ${VERSION}: 3 nodes and 2 workers replaced one at a time ` +
        `(versions seen together: ${[...versionsSeen].sort().join(', ')}); previous release installed in ` +
        `${(previous!.installMs / 1000).toFixed(1)} s; fires checked: ${runs.length} ` +
        `(${ECHO_JOBS + SLEEP_JOBS} jobs × ${fires.length} s); doubled: ${report.duplicates.length}; ` +
        `missed: ${report.gaps.length}; attempts: ${attempts}, every one ended`,
    );
    expect(versionsSeen).toEqual(new Set([OLD, VERSION]));
    expect(runs).toHaveLength((ECHO_JOBS + SLEEP_JOBS) * fires.length);
  }, 600_000);
});
