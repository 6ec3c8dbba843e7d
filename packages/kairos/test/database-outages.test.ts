import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from './cluster-harness.ts';
import { type PrivatePostgres, startPrivatePostgres } from './private-postgres.ts';
import { waitFor } from './processes.ts';

// Issue #13: PostgreSQL restarted twice in a row, each outage longer than the pool's connect timeout
// (5 s), the partition lease (3 s) and the idle-in-transaction timeout, while nodes are killed and
// started again (a supervisor, a rolling restart). A node started while the database was down used to
// exit at once (STORE_UNAVAILABLE during migrate), so that the chaos run's cluster was left with no node
// at all for three minutes. Fires whose instant falls while the database is down may rightly run late
// or become misfires; every fire whose instant is after the database is back (plus a lease, a renewal
// and a margin) must become a run.

const JOBS = 4;
/** Each outage: longer than the connect timeout, the lease and the idle-in-transaction timeout. */
const OUTAGE_MS = 20_000;
/** Partition lease + a renewal (P + P/3 ≈ 4 s) + a margin for a reconnect on a busy machine. */
const RECOVERY_MS = 4_000 + 6_000;
/** How many seconds after the last return every job's fires are checked. */
const CHECKED_S = 10;

describe('PostgreSQL restarted several times in a row (issue #13)', () => {
  let postgres: PrivatePostgres;
  let cluster: Cluster;

  beforeAll(async () => {
    postgres = await startPrivatePostgres();
    cluster = new Cluster(postgres.url);
    await Promise.all([cluster.start('n1'), cluster.start('n2'), cluster.start('n3')]);
    await cluster.settled();
    for (let i = 0; i < JOBS; i++) {
      await cluster.any().client.createJob({
        name: `every-second-${i}`,
        handler: 'echo',
        trigger: { kind: 'every', every: '1s' },
      });
    }
  }, 300_000);

  afterAll(async () => {
    await cluster?.stopAll();
    postgres?.remove();
  }, 120_000);

  /** The fire times that have a run, per job name, read straight from the store. */
  async function firesByJob(): Promise<Map<string, Set<number>>> {
    const db = new pg.Client({ connectionString: postgres.url });
    await db.connect();
    try {
      const { rows } = await db.query<{ name: string; fire_time: string }>(
        'SELECT j.name, r.fire_time FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.fire_time IS NOT NULL',
      );
      const fires = new Map<string, Set<number>>();
      for (const row of rows) {
        const set = fires.get(row.name) ?? new Set<number>();
        set.add(Number(row.fire_time));
        fires.set(row.name, set);
      }
      return fires;
    } finally {
      await db.end();
    }
  }

  /** The first fire (over every job) whose instant is at or after `at`, once there is one. */
  async function firstFireAfter(at: number, timeoutMs: number): Promise<number> {
    return waitFor(
      async () => {
        const all = [...(await firesByJob()).values()].flatMap((set) => [...set]).filter((t) => t >= at);
        return all.length > 0 ? Math.min(...all) : undefined;
      },
      timeoutMs,
      `a fire after ${new Date(at).toISOString()}`,
    );
  }

  /** For each instant, how long after it the first scheduled run was written (for the report). */
  async function firstRunsAfter(instants: number[]): Promise<number[]> {
    const db = new pg.Client({ connectionString: postgres.url });
    await db.connect();
    try {
      const out: number[] = [];
      for (const at of instants) {
        const { rows } = await db.query<{ first: string }>(
          'SELECT min(created_at) AS first FROM runs WHERE fire_time IS NOT NULL AND created_at >= $1',
          [at],
        );
        out.push(Number(rows[0]!.first) - at);
      }
      return out;
    } finally {
      await db.end();
    }
  }

  it('fires every instant after the database is back, with nodes restarted while it was down', async () => {
    // Firing before the first outage.
    await firstFireAfter(Date.now(), 60_000);
    const hold = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    /**
     * One outage: the database stopped for OUTAGE_MS (a fixed time: that is the fault injected, not
     * a wait for an event), and the nodes named killed (kill -9) and started again while it is down,
     * as a supervisor or a rolling restart does. Answers when the database was back.
     */
    const outage = async (restarted: string[]): Promise<number> => {
      await postgres.stopAsync();
      const starts: Array<Promise<unknown>> = [];
      for (const name of restarted) {
        await cluster.signal(name, 'SIGKILL');
        // Kept as a settled value: the start ends only once the database is back.
        starts.push(
          cluster.start(name).then(
            () => null,
            (error: unknown) => error,
          ),
        );
      }
      await hold(OUTAGE_MS);
      await postgres.startAsync();
      const back = Date.now();
      // A node started while the database was down waits for it, and joins once it is back.
      for (const error of await Promise.all(starts)) expect(error).toBeNull();
      return back;
    };
    const returns = [await outage(['n2'])];
    // A few seconds of database between the two outages, as in the chaos run.
    await hold(5_000);
    returns.push(await outage(['n1', 'n3']));
    const back = returns.at(-1)!;
    const from = Math.ceil((back + RECOVERY_MS) / 1000) * 1000;
    const to = from + CHECKED_S * 1000;
    // Every job has a run for every second of [from, to]: waited for, with an honest margin.
    let gaps: string[] = [];
    await waitFor(
      async () => {
        const fires = await firesByJob();
        gaps = [];
        for (let i = 0; i < JOBS; i++) {
          const job = `every-second-${i}`;
          for (let t = from; t <= to; t += 1000)
            if (!fires.get(job)?.has(t)) gaps.push(`${job} @ ${new Date(t).toISOString()}`);
        }
        return gaps.length === 0 || undefined;
      },
      90_000,
      'every fire after the database came back',
    ).catch(() => undefined);
    console.log(
      `first fire after each return of the database: ${(await firstRunsAfter(returns)).join(' ms, ')} ms`,
    );
    expect({ gaps: gaps.slice(0, 5), count: gaps.length }).toEqual({ gaps: [], count: 0 });
    // The three nodes share the partitions again.
    await cluster.settled();
  }, 300_000);
});
