// Run logs and progress on SQLite: appends fenced to the attempt that wrote them, reads, pruning.

import {
  groupByRun,
  type LogRow,
  logFromRow,
  type ProgressRow,
  planLogAppend,
  progressFromRow,
} from '../log-rows.ts';
import { toJson } from '../rows.ts';
import type { RunLogBatch, RunLogRecord, RunProgressRecord } from '../store.ts';
import type { SqliteConnection } from './connection.ts';

/** Whether @worker holds @attempt of @run now: the run's current attempt, running on it. */
const HELD_ATTEMPT = `SELECT 1 FROM runs WHERE id = @run AND attempt = @attempt AND worker_id = @worker AND status = 'running'`;

/**
 * Whether @worker ran @attempt of @run: its running attempt, or one of its ended ones (the one that
 * succeeded is its run's row: it has no attempt row).
 */
const OWNED_ATTEMPT = `SELECT 1 FROM runs WHERE id = @run AND attempt = @attempt AND worker_id = @worker
    AND status IN ('running', 'succeeded')
  UNION ALL SELECT 1 FROM attempts WHERE run_id = @run AND attempt = @attempt AND worker_id = @worker`;

export function appendRunLogs(
  c: SqliteConnection,
  workerId: string,
  batch: RunLogBatch,
  maxLines: number,
  now: number,
): number {
  const touched = new Set<number>();
  const stored = c.run('appendRunLogs', () =>
    c.db
      .transaction(() => {
        const owned = c.sql(OWNED_ATTEMPT);
        const fenced = new Map<string, boolean>();
        const mine = (runId: number, attempt: number) => {
          const key = `${runId}:${attempt}`;
          let ok = fenced.get(key);
          if (ok === undefined) {
            ok = owned.get({ run: runId, attempt, worker: workerId }) !== undefined;
            fenced.set(key, ok);
          }
          return ok;
        };
        const state = c.sql(
          `INSERT INTO run_log_state (run_id, lines, dropped) VALUES (?, 0, 0)
             ON CONFLICT (run_id) DO UPDATE SET lines = lines RETURNING lines, dropped`,
        );
        const save = c.sql('UPDATE run_log_state SET lines = ?, dropped = ? WHERE run_id = ?');
        const insert = c.sql(
          `INSERT INTO run_logs (run_id, seq, attempt, time, stored_at, level, message, fields)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        );
        let count = 0;
        for (const [runId, lines] of groupByRun(batch.logs.filter((l) => mine(l.runId, l.attempt)))) {
          const before = state.get(runId) as { lines: number; dropped: number };
          const plan = planLogAppend(before, lines.length, maxLines);
          lines.slice(0, plan.keep).forEach((line, i) => {
            insert.run(
              runId,
              before.lines + i + 1,
              line.attempt,
              line.time,
              now,
              line.level,
              line.message,
              toJson(line.fields),
            );
          });
          if (plan.marker) {
            const last = lines[lines.length - 1]!;
            insert.run(runId, plan.lines, last.attempt, last.time, now, 'warn', plan.marker, null);
          }
          save.run(plan.lines, plan.dropped, runId);
          count += plan.keep;
          touched.add(runId);
        }
        const progress = c.sql(
          `INSERT INTO run_progress (run_id, attempt, value, message, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (run_id) DO UPDATE SET attempt = excluded.attempt, value = excluded.value,
               message = excluded.message, updated_at = excluded.updated_at
             WHERE excluded.attempt >= run_progress.attempt`,
        );
        // Progress is the run's current state: only from the attempt that holds the run now.
        const held = c.sql(HELD_ATTEMPT);
        for (const p of batch.progress) {
          if (!held.get({ run: p.runId, attempt: p.attempt, worker: workerId })) continue;
          progress.run(p.runId, p.attempt, p.value, p.message, now);
          touched.add(p.runId);
        }
        return count;
      })
      .immediate(),
  );
  for (const runId of touched) c.emit({ type: 'logs', runId });
  return stored;
}

export function runLogs(c: SqliteConnection, runId: number, after: number, limit: number): RunLogRecord[] {
  return c.run('runLogs', () =>
    (
      c
        .sql(
          'SELECT seq, attempt, time, level, message, fields FROM run_logs WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?',
        )
        .all(runId, after, limit) as LogRow[]
    ).map(logFromRow),
  );
}

export function runProgress(c: SqliteConnection, runId: number): RunProgressRecord | null {
  return c.run('runProgress', () => {
    const row = c.sql('SELECT * FROM run_progress WHERE run_id = ?').get(runId) as ProgressRow | undefined;
    return row ? progressFromRow(row) : null;
  });
}

export function pruneRunLogs(c: SqliteConnection, before: number, limit: number): number {
  return c.run(
    'pruneRunLogs',
    () =>
      c
        .sql('DELETE FROM run_logs WHERE rowid IN (SELECT rowid FROM run_logs WHERE stored_at < ? LIMIT ?)')
        .run(before, limit).changes,
  );
}
