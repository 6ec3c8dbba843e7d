import type { JsonObject, LogLevel } from '@kairos/client';
import { type JsonColumn, json } from './rows.ts';
import type { RunLogBatch, RunLogRecord, RunProgressRecord } from './store.ts';

/** Row shapes and the size-limit rule of run logs, shared by the dialects. */

export interface LogRow {
  seq: number;
  attempt: number;
  time: number;
  level: string;
  message: string;
  fields: JsonColumn | null;
}

export function logFromRow(row: LogRow): RunLogRecord {
  return {
    seq: row.seq,
    attempt: row.attempt,
    time: row.time,
    level: row.level as LogLevel,
    message: row.message,
    fields: row.fields === null ? null : json<JsonObject>(row.fields),
  };
}

export interface ProgressRow {
  attempt: number;
  value: number;
  message: string | null;
  updated_at: number;
}

export function progressFromRow(row: ProgressRow): RunProgressRecord {
  return { attempt: row.attempt, value: row.value, message: row.message, updatedAt: row.updated_at };
}

export interface LogAppendPlan {
  /** Lines of the batch to store, from its start. */
  keep: number;
  /** Lines of the run after this batch, the marker included: also the seq of the last one. */
  lines: number;
  dropped: number;
  /** The one line that says the limit was reached, stored after the kept lines; null if none. */
  marker: string | null;
}

/** What a batch of `incoming` lines does to a run that holds `before.lines` lines, under `maxLines`. */
export function planLogAppend(
  before: { lines: number; dropped: number },
  incoming: number,
  maxLines: number,
): LogAppendPlan {
  const keep = Math.min(incoming, Math.max(0, maxLines - before.lines));
  const over = incoming - keep;
  const marker =
    over > 0 && before.dropped === 0
      ? `log limit of ${maxLines} lines reached: later lines of this run are dropped`
      : null;
  return {
    keep,
    lines: before.lines + keep + (marker ? 1 : 0),
    dropped: before.dropped + over,
    marker,
  };
}

/** Lines by run, each run's lines in batch order; runs in the order they first appear. */
export function groupByRun(lines: RunLogBatch['logs']): Map<number, Array<RunLogBatch['logs'][number]>> {
  const out = new Map<number, Array<RunLogBatch['logs'][number]>>();
  for (const line of lines) {
    const list = out.get(line.runId);
    if (list) list.push(line);
    else out.set(line.runId, [line]);
  }
  return out;
}
