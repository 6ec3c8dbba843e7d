const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;

/**
 * Reads a duration: milliseconds, or a string with a unit (`'250ms'`, `'30s'`, `'1.5m'`, `'2h'`, `'1d'`).
 * Returns whole milliseconds; throws a TypeError naming `what` for anything else.
 */
export function parseDuration(value: number | string, what: string): number {
  let ms: number | undefined;
  if (typeof value === 'number') {
    ms = value;
  } else if (typeof value === 'string') {
    const match = PATTERN.exec(value.trim());
    if (match) ms = Number(match[1]) * UNITS[match[2]!]!;
  }
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) {
    throw new TypeError(
      `${what}: expected a duration (milliseconds, or a string like '30s' with unit ms, s, m, h or d), got ${JSON.stringify(value) ?? String(value)}`,
    );
  }
  return Math.round(ms);
}

/** A short human form for log and error messages: 1500 → '1.5s', 300000 → '5m'. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', UNITS.d!],
    ['h', UNITS.h!],
    ['m', UNITS.m!],
    ['s', UNITS.s!],
  ] as const) {
    if (ms >= size) return `${Number((ms / size).toFixed(2))}${unit}`;
  }
  return `${ms}ms`;
}
