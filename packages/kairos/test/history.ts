import pg from 'pg';

/** One run as the history checker reads it from the store. */
export interface RunHistory {
  id: number;
  job: string;
  fireTime: number | null;
  status: string;
  createdAt: number;
  attempts: Array<{
    attempt: number;
    workerId: string;
    status: string;
    startedAt: number;
    finishedAt: number | null;
  }>;
}

export interface HistoryReport {
  /** (job, fire time) pairs with more than one run. */
  duplicates: Array<{ job: string; fireTime: number; runs: number }>;
  /** Nominal fire times with no run. */
  gaps: Array<{ job: string; fireTime: number }>;
  /** Runs still running although their last attempt started before `stuckBefore`. */
  stuck: number[];
  /** Attempts that executed after an earlier attempt of the same run that was not fenced out (lost/timed out). */
  unexplainedReruns: number[];
  /** Largest `createdAt − fireTime` of a scheduled run. */
  maxLatenessMs: number;
}

/**
 * Checks a run history: every nominal fire time in [from, to] of each job has exactly one run,
 * nothing is stuck running, and a run executed twice only after its earlier attempt was fenced
 * out (lost or timed out). `expected(job)` lists the job's nominal fire times in the window.
 */
export function checkHistory(
  runs: RunHistory[],
  window: { from: number; to: number; expected: (job: string) => number[]; stuckBefore: number },
): HistoryReport {
  const byFire = new Map<string, number>();
  let maxLatenessMs = 0;
  for (const run of runs) {
    if (run.fireTime === null) continue;
    const key = `${run.job}@${run.fireTime}`;
    byFire.set(key, (byFire.get(key) ?? 0) + 1);
    maxLatenessMs = Math.max(maxLatenessMs, run.createdAt - run.fireTime);
  }
  const duplicates = [...byFire.entries()]
    .filter(([, n]) => n > 1)
    .map(([key, n]) => {
      const [job, fireTime] = key.split('@');
      return { job: job!, fireTime: Number(fireTime), runs: n };
    });
  const jobs = new Set(runs.map((r) => r.job));
  const gaps: HistoryReport['gaps'] = [];
  for (const job of jobs) {
    for (const fireTime of window.expected(job)) {
      if (fireTime >= window.from && fireTime <= window.to && !byFire.has(`${job}@${fireTime}`))
        gaps.push({ job, fireTime });
    }
  }
  const stuck = runs
    .filter((r) => r.status === 'running' && (r.attempts.at(-1)?.startedAt ?? 0) < window.stuckBefore)
    .map((r) => r.id);
  const unexplainedReruns = runs
    .filter((r) => r.attempts.slice(0, -1).some((a) => a.status === 'running' || a.status === 'succeeded'))
    .map((r) => r.id);
  return { duplicates, gaps, stuck, unexplainedReruns, maxLatenessMs };
}

/** Reads every run with its attempts straight from a Kairos PostgreSQL schema. */
export async function readHistory(connectionString: string, schema: string): Promise<RunHistory[]> {
  const client = new pg.Client({ connectionString, options: `-c search_path="${schema}"` });
  await client.connect();
  try {
    const { rows } = await client.query<{
      id: string;
      job: string;
      fire_time: string | null;
      status: string;
      created_at: string;
      attempts: Array<{
        attempt: number;
        worker_id: string;
        status: string;
        started_at: number;
        finished_at: number | null;
      }>;
    }>(`
      SELECT r.id, j.name AS job, r.fire_time, r.status, r.created_at,
        coalesce((SELECT json_agg(a ORDER BY a.attempt) FROM (
          SELECT attempt, worker_id, status, started_at, finished_at FROM attempts WHERE run_id = r.id
          -- A running attempt has no row until it ends, and one that succeeded none at all (since
          -- 0.2.0): its run describes it.
          UNION ALL SELECT r.attempt, r.worker_id, 'running', r.started_at, NULL WHERE r.status = 'running'
          UNION ALL SELECT r.attempt, r.worker_id, 'succeeded', r.started_at, r.finished_at
            WHERE r.status = 'succeeded' AND r.worker_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM attempts x WHERE x.run_id = r.id AND x.attempt = r.attempt)) a),
          '[]') AS attempts
      FROM runs r JOIN jobs j ON j.id = r.job_id ORDER BY r.id`);
    return rows.map((row) => ({
      id: Number(row.id),
      job: row.job,
      fireTime: row.fire_time === null ? null : Number(row.fire_time),
      status: row.status,
      createdAt: Number(row.created_at),
      attempts: row.attempts.map((a) => ({
        attempt: a.attempt,
        workerId: a.worker_id,
        status: a.status,
        startedAt: Number(a.started_at),
        finishedAt: a.finished_at === null ? null : Number(a.finished_at),
      })),
    }));
  } finally {
    await client.end();
  }
}
