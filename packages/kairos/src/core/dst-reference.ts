/**
 * An independent reference of cron fire times across DST, for tests only: it walks local days
 * wall-clock time by wall-clock time and converts each to instants with Intl.DateTimeFormat,
 * sharing nothing with croner. Patterns are given as the sets of their second, minute and hour
 * values (every day of every month), so no cron parsing is involved.
 */

export interface ReferencePattern {
  seconds: number[];
  minutes: number[];
  hours: number[];
  /** Fixed-time (no wildcard or step in second, minute, hour): the `once-per-day` rule applies to it. */
  fixedTime: boolean;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The zone's offset at instant `t` in ms (local wall time as if UTC, minus `t`). */
export function offsetAt(timezone: string, t: number): number {
  let format = formatters.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timezone, format);
  }
  const parts: Record<string, number> = {};
  for (const part of format.formatToParts(new Date(t))) parts[part.type] = Number(part.value);
  const wall = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
  return wall - Math.floor(t / 1000) * 1000;
}

/** Every instant whose local wall time is `wall` (ms as if UTC): none in a gap, two in an overlap. */
export function instantsOf(timezone: string, wall: number): number[] {
  const offsets = new Set([-36, -12, 0, 12, 36].map((h) => offsetAt(timezone, wall + h * 3_600_000)));
  const out = new Set<number>();
  for (const offset of offsets) {
    const t = wall - offset;
    if (offsetAt(timezone, t) === offset) out.add(t);
  }
  return [...out].sort((a, b) => a - b);
}

/** The first instant after a gap that swallowed `wall`: where the local clock jumps past it. */
function endOfGap(timezone: string, wall: number): number {
  // Before the gap the offset is the smaller one; the wall time falls at `wall − before` which lies
  // after the jump, so the jump itself is the first valid instant: search it by bisection.
  let lo = wall - offsetAt(timezone, wall - 86_400_000) - 3 * 3_600_000;
  let hi = wall - offsetAt(timezone, wall - 86_400_000) + 3 * 3_600_000;
  const before = offsetAt(timezone, lo);
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
    if (offsetAt(timezone, mid) === before) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** The reference's fire instants of one local day (`day`: midnight as if UTC), under a DST rule. */
function firesOfDay(pattern: ReferencePattern, timezone: string, day: number, literal: boolean): number[] {
  const out = new Set<number>();
  for (const h of pattern.hours)
    for (const m of pattern.minutes)
      for (const s of pattern.seconds) {
        const wall = day + h * 3_600_000 + m * 60_000 + s * 1000;
        const instants = instantsOf(timezone, wall);
        if (literal || !pattern.fixedTime) {
          for (const t of instants) out.add(t);
        } else if (instants.length > 0) {
          out.add(instants[0]!);
        } else {
          out.add(endOfGap(timezone, wall));
        }
      }
  return [...out].sort((a, b) => a - b);
}

/** The reference's first fire strictly after `after`, looking a few local days ahead. */
export function referenceNextFire(
  pattern: ReferencePattern,
  timezone: string,
  after: number,
  literal: boolean,
): number | null {
  const localNow = after + offsetAt(timezone, after);
  const firstDay = Math.floor(localNow / 86_400_000) * 86_400_000 - 86_400_000;
  for (let day = firstDay; day < firstDay + 5 * 86_400_000; day += 86_400_000) {
    const next = firesOfDay(pattern, timezone, day, literal).find((t) => t > after);
    if (next !== undefined) return next;
  }
  return null;
}
