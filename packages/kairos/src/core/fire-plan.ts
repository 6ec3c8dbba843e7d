import { isRecurring, nextFireAfter, type Trigger } from './trigger.ts';

export interface FirePlanOptions {
  /** A recurring fire more than this late is a misfire and is skipped. */
  misfireGraceMs: number;
  /** The most fires to plan in one call; the rest come on the next call. */
  maxFires: number;
}

export interface FirePlan {
  /** Fire times to turn into runs, oldest first. */
  fires: number[];
  /** Misfired fire times that were skipped: `[from, to)`, or null. */
  skipped: { from: number; to: number } | null;
  /** The job's new next fire time (null: none until something sets it). */
  next: number | null;
}

/**
 * What a trigger loop does with a job whose next fire time `due` has come, at `now`.
 *
 * - Fires at most `grace` late run, oldest first, each fire time once.
 * - A recurring trigger further behind than the grace skips ahead without enumerating what it
 *   missed: the next fire becomes the first one at or after `now − grace` (one `nextFireAfter` call).
 * - One-shot and fixed-delay fires never misfire: they run late, once.
 */
export function planFires(trigger: Trigger, due: number, now: number, options: FirePlanOptions): FirePlan {
  if (due > now) return { fires: [], skipped: null, next: due };
  if (!isRecurring(trigger)) return { fires: [due], skipped: null, next: null };
  const horizon = now - options.misfireGraceMs;
  let skipped: FirePlan['skipped'] = null;
  let next: number | null = due;
  if (due < horizon) {
    next = nextFireAfter(trigger, horizon - 1);
    skipped = { from: due, to: next ?? now };
  }
  const fires: number[] = [];
  while (next !== null && next <= now && fires.length < options.maxFires) {
    fires.push(next);
    next = nextFireAfter(trigger, next);
  }
  return { fires, skipped, next };
}
