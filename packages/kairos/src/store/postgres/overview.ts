// The counts the console's overview, the queue metrics and `kairos doctor` read, on PostgreSQL.

import {
  type FireLateness,
  latenessFromSample,
  type MinuteCount,
  type OverviewCounts,
  overviewFromRows,
  type QueuedRunCount,
  type QueuedRunCountRow,
  queuedRunCountFromRow,
} from '../access.ts';
import type { PostgresConnection } from './connection.ts';
import * as quotas from './quotas.ts';

/**
 * The overview's counts in one round trip. $1 since, $2 now, $3 namespace (null: all; the namespace
 * is a filter on the rows each index range finds).
 * Each branch is an index range: runs_status (or the runs_claim partial index) for running and
 * queued, runs_finished for ended runs. 300 000 runs, 1 000 ended in the window: 5 ms.
 */
export const OVERVIEW_COUNTS = `
  SELECT 'running' AS kind, count(*) AS n FROM runs WHERE status = 'running' AND ($3::text IS NULL OR namespace = $3)
  UNION ALL SELECT 'queued', count(*) FROM runs WHERE status = 'queued' AND ($3::text IS NULL OR namespace = $3)
  UNION ALL SELECT 'ended:' || status, count(*) FROM runs
    WHERE finished_at >= $1 AND ($3::text IS NULL OR namespace = $3) GROUP BY status
  UNION ALL SELECT 'workers', count(*) FROM workers WHERE status IN ('active', 'draining') AND lease_expires_at > $2
    AND ($3::text IS NULL OR namespace = $3)
  UNION ALL SELECT 'nodes', count(*) FROM nodes WHERE expires_at > $2`;

/**
 * Runs ended since $1 (of namespace $2, null: all), by minute and status: a range scan of
 * runs_finished (2 ms for 1 000 of 300 000 runs).
 */
export const RUNS_PER_MINUTE = `
  SELECT (finished_at / 60000) * 60000 AS minute, status, count(*) AS count
  FROM runs WHERE finished_at >= $1 AND ($2::text IS NULL OR namespace = $2) GROUP BY 1, 2 ORDER BY 1, 2`;

/**
 * Lateness of scheduled runs whose first attempt started in [$1, $2], newest $3: ended first attempts
 * by a backward range scan of attempts_first_start, each joined to its run by primary key; first
 * attempts that succeeded (no attempt row: their run's row) by a backward range of runs_finished,
 * the newest $3 by their end (a run that started in the window ended in it); and first attempts
 * still running (they have no attempt row yet) from their runs, which are few.
 */
export const FIRE_LATENESS = `
  SELECT late FROM (
    (SELECT a.started_at AS started, a.started_at - r.fire_time AS late
      FROM attempts a JOIN runs r ON r.id = a.run_id
      WHERE a.attempt = 1 AND a.started_at >= $1 AND a.started_at <= $2
        AND r.cause = 'schedule' AND r.fire_time IS NOT NULL
      ORDER BY a.started_at DESC LIMIT $3)
    UNION ALL
    (SELECT r.started_at, r.started_at - r.fire_time FROM runs r
      WHERE r.finished_at >= $1 AND r.status = 'succeeded' AND r.attempt = 1
        AND r.started_at >= $1 AND r.started_at <= $2
        AND r.cause = 'schedule' AND r.fire_time IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.run_id = r.id AND a.attempt = 1)
      ORDER BY r.finished_at DESC LIMIT $3)
    UNION ALL
    SELECT started_at, started_at - fire_time FROM runs
    WHERE status = 'running' AND attempt = 1 AND started_at >= $1 AND started_at <= $2
      AND cause = 'schedule' AND fire_time IS NOT NULL) first_starts
  ORDER BY started DESC LIMIT $3`;

/**
 * Queued runs by group, job and handler, the largest counts first. $1 now, $2 limit.
 * The count is an ordered pass over runs_queued_by_job (group, job, handler, available_at), which
 * holds every column it reads; live workers are few and read once. Runs with a request of their
 * own (workflow steps) are counted by request through runs_queued_requests, which holds only them.
 */
export const QUEUED_RUN_COUNTS = `
  WITH queued AS (
    SELECT group_name, job_id, handler, count(*) AS queued,
      min(available_at) FILTER (WHERE available_at <= $1) AS oldest
    FROM runs WHERE status = 'queued'
    GROUP BY group_name, job_id, handler
    ORDER BY count(*) DESC, group_name, job_id, handler LIMIT $2),
  live AS (SELECT namespace, group_name, handlers FROM workers WHERE status = 'active' AND lease_expires_at > $1)
  SELECT j.namespace, q.group_name, j.name AS job_name, q.handler, q.queued, q.oldest,
    j.dispatch->'resources' AS resources,
    (SELECT jsonb_agg(jsonb_build_object('resources', o.resources, 'queued', o.n))
      FROM (SELECT r.resources, count(*) AS n FROM runs r
        WHERE r.status = 'queued' AND r.resources IS NOT NULL AND r.group_name = q.group_name
          AND r.job_id = q.job_id AND r.handler = q.handler
        GROUP BY r.resources) o) AS own_requests,
    EXISTS (SELECT 1 FROM live l WHERE l.namespace = j.namespace AND l.group_name = q.group_name) AS group_served,
    EXISTS (SELECT 1 FROM live l WHERE l.namespace = j.namespace AND l.group_name = q.group_name
      AND l.handlers ? q.handler) AS handler_served
  FROM queued q JOIN jobs j ON j.id = q.job_id
  ORDER BY j.namespace, q.group_name, j.name, q.handler`;

export async function overviewCounts(
  c: PostgresConnection,
  since: number,
  now: number,
  namespace?: string,
): Promise<OverviewCounts> {
  return overviewFromRows(
    await c.query<{ kind: string; n: number }>('overviewCounts', OVERVIEW_COUNTS, [
      since,
      now,
      namespace ?? null,
    ]),
  );
}

export async function countQueuedRuns(
  c: PostgresConnection,
  namespace: string,
  upTo: number,
): Promise<number> {
  const [row] = await c.query<{ n: string }>('countQueuedRuns', quotas.COUNT_QUEUED_RUNS, [namespace, upTo]);
  return Number(row!.n);
}

export async function queuedRunCounts(
  c: PostgresConnection,
  now: number,
  limit: number,
): Promise<QueuedRunCount[]> {
  const rows = await c.query<QueuedRunCountRow>('queuedRunCounts', QUEUED_RUN_COUNTS, [now, limit]);
  return rows.map(queuedRunCountFromRow);
}

export async function runsPerMinute(
  c: PostgresConnection,
  since: number,
  namespace?: string,
): Promise<MinuteCount[]> {
  return c.query<MinuteCount>('runsPerMinute', RUNS_PER_MINUTE, [since, namespace ?? null]);
}

export async function fireLateness(
  c: PostgresConnection,
  since: number,
  now: number,
  limit: number,
): Promise<FireLateness> {
  // The same bounded sample as SQLite, folded by the same helper: percentile_cont over the whole
  // window would interpolate, and the two dialects would answer differently.
  const rows = await c.query<{ late: string | number }>('fireLateness', FIRE_LATENESS, [since, now, limit]);
  return latenessFromSample(
    rows.map((r) => Number(r.late)),
    limit,
  );
}
