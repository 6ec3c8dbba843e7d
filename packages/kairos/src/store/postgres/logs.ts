// Run logs and progress on PostgreSQL (workers at scale): the lines and progress a worker sends,
// kept only for attempts it ran, capped per run, and their retention.

import {
  groupByRun,
  type LogRow,
  logFromRow,
  type ProgressRow,
  planLogAppend,
  progressFromRow,
} from '../log-rows.ts';
import type { RunLogBatch, RunLogRecord, RunProgressRecord } from '../store.ts';
import type { PostgresConnection } from './connection.ts';

/**
 * Which of the given attempts ($1 [{run_id, attempt}]) worker $2 ran: its running attempts and the
 * one that succeeded (their runs' rows) and its other ended ones (their attempt rows).
 */
export const OWNED_ATTEMPTS = `
  WITH x AS (SELECT DISTINCT * FROM jsonb_to_recordset($1::jsonb) AS x(run_id bigint, attempt int))
  SELECT r.id AS run_id, r.attempt FROM runs r JOIN x ON r.id = x.run_id AND r.attempt = x.attempt
  WHERE r.worker_id = $2 AND r.status IN ('running', 'succeeded')
  UNION ALL
  SELECT a.run_id, a.attempt FROM attempts a JOIN x ON a.run_id = x.run_id AND a.attempt = x.attempt
  WHERE a.worker_id = $2`;

/** Of the attempts $1 ([{run_id, attempt}]), those worker $2 holds now: the run's current one, running. */
export const HELD_ATTEMPTS = `
  WITH x AS (SELECT DISTINCT * FROM jsonb_to_recordset($1::jsonb) AS x(run_id bigint, attempt int))
  SELECT r.id AS run_id, r.attempt FROM runs r JOIN x ON r.id = x.run_id AND r.attempt = x.attempt
  WHERE r.worker_id = $2 AND r.status = 'running'`;

/** Create-or-lock the log state rows of runs $1 (sorted ids), answering lines stored and dropped. */
export const LOCK_LOG_STATE = `
  INSERT INTO run_log_state (run_id, lines, dropped) SELECT id, 0, 0 FROM unnest($1::bigint[]) AS id
  ON CONFLICT (run_id) DO UPDATE SET lines = run_log_state.lines
  RETURNING run_id, lines, dropped`;

/** Insert log lines. $1 [{run_id, seq, attempt, time, level, message, fields}], $2 now. */
export const INSERT_LOGS = `
  INSERT INTO run_logs (run_id, seq, attempt, time, stored_at, level, message, fields)
  SELECT x.run_id, x.seq, x.attempt, x.time, $2, x.level, x.message, x.fields
  FROM jsonb_to_recordset($1::jsonb)
    AS x(run_id bigint, seq int, attempt int, time bigint, level text, message text, fields jsonb)`;

/** Save log states. $1 [{run_id, lines, dropped}]. */
export const SAVE_LOG_STATE = `
  UPDATE run_log_state s SET lines = x.lines, dropped = x.dropped
  FROM jsonb_to_recordset($1::jsonb) AS x(run_id bigint, lines int, dropped int) WHERE s.run_id = x.run_id`;

/** Upsert progress (one entry per run), never going back to an older attempt's. $1 [{run_id, attempt, value, message}], $2 now. */
export const SAVE_PROGRESS = `
  INSERT INTO run_progress (run_id, attempt, value, message, updated_at)
  SELECT x.run_id, x.attempt, x.value, x.message, $2
  FROM jsonb_to_recordset($1::jsonb) AS x(run_id bigint, attempt int, value float8, message text)
  ON CONFLICT (run_id) DO UPDATE SET attempt = excluded.attempt, value = excluded.value, message = excluded.message,
    updated_at = excluded.updated_at
  WHERE excluded.attempt >= run_progress.attempt`;

/** Delete up to $2 log lines stored before $1 (retention). */
export const PRUNE_LOGS = `
  DELETE FROM run_logs WHERE ctid IN (SELECT ctid FROM run_logs WHERE stored_at < $1 LIMIT $2)`;

