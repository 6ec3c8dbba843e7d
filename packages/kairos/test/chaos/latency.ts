import type { StoreSnapshot } from './checker.ts';
import type { AckEvent, EndEvent, ExecEvent, FaultEvent, HistoryEvent } from './history-log.ts';

/**
 * What each fault costs in latency. Every run with a due time gives a sample: a fire is due at its
 * fire time, an acknowledged enqueue at its acknowledgement. Two delays per sample:
 * - `start`: due → the first execution's start (how late the handler began at all);
 * - `counted`: due → the start of the execution whose success counted (the cost of a lost attempt
 *   re-run elsewhere, of a worker that vanished with it, of a failover).
 * A sample is charged to every fault that overlaps its wait (from due to the counted start) or
 * healed less than `afterMs` before it was due: a run in flight on a worker that is killed waits
 * for its lease to end. Faults overlap, so a sample can be charged to several kinds; a sample
 * with none is the baseline the faults are read against.
 */
export interface LatencyRow {
  /** A fault kind, or `none` for the baseline. */
  fault: string;
  samples: number;
  start: Percentiles;
  counted: Percentiles;
}

export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
}

export interface LatencyOptions {
  /** How long after a fault heals its effects are still charged to it. */
  afterMs: number;
  /** The checked window of fires: fires outside it (the start, the drain) are left out. */
  from: number;
  to: number;
}

export function latencyByFault(
  events: HistoryEvent[],
  store: StoreSnapshot,
  options: LatencyOptions,
): LatencyRow[] {
  const faults = events.filter((e): e is FaultEvent => e.t === 'fault');
  const execs = new Map<number, ExecEvent[]>();
  for (const e of events) if (e.t === 'exec') execs.set(e.runId, [...(execs.get(e.runId) ?? []), e]);
  const succeeded = new Set(
    events.filter((e): e is EndEvent => e.t === 'end' && e.ok).map((e) => `${e.runId}#${e.attempt}`),
  );
  const acks = new Map(
    events.filter((e): e is AckEvent => e.t === 'ack').map((e) => [e.runId, e.at] as const),
  );

  const samples: Array<{ due: number; start: number; counted: number }> = [];
  for (const run of store.runs) {
    const due = run.fireTime ?? acks.get(run.id);
    if (due === undefined || due < options.from || due > options.to) continue;
    const list = (execs.get(run.id) ?? []).sort((a, b) => a.at - b.at);
    const counting = list.find((e) => e.attempt === run.attempt && succeeded.has(`${e.runId}#${e.attempt}`));
    if (list.length === 0 || run.status !== 'succeeded' || !counting) continue;
    samples.push({ due, start: list[0]!.at - due, counted: counting.at - due });
  }

  const charged = new Map<string, typeof samples>();
  for (const sample of samples) {
    const kinds = new Set(
      faults
        .filter(
          (f) =>
            f.start <= sample.due + sample.counted &&
            sample.due <= (f.end ?? store.takenAt) + options.afterMs,
        )
        .map((f) => f.kind),
    );
    if (kinds.size === 0) kinds.add('none');
    for (const kind of kinds) charged.set(kind, [...(charged.get(kind) ?? []), sample]);
  }
  return [...charged]
    .map(([fault, list]) => ({
      fault,
      samples: list.length,
      start: percentiles(list.map((s) => s.start)),
      counted: percentiles(list.map((s) => s.counted)),
    }))
    .sort((a, b) => (a.fault === 'none' ? -1 : b.fault === 'none' ? 1 : a.fault.localeCompare(b.fault)));
}

function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
  return { p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? 0 };
}

/** The rows as a Markdown table, in milliseconds. */
export function formatLatency(rows: LatencyRow[]): string {
  const lines = [
    '| fault | samples | start p50 | start p99 | start max | counted p50 | counted p99 | counted max |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows)
    lines.push(
      `| ${r.fault} | ${r.samples} | ${r.start.p50} | ${r.start.p99} | ${r.start.max} | ${r.counted.p50} | ${r.counted.p99} | ${r.counted.max} |`,
    );
  return lines.join('\n');
}
