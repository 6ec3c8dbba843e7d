// The console's and the metrics' counts on SQLite: overview, queued runs, runs per minute, fire
// lateness.

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
import type { SqliteConnection } from './connection.ts';
import * as quotas from './quotas.ts';

/**
 * Lateness (first attempt's start − fire time) of scheduled runs whose first attempt started in
 * [@since, @now], the newest @limit: ended first attempts through attempts_first_start; first
 * attempts that succeeded (no attempt row: their run's row) through a backward range of
 * runs_finished, the newest @limit of them by their end (a run that started in the window ended in
 * it); and first attempts still running from their runs (runs_worker holds every running run; they
 * are few).
 */
const FIRST_STARTS = `SELECT late FROM (
    SELECT * FROM (
      SELECT a.started_at AS started, a.started_at - r.fire_time AS late FROM attempts a INDEXED BY attempts_first_start
        JOIN runs r ON r.id = a.run_id
      WHERE a.attempt = 1 AND a.started_at >= @since AND a.started_at <= @now
        AND r.cause = 'schedule' AND r.fire_time IS NOT NULL
      ORDER BY a.started_at DESC LIMIT @limit)
    UNION ALL
    SELECT * FROM (
      SELECT r.started_at, r.started_at - r.fire_time FROM runs r INDEXED BY runs_finished
      WHERE r.finished_at >= @since AND r.status = 'succeeded' AND r.attempt = 1
        AND r.started_at >= @since AND r.started_at <= @now
        AND r.cause = 'schedule' AND r.fire_time IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.run_id = r.id AND a.attempt = 1)
      ORDER BY r.finished_at DESC LIMIT @limit)
    UNION ALL
    SELECT started_at, started_at - fire_time FROM runs INDEXED BY runs_worker
    WHERE status = 'running' AND attempt = 1 AND started_at >= @since AND started_at <= @now
      AND cause = 'schedule' AND fire_time IS NOT NULL)
  ORDER BY started DESC LIMIT @limit`;

export function overviewCounts(
  c: SqliteConnection,
  since: number,
  now: number,
  namespace?: string,
): OverviewCounts {
  // Left alone, SQLite would group every ended run by status; the range on runs_finished reads
  // only the last hour's runs. The namespace filters the rows each range finds.
  return c.run('overviewCounts', () =>
    overviewFromRows(
      c
        .sql(
          `SELECT 'running' AS kind, count(*) AS n FROM runs
             WHERE status = 'running' AND (@namespace IS NULL OR namespace = @namespace)
           UNION ALL SELECT 'queued', count(*) FROM runs
             WHERE status = 'queued' AND (@namespace IS NULL OR namespace = @namespace)
           UNION ALL SELECT 'ended:' || status, count(*) FROM runs INDEXED BY runs_finished
             WHERE finished_at >= @since AND (@namespace IS NULL OR namespace = @namespace) GROUP BY status
           UNION ALL SELECT 'workers', count(*) FROM workers
             WHERE status IN ('active', 'draining') AND lease_expires_at > @now
               AND (@namespace IS NULL OR namespace = @namespace)
           UNION ALL SELECT 'nodes', count(*) FROM nodes WHERE expires_at > @now`,
        )
        .all({ since, now, namespace: namespace ?? null }) as Array<{ kind: string; n: number }>,
    ),
  );
}

export function countQueuedRuns(c: SqliteConnection, namespace: string, upTo: number): number {
  return c.run('countQueuedRuns', () => quotas.countQueuedRuns((text) => c.sql(text), namespace, upTo));
}

export function queuedRunCounts(c: SqliteConnection, now: number, limit: number): QueuedRunCount[] {
  // The count is an ordered pass over runs_queued_by_job (group, job, handler, available_at), which
  // holds every column it reads; live workers are few and read once. Runs with a request of their
  // own (workflow steps) are counted by request from runs_queued_requests, which holds only them.
  return c.run('queuedRunCounts', () =>
    (
      c
        .sql(
          `WITH queued AS (
             SELECT group_name, job_id, handler, count(*) AS queued,
               min(CASE WHEN available_at <= @now THEN available_at END) AS oldest
             FROM runs INDEXED BY runs_queued_by_job WHERE status = 'queued'
             GROUP BY group_name, job_id, handler
             ORDER BY count(*) DESC, group_name, job_id, handler LIMIT @limit),
           live AS (SELECT namespace, group_name, handlers FROM workers
             WHERE status = 'active' AND lease_expires_at > @now)
           SELECT j.namespace, q.group_name, j.name AS job_name, q.handler, q.queued, q.oldest,
             j.dispatch -> '$.resources' AS resources,
             (SELECT json_group_array(json_object('resources', json(o.resources), 'queued', o.n))
               FROM (SELECT r.resources, count(*) AS n FROM runs r INDEXED BY runs_queued_requests
                 WHERE r.status = 'queued' AND r.resources IS NOT NULL AND r.group_name = q.group_name
                   AND r.job_id = q.job_id AND r.handler = q.handler
                 GROUP BY r.resources) o) AS own_requests,
             EXISTS (SELECT 1 FROM live l WHERE l.namespace = j.namespace AND l.group_name = q.group_name)
               AS group_served,
             EXISTS (SELECT 1 FROM live l, json_each(l.handlers) h
               WHERE l.namespace = j.namespace AND l.group_name = q.group_name AND h.value = q.handler)
               AS handler_served
           FROM queued q JOIN jobs j ON j.id = q.job_id
           ORDER BY j.namespace, q.group_name, j.name, q.handler`,
        )
        .all({ now, limit }) as QueuedRunCountRow[]
    ).map(queuedRunCountFromRow),
  );
}

export function runsPerMinute(c: SqliteConnection, since: number, namespace?: string): MinuteCount[] {
  return c.run(
    'runsPerMinute',
    () =>
      c
        .sql(
          `SELECT (finished_at / 60000) * 60000 AS minute, status, count(*) AS count
         FROM runs WHERE finished_at >= ? AND (? IS NULL OR namespace = ?) GROUP BY 1, 2 ORDER BY 1, 2`,
        )
        .all(since, namespace ?? null, namespace ?? null) as MinuteCount[],
  );
}

export function fireLateness(c: SqliteConnection, since: number, now: number, limit: number): FireLateness {
  return c.run('fireLateness', () => {
    const rows = c.sql(FIRST_STARTS).all({ since, now, limit }) as Array<{ late: number }>;
    return latenessFromSample(
      rows.map((r) => r.late),
      limit,
    );
  });
}