export async function appendRunLogs(
  c: PostgresConnection,
  workerId: string,
  batch: RunLogBatch,
  maxLines: number,
  now: number,
): Promise<number> {
  const refs = new Map<string, { run_id: number; attempt: number }>();
  for (const r of [...batch.logs, ...batch.progress])
    refs.set(`${r.runId}:${r.attempt}`, { run_id: r.runId, attempt: r.attempt });
  if (refs.size === 0) return 0;
  const { count, touched } = await c.transaction('appendRunLogs', async (client) => {
    const owned = new Set(
      (
        await client.query<{ run_id: number; attempt: number }>(OWNED_ATTEMPTS, [
          JSON.stringify([...refs.values()]),
          workerId,
        ])
      ).rows.map((r) => `${r.run_id}:${r.attempt}`),
    );
    const mine = (r: { runId: number; attempt: number }) => owned.has(`${r.runId}:${r.attempt}`);
    const byRun = groupByRun(batch.logs.filter(mine));
    const touched = new Set<number>(byRun.keys());
    let count = 0;
    if (byRun.size > 0) {
      const runIds = [...byRun.keys()].sort((a, b) => a - b);
      const states = new Map(
        (
          await client.query<{ run_id: number; lines: number; dropped: number }>(LOCK_LOG_STATE, [runIds])
        ).rows.map((r) => [r.run_id, r]),
      );
      const rows: unknown[] = [];
      const saved: unknown[] = [];
      for (const [runId, lines] of byRun) {
        const before = states.get(runId)!;
        const plan = planLogAppend(before, lines.length, maxLines);
        lines.slice(0, plan.keep).forEach((line, i) => {
          rows.push({
            run_id: runId,
            seq: before.lines + i + 1,
            attempt: line.attempt,
            time: line.time,
            level: line.level,
            message: line.message,
            fields: line.fields,
          });
        });
        if (plan.marker) {
          const last = lines[lines.length - 1]!;
          rows.push({
            run_id: runId,
            seq: plan.lines,
            attempt: last.attempt,
            time: last.time,
            level: 'warn',
            message: plan.marker,
            fields: null,
          });
        }
        saved.push({ run_id: runId, lines: plan.lines, dropped: plan.dropped });
        count += plan.keep;
      }
      if (rows.length > 0) await client.query(INSERT_LOGS, [JSON.stringify(rows), now]);
      await client.query(SAVE_LOG_STATE, [JSON.stringify(saved)]);
    }
    // Progress is the run's current state: only from the attempt that holds the run now.
    const refsOf = (entries: readonly { runId: number; attempt: number }[]) =>
      JSON.stringify(entries.map((p) => ({ run_id: p.runId, attempt: p.attempt })));
    const held =
      batch.progress.length === 0
        ? new Set<string>()
        : new Set(
            (
              await client.query<{ run_id: number; attempt: number }>(HELD_ATTEMPTS, [
                refsOf(batch.progress),
                workerId,
              ])
            ).rows.map((r) => `${r.run_id}:${r.attempt}`),
          );
    const progress = batch.progress.filter((p) => held.has(`${p.runId}:${p.attempt}`));
    if (progress.length > 0) {
      await client.query(SAVE_PROGRESS, [
        // The last entry per run wins: one row per run in one INSERT.
        JSON.stringify([
          ...new Map(
            progress.map((p) => [
              p.runId,
              { run_id: p.runId, attempt: p.attempt, value: p.value, message: p.message },
            ]),
          ).values(),
        ]),
        now,
      ]);
      for (const p of progress) touched.add(p.runId);
    }
    return { count, touched };
  });
  await c.notify([...touched].map((runId) => ({ type: 'logs', runId })));
  return count;
}

export async function runLogs(
  c: PostgresConnection,
  runId: number,
  after: number,
  limit: number,
): Promise<RunLogRecord[]> {
  const rows = await c.query<LogRow>(
    'runLogs',
    'SELECT seq, attempt, time, level, message, fields FROM run_logs WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
    [runId, after, limit],
  );
  return rows.map(logFromRow);
}

export async function runProgress(c: PostgresConnection, runId: number): Promise<RunProgressRecord | null> {
  const [row] = await c.query<ProgressRow>('runProgress', 'SELECT * FROM run_progress WHERE run_id = $1', [
    runId,
  ]);
  return row ? progressFromRow(row) : null;
}

export async function pruneRunLogs(c: PostgresConnection, before: number, limit: number): Promise<number> {
  const rows = await c.query('pruneRunLogs', `${PRUNE_LOGS} RETURNING 1`, [before, limit]);
  return rows.length;
}
