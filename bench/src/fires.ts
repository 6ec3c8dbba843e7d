// Counting a schedule window's fires: which nominal instants each schedule should have fired at inside
// the window, which it missed, which ran twice, and which fires came at an instant off its schedule.
// A pure function of the handler calls, so that the counting is tested apart from any contestant.

/** One handler call of a scheduled job: `[schedule number, nominal fire time (epoch ms), lateness ms]`. */
export type Fire = readonly [number, number, number];

/** The window and the schedules it watches. */
export interface FireWindow {
  /** Schedules 0 … count − 1. */
  count: number;
  periodMs: number;
  /** The window is [from, to), epoch ms; either may have a fraction of a millisecond. */
  from: number;
  to: number;
}

/** What the window saw. */
export interface FireCount {
  /** Nominal instants of the window, over all schedules. */
  expected: number;
  /** Distinct (schedule, nominal instant) pairs that ran in the window, on the schedule's grid. */
  fires: number;
  /** Expected instants with no handler call. */
  missing: number;
  /** Handler calls beyond the first for the same schedule and nominal instant. */
  duplicates: number;
  /** Distinct (schedule, nominal instant) pairs in the window that are not on the schedule's grid. */
  offSchedule: number;
  /** The lateness of the first call of every distinct fire in the window (ms). */
  lateness: number[];
}

const mod = (value: number, period: number) => ((value % period) + period) % period;

/** How many instants `phase + k·period` (k whole) lie in [from, to): exact for fractional bounds. */
export function instantsIn(from: number, to: number, periodMs: number, phase: number): number {
  return Math.max(0, Math.ceil((to - phase) / periodMs) - Math.ceil((from - phase) / periodMs));
}

/** The grid of a schedule: the phase (nominal instant modulo the period) most of its fires show, in or
 * out of the window; 0 (whole periods since the epoch) for a schedule that never fired. */
function phases(fires: readonly Fire[], periodMs: number): Map<number, number> {
  const seen = new Map<number, Map<number, number>>();
  for (const [i, nominal] of fires) {
    const byPhase = seen.get(i) ?? new Map<number, number>();
    const phase = mod(nominal, periodMs);
    byPhase.set(phase, (byPhase.get(phase) ?? 0) + 1);
    seen.set(i, byPhase);
  }
  const result = new Map<number, number>();
  for (const [i, byPhase] of seen) {
    let best = 0;
    let most = -1;
    for (const [phase, n] of byPhase) if (n > most) [best, most] = [phase, n];
    result.set(i, best);
  }
  return result;
}

/** Counts the fires of `window.count` schedules by nominal instant: a fire belongs to the window when
 * its nominal instant is in [from, to), whenever its handler ran. */
export function countFires(fires: readonly Fire[], window: FireWindow): FireCount {
  const { count, periodMs, from, to } = window;
  const grid = phases(fires, periodMs);
  const first = new Map<string, number>();
  let calls = 0;
  let offSchedule = 0;
  const onGrid = new Map<number, number>();
  for (const [i, nominal, lateness] of fires) {
    if (i < 0 || i >= count || nominal < from || nominal >= to) continue;
    calls++;
    const key = `${i}@${nominal}`;
    if (first.has(key)) continue;
    first.set(key, lateness);
    if (mod(nominal, periodMs) === (grid.get(i) ?? 0)) onGrid.set(i, (onGrid.get(i) ?? 0) + 1);
    else offSchedule++;
  }
  let expected = 0;
  let missing = 0;
  for (let i = 0; i < count; i++) {
    const slots = instantsIn(from, to, periodMs, grid.get(i) ?? 0);
    expected += slots;
    missing += slots - (onGrid.get(i) ?? 0);
  }
  return {
    expected,
    fires: first.size - offSchedule,
    missing,
    duplicates: calls - first.size,
    offSchedule,
    lateness: [...first.values()],
  };
}
