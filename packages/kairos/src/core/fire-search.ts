import { nextFireAfter, previousCronFire, type Trigger } from './trigger.ts';

/**
 * Fire-time searches that never walk every fire of a range: a per-second job down for a day has
 * 86 400 missed fires, and a node restarting after an outage must plan thousands of jobs at once.
 * Each search costs O(log(range)) calls of {@link nextFireAfter}, whatever the number of fires.
 */

/** The most cron fires {@link countFires} steps through before it answers "many" (null). */
export const COUNT_LIMIT = 20;

/**
 * The latest fire time in `[from, to]`, or null when there is none.
 *
 * `every` is arithmetic; cron asks croner's backward search and checks it. Otherwise (or if the
 * check fails) a binary search: `nextFireAfter` is monotone in its argument, so the latest fire ≤ `to` is `nextFireAfter(s)` for
 * the largest `s` whose answer is still ≤ `to`: a binary search over `s` in `[from − 1, to]`.
 */
export function latestFireIn(trigger: Trigger, from: number, to: number): number | null {
  if (to < from) return null;
  const first = nextFireAfter(trigger, from - 1);
  if (first === null || first > to) return null;
  if (trigger.kind === 'every') {
    return trigger.anchor + Math.floor((to - trigger.anchor) / trigger.every) * trigger.every;
  }
  if (trigger.kind === 'cron') {
    const previous = previousCronFire(trigger, to + 1);
    if (previous.checked) return previous.fire !== null && previous.fire >= from ? previous.fire : null;
  }
  // Invariant: nextFireAfter(lo) ≤ to, nextFireAfter(hi) > to (or none).
  let lo = first;
  let hi = to;
  if ((nextFireAfter(trigger, lo) ?? Number.POSITIVE_INFINITY) > to) return first;
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if ((nextFireAfter(trigger, mid) ?? Number.POSITIVE_INFINITY) <= to) lo = mid;
    else hi = mid;
  }
  return nextFireAfter(trigger, lo);
}

/** The latest fire time strictly before `before` and at or after `from`, or null. */
export function previousFire(trigger: Trigger, before: number, from: number): number | null {
  return latestFireIn(trigger, from, before - 1);
}

/**
 * How many fires `[from, to]` holds: exact for `every` (arithmetic); for cron, stepping through at
 * most {@link COUNT_LIMIT} fires and null ("many") beyond, so that counting stays bounded.
 */
export function countFires(trigger: Trigger, from: number, to: number): number | null {
  if (to < from) return 0;
  if (trigger.kind === 'every') {
    const first = nextFireAfter(trigger, from - 1);
    if (first === null || first > to) return 0;
    return Math.floor((to - first) / trigger.every) + 1;
  }
  let count = 0;
  let next = nextFireAfter(trigger, from - 1);
  while (next !== null && next <= to) {
    if (++count > COUNT_LIMIT) return null;
    next = nextFireAfter(trigger, next);
  }
  return count;
}
