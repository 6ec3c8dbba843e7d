import Database from 'better-sqlite3';
import pg from 'pg';
import type { StoreRun, StoreSnapshot } from './checker.ts';

// Reads what the checker needs straight from the store (never through the API, which a fault
// may still be bending): every run with its ended attempts (a success from its run's row), the ledger of skipped fires, and the
// worker ids with their process names.

const RUNS = `SELECT r.id, j.name AS job, r.fire_time, r.status, r.attempt, r.worker_id, r.started_at,
  r.finished_at, r.created_at, r.result FROM runs r JOIN jobs j ON j.id = r.job_id ORDER BY r.id`;
const ATTEMPTS = `SELECT run_id, attempt, worker_id, status, started_at, finished_at FROM attempts ORDER BY run_id, attempt`;
const SKIPPED = `SELECT j.name AS job, s.reason, s.first_fire, s.last_fire FROM skipped_fires s JOIN jobs j ON j.id = s.job_id`;
const WORKERS = 'SELECT id, name FROM workers';

type Row = Record<string, unknown>;
const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

function snapshot(
  takenAt: number,
  runs: Row[],
  attempts: Row[],
  skipped: Row[],
  workers: Row[],
): StoreSnapshot {
  const byRun = new Map<number, StoreRun['attempts']>();
  for (const a of attempts) {
    const id = Number(a.run_id);
    const list = byRun.get(id) ?? [];
    list.push({
      attempt: Number(a.attempt),
      workerId: String(a.worker_id),
      status: String(a.status),
      startedAt: Number(a.started_at),
      finishedAt: num(a.finished_at),
    });
    byRun.set(id, list);
  }
  // An attempt that succeeded has no row (since 0.2.0): its run's row is it, as the store reads it.
  for (const r of runs) {
    const id = Number(r.id);
    const list = byRun.get(id) ?? [];
    if (r.status !== 'succeeded' || r.worker_id === null || list.some((a) => a.attempt === Number(r.attempt)))
      continue;
    list.push({
      attempt: Number(r.attempt),
      workerId: String(r.worker_id),
      status: 'succeeded',
      startedAt: Number(r.started_at),
      finishedAt: num(r.finished_at),
    });
    byRun.set(id, list);
  }
  return {
    takenAt,
    runs: runs.map((r) => ({
      id: Number(r.id),
      job: String(r.job),
      fireTime: num(r.fire_time),
      status: String(r.status),
      attempt: Number(r.attempt),
      workerId: r.worker_id === null ? null : String(r.worker_id),
      startedAt: num(r.started_at),
      createdAt: Number(r.created_at),
      result: typeof r.result === 'string' ? JSON.parse(r.result) : (r.result ?? null),
      attempts: byRun.get(Number(r.id)) ?? [],
    })),
    skipped: skipped.map((s) => ({
      job: String(s.job),
      reason: String(s.reason),
      firstFire: Number(s.first_fire),
      lastFire: Number(s.last_fire),
    })),
    workerNames: Object.fromEntries(workers.map((w) => [String(w.id), String(w.name)])),
  };
}

/** A snapshot of a Kairos PostgreSQL schema, read in one repeatable-read transaction. */
export async function readPostgresSnapshot(url: string, schema: string): Promise<StoreSnapshot> {
  const client = new pg.Client({ connectionString: url, options: `-c search_path="${schema}"` });
  await client.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    const now = await client.query<{ now: string }>(
      'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now',
    );
    const [runs, attempts, skipped, workers] = [
      await client.query(RUNS),
      await client.query(ATTEMPTS),
      await client.query(SKIPPED),
      await client.query(WORKERS),
    ];
    await client.query('COMMIT');
    return snapshot(Number(now.rows[0]!.now), runs.rows, attempts.rows, skipped.rows, workers.rows);
  } finally {
    await client.end();
  }
}

/** A snapshot of a Kairos SQLite file (read-only; the node may still be writing in WAL mode). */
export function readSqliteSnapshot(file: string): StoreSnapshot {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.transaction(() =>
      snapshot(
        Date.now(),
        db.prepare(RUNS).all() as Row[],
        db.prepare(ATTEMPTS).all() as Row[],
        db.prepare(SKIPPED).all() as Row[],
        db.prepare(WORKERS).all() as Row[],
      ),
    )();
  } finally {
    db.close();
  }
}
