// Percentiles of one run, and median / min / max across repetitions.

/** The p-th percentile (nearest rank) of ascending `sorted`; NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** `value` rounded to `digits` decimals. */
export function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** Enqueue → start latencies of one run, in milliseconds. */
export interface LatencyStats {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Percentiles of `latencies` (any order). */
export function latencyStats(latencies: number[]): LatencyStats {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1) ?? Number.NaN),
  };
}

/** One figure over the repetitions. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** Median, min and max of the finite values in `values`; undefined if there are none. */
export function spread(values: number[]): Spread | undefined {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted.at(-1)!, n: sorted.length };
}

/** The part of a drain between two fractions of its jobs' first starts. */
export interface MiddleRate {
  /** Jobs per second between the start at `from` and the start at `to` of all starts. */
  perSecond: number;
  /** When those two starts came, in ms after `origin`. */
  fromMs: number;
  toMs: number;
}

/**
 * The rate between the `from` and `to` fractions (10 % and 90 %) of `starts` (epoch ms, any order):
 * the drain's steady state, without the workers' start-up before it or the last stragglers after.
 * NaN figures when fewer than two starts fall between.
 */
export function middleRate(starts: number[], origin: number, from = 0.1, to = 0.9): MiddleRate {
  const sorted = [...starts].sort((a, b) => a - b);
  const i = Math.floor(from * sorted.length);
  const j = Math.ceil(to * sorted.length) - 1;
  const first = sorted[i];
  const last = sorted[j];
  if (first === undefined || last === undefined || j <= i || last === first)
    return { perSecond: Number.NaN, fromMs: Number.NaN, toMs: Number.NaN };
  return {
    perSecond: Math.round(((j - i) / (last - first)) * 1000),
    fromMs: round(first - origin),
    toMs: round(last - origin),
  };
}
