import type { Duration } from '@kairos/client';
import { KairosError } from '../errors.ts';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/**
 * Parses a duration: a whole number of milliseconds or a string like `'250ms'`, `'30s'`, `'1.5h'`.
 * The one place durations are read; throws INVALID_DURATION with the field name.
 */
export function parseDuration(
  value: Duration,
  field: string,
  options: { min?: number; max?: number } = {},
): number {
  let ms: number | undefined;
  if (typeof value === 'number') {
    ms = Number.isInteger(value) ? value : undefined;
  } else {
    const match = PATTERN.exec(value.trim());
    if (match) ms = Math.round(Number(match[1]) * UNITS[match[2]!]!);
  }
  const min = options.min ?? 0;
  const max = options.max ?? 365 * UNITS.d!;
  if (ms === undefined || !Number.isFinite(ms) || ms < min || ms > max) {
    throw new KairosError(
      'INVALID_DURATION',
      `${field}: expected a duration between ${formatDuration(min)} and ${formatDuration(max)} ` +
        `(milliseconds or a string like '30s'), got ${JSON.stringify(value)}`,
      { field },
    );
  }
  return ms;
}

/** The shortest exact form: 1500 → '1500ms', 30000 → '30s', 7200000 → '2h'. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNITS[unit]!;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
