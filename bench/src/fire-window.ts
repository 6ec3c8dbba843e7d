// Every-second jobs written by the harness into the store, and their fires read back from the store
// (bench:overload, bench:scale-out), so that the measurement never asks a node for anything.
import { compileJob, firstFire, openStore, type Store } from '@kairos/server';
import Database from 'better-sqlite3';
import pg from 'pg';
import { sleep } from './util.ts';

/** A window's fires are read this long after it ends. */
export const READ_AFTER_MS = 2000;

/** The p-th percentile, nearest rank, of ascending `sorted`; NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Reads the store directly (SQLite: a read-only connection, which never waits for the node's writes). */
export interface StoreReader {
  all(sql: string, params: number[]): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

export function sqliteReader(path: string): StoreReader {
  const db = new Database(path, { readonly: true });
  return {
    all: async (sql, params) =>
      db.prepare(sql.replace(/\$\d+/g, '?')).all(...params) as Array<Record<string, unknown>>,
    close: async () => {
      db.close();
    },
  };
}

export async function postgresReader(url: string): Promise<StoreReader> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', (error) => console.error(`bench reader: ${error.message}`));
  await client.connect();
  return {
    all: async (sql, params) => (await client.query(sql, params)).rows,
    close: () => client.end(),
  };
}

/** What the store says of the bulk jobs' fires in one window. */
export interface FireWindow {
  firesPerSecond: number;
  lateness: { p50Ms: number; p99Ms: number; maxMs: number };
  shedPerSecond: Record<string, number>;
}

/**
 * What the store says of the bulk jobs' fires due in [from, to), cut to whole seconds (every fire
 * is on a whole second), read 2 s after the window: a fire not made by then counts as missing.
 * Lateness is created_at − fire_time; a fire made ahead counts 0.
 */
export async function fireWindow(
  reader: StoreReader,
  windowFrom: number,
  windowTo: number,
): Promise<FireWindow> {
  const from = Math.ceil(windowFrom / 1000) * 1000;
  const to = Math.max(from + 1000, Math.floor(windowTo / 1000) * 1000);
  await sleep(Math.max(0, to + READ_AFTER_MS - Date.now()));
  const lateness = (
    await reader.all(
      `SELECT created_at - fire_time AS late FROM runs
       WHERE fire_time >= $1 AND fire_time < $2 AND cause = 'schedule' AND group_name = 'bulk'`,
      [from, to],
    )
  )
    .map((row) => Math.max(0, Number(row.late)))
    .sort((a, b) => a - b);
  const shed = Object.fromEntries(
    (
      await reader.all(
        `SELECT reason, sum(coalesce(count, 1)) AS n FROM skipped_fires
         WHERE recorded_at >= $1 AND recorded_at < $2 GROUP BY reason`,
        [from, to],
      )
    ).map((row) => [String(row.reason), Number(row.n)]),
  ) as Record<string, number>;
  const seconds = (to - from) / 1000;
  return {
    firesPerSecond: Math.round(lateness.length / seconds),
    lateness: {
      p50Ms: percentile(lateness, 50),
      p99Ms: percentile(lateness, 99),
      maxMs: lateness.at(-1) ?? Number.NaN,
    },
    shedPerSecond: Object.fromEntries(Object.entries(shed).map(([k, v]) => [k, Math.round(v / seconds)])),
  };
}

/** Whether a step of `jobs` every-second jobs kept up: ≥ 95 % of them fire each second, p99
 * lateness ≤ 1 s, nothing shed. */
export function isSustained(jobs: number, window: FireWindow): boolean {
  const shedding = Object.values(window.shedPerSecond).some((n) => n > 0);
  return window.firesPerSecond >= 0.95 * jobs && window.lateness.p99Ms <= 1000 && !shedding;
}

/**
 * The every-second jobs `bulk-0…` (group `bulk`, no worker: their runs stay queued), written into
 * the store as another node would: through the API a node created ~55 jobs/s on a busy 2-core
 * machine, and a ramp to tens of thousands of jobs would take minutes. `lanes` writes go at once.
 */
export class BulkJobs {
  private readonly writer: Store;
  created = 0;

  constructor(
    private readonly databaseUrl: string,
    private readonly lanes = 1,
  ) {
    this.writer = openStore(databaseUrl);
  }

  private static job(i: number) {
    return compileJob({
      name: `bulk-${i}`,
      handler: 'h',
      group: 'bulk',
      trigger: { kind: 'every', every: '1s' },
    });
  }

  /** Calls `task(from … to−1)`, `lanes` at a time. */
  private async each(from: number, to: number, task: (i: number) => Promise<unknown>): Promise<void> {
    let next = from;
    const lane = async () => {
      while (next < to) await task(next++);
    };
    await Promise.all(Array.from({ length: this.lanes }, lane));
  }

  /** Creates jobs up to `target` in all. */
  async grow(target: number): Promise<void> {
    await this.each(this.created, target, async (i) => {
      const job = BulkJobs.job(i);
      await this.writer.createJob(job, firstFire(job.trigger, Date.now()), Date.now());
    });
    this.created = Math.max(this.created, target);
  }

  /** Pauses the jobs from `from` on, in one statement: what an operator's bulk pause writes (the
   * `paused` flag and a new version). One store write per job queued behind the overloaded node's
   * writes (SQLite: 14,000 of them did not finish in 5 minutes). Not deleted: a delete takes each
   * job's runs with it (every run of a bulk job stays queued), a write that grows with the run's length. */
  async pause(from: number): Promise<void> {
    const update = `UPDATE jobs SET paused = $1, version = version + 1, updated_at = $2
      WHERE group_name = 'bulk' AND id >= (SELECT id FROM jobs WHERE name = $3)`;
    const name = `bulk-${from}`;
    if (this.databaseUrl.startsWith('sqlite:')) {
      const db = new Database(this.databaseUrl.slice('sqlite:'.length));
      db.pragma('busy_timeout = 60000');
      db.prepare(update.replace(/\$\d+/g, '?')).run(1, Date.now(), name);
      db.close();
      return;
    }
    const client = new pg.Client({ connectionString: this.databaseUrl });
    await client.connect();
    try {
      await client.query(update, [true, Date.now(), name]);
    } finally {
      await client.end();
    }
  }

  close(): Promise<void> {
    return this.writer.close();
  }
}
