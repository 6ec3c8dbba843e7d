import type { SkipReason } from '@kairos/client';
import { type CalendarDefinition, exclusionOf } from './calendar.ts';
import { countFires, latestFireIn, previousFire } from './fire-search.ts';
import { jitterOf } from './jitter.ts';
import { DEFAULT_SCHEDULE, type SchedulePolicy } from './schedule-policy.ts';
import { firstFire, isRecurring, nextFireAfter, type Trigger } from './trigger.ts';

export interface FirePlanOptions {
  /** A recurring fire more than this late is a misfire; the job's misfire policy decides. */
  misfireGraceMs: number;
  /** The most on-time fires to plan in one call; the rest come on the next call. */
  maxFires: number;
  /**
   * Also plan the fires due within this many ms after `now` (fired ahead of time: their runs
   * become available at their fire time). Default 0. Misfires are still judged against `now`.
   */
  aheadMs?: number;
  /**
   * The node is overloaded (its trigger loop is far behind): a recurring job with several due
   * fires runs only the latest one at or before `now`; the older ones are shed as `overloaded`.
   * Fires beyond the misfire grace are still decided by the job's misfire policy first, and a job
   * whose misfire policy is `catch-up` is never shed: it asked for its missed fires.
   */
  overloaded?: boolean;
}

/** What a plan needs to know of a job. */
export interface FirePlanJob {
  /** Seeds the jitter. */
  id: number;
  trigger: Trigger;
  schedule?: SchedulePolicy | undefined;
  /** Runs the schedule created so far (for `maxRuns`). */
  runsFired?: number | undefined;
  /** The job's calendars (loaded by the caller from `schedule.calendars`). */
  calendars?: readonly CalendarDefinition[] | undefined;
}

/** Fire times `first..last` of one job that did not become runs, for one reason. */
export interface SkippedRange {
  reason: SkipReason;
  first: number;
  last: number;
  /** Fire times in the range; null when there are too many to count cheaply (see COUNT_LIMIT). */
  count: number | null;
  /**
   * The job's fire just before `first`, when known: a ledger row of the same reason that ends
   * there is extended by this range instead of a new row (a slow job skipping every fire, one
   * excluded day after another, stays one row).
   */
  after?: number | undefined;
}

export interface FirePlan {
  /** Fire times to turn into runs, oldest first. */
  fires: number[];
  /** When each run becomes available: its fire time plus its jitter. */
  availableAt: number[];
  /** Fire times that will not run, with the reason, for the ledger. */
  skipped: SkippedRange[];
  /** The job's new next fire time (null: none until something sets it). */
  next: number | null;
}

/**
 * What a trigger loop does with a job whose next fire time `due` has come, at `now`. Pure: the
 * same inputs give the same plan on every node.
 *
 * - On time (at most `grace` late): every fire runs, oldest first, each fire time once.
 * - Misfire (the job is more than `grace` behind), by the job's misfire policy:
 *   `skip` drops the fires older than `now − grace` and runs the rest;
 *   `run-once` runs only the latest fire at or before `now`;
 *   `catch-up` runs the most recent `maxCatchUp` fires within `catchUpWindow`, oldest first.
 *   None of them walks the missed fires: each costs O(log) `nextFireAfter` calls (fire-search.ts).
 * - One-shot and fixed-delay fires never misfire: they run late, once.
 * - With `aheadMs`, fires up to `now + aheadMs` are planned too (never a misfire: not late).
 * - `endAt` ends the schedule; `maxRuns` caps the runs; both record what they cut.
 */
export function planFires(job: FirePlanJob, due: number, now: number, options: FirePlanOptions): FirePlan {
  const { trigger } = job;
  const schedule = job.schedule ?? DEFAULT_SCHEDULE;
  const until = now + (options.aheadMs ?? 0);
  if (due > until) return { fires: [], availableAt: [], skipped: [], next: due };
  const runsFired = job.runsFired ?? 0;
  if (schedule.maxRuns !== null && runsFired >= schedule.maxRuns) {
    return done('max-runs', due);
  }
  if (schedule.endAt !== null && due > schedule.endAt) return done('outside-window', due);

  let fires: number[] = [];
  const skipped: SkippedRange[] = [];
  let next: number | null;
  if (!isRecurring(trigger)) {
    fires = [due];
    next = null;
  } else {
    next = due;
    const horizon = now - options.misfireGraceMs;
    if (due < horizon) {
      const misfire = planMisfire(trigger, schedule, due, now, horizon);
      fires = misfire.fires;
      next = misfire.next;
      if (misfire.skipped) skipped.push(misfire.skipped);
    }
    if (options.overloaded && next !== null && schedule.misfire.policy !== 'catch-up') {
      const shed = shedOverload(trigger, next, Math.min(now, schedule.endAt ?? now));
      if (shed) {
        skipped.push(shed.skipped);
        next = shed.next;
      }
    }
    while (next !== null && next <= until && fires.length < options.maxFires) {
      fires.push(next);
      next = nextFireAfter(trigger, next);
    }
  }

  if (job.calendars && job.calendars.length > 0) {
    const excluded = applyCalendars(trigger, job.calendars, fires, next);
    fires = excluded.fires;
    next = excluded.next;
    skipped.push(...excluded.skipped);
  }
  if (schedule.endAt !== null) {
    const end = schedule.endAt;
    const beyond = fires.findIndex((fire) => fire > end);
    if (beyond >= 0) {
      skipped.push(single('outside-window', fires[beyond]!));
      fires = fires.slice(0, beyond);
      next = null;
    } else if (next !== null && next > end) {
      skipped.push(single('outside-window', next));
      next = null;
    }
  }
  if (schedule.maxRuns !== null && fires.length > schedule.maxRuns - runsFired) {
    const cut = fires.slice(schedule.maxRuns - runsFired);
    fires = fires.slice(0, schedule.maxRuns - runsFired);
    skipped.push({ reason: 'max-runs', first: cut[0]!, last: cut[cut.length - 1]!, count: cut.length });
  }
  return {
    fires,
    availableAt: fires.map((fire) => fire + jitterOf(job.id, fire, schedule.jitterMs)),
    skipped,
    next,
  };
}

/** The most excluded days or periods one plan jumps over (a calendar that excludes everything ends here). */
const CALENDAR_HOPS = 400;

/**
 * Drops the fires the calendars exclude and moves the next fire past any exclusion it falls in,
 * a whole excluded day or period at a time (never fire by fire), recording each as `calendar`.
 * A fixed-delay fire is postponed to the end of its exclusion rather than dropped (nothing else
 * would set it again).
 */
function applyCalendars(
  trigger: Trigger,
  calendars: readonly CalendarDefinition[],
  fires: number[],
  next: number | null,
): { fires: number[]; next: number | null; skipped: SkippedRange[] } {
  const exclusion = (t: number) => {
    for (const calendar of calendars) {
      const found = exclusionOf(calendar, t);
      if (found) return found;
    }
    return null;
  };
  const skipped: SkippedRange[] = [];
  const kept: number[] = [];
  let previousExcluded = false;
  for (const fire of fires) {
    const found = exclusion(fire);
    if (!found) {
      kept.push(fire);
    } else if (trigger.kind === 'delay') {
      skipped.push(single('calendar', fire));
      return { fires: kept, next: found.until, skipped };
    } else {
      // Consecutive excluded fires make one range.
      const last = skipped[skipped.length - 1];
      if (previousExcluded && last && last.count !== null) {
        last.last = fire;
        last.count++;
      } else {
        skipped.push({ ...single('calendar', fire), after: fireBefore(trigger, fire) });
      }
    }
    previousExcluded = found !== null;
  }
  for (let hops = 0; next !== null && hops < CALENDAR_HOPS; hops++) {
    const found = exclusion(next);
    if (!found) break;
    const last = latestFireIn(trigger, next, found.until - 1) ?? next;
    skipped.push({
      reason: 'calendar',
      first: next,
      last,
      count: countFires(trigger, next, last),
      after: fireBefore(trigger, next),
    });
    next = nextFireAfter(trigger, last);
  }
  return { fires: kept, next, skipped };
}

function planMisfire(
  trigger: Trigger,
  schedule: SchedulePolicy,
  due: number,
  now: number,
  horizon: number,
): { fires: number[]; next: number | null; skipped: SkippedRange | null } {
  switch (schedule.misfire.policy) {
    case 'run-once': {
      const latest = latestFireIn(trigger, due, now) ?? due;
      return {
        fires: [latest],
        next: nextFireAfter(trigger, latest),
        skipped: range(trigger, 'misfire', due, latest - 1),
      };
    }
    case 'catch-up': {
      const windowStart = Math.max(due, now - schedule.misfire.catchUpWindowMs);
      const latest = latestFireIn(trigger, windowStart, now);
      const fires: number[] = [];
      if (latest !== null) {
        fires.push(latest);
        while (fires.length < schedule.misfire.maxCatchUp) {
          const previous = previousFire(trigger, fires[0]!, windowStart);
          if (previous === null) break;
          fires.unshift(previous);
        }
      }
      const resume = latest === null ? nextFireAfter(trigger, now) : nextFireAfter(trigger, latest);
      return { fires, next: resume, skipped: range(trigger, 'misfire', due, (fires[0] ?? now + 1) - 1) };
    }
    default: {
      const next = nextFireAfter(trigger, horizon - 1);
      return { fires: [], next, skipped: range(trigger, 'misfire', due, (next ?? now + 1) - 1) };
    }
  }
}

/**
 * Overload: of the due fires from `next` up to `until`, only the latest runs; the ones before it
 * are one `overloaded` range. Null when at most one fire is due. O(log) like the misfire policies.
 */
function shedOverload(
  trigger: Trigger,
  next: number,
  until: number,
): { next: number; skipped: SkippedRange } | null {
  const latest = latestFireIn(trigger, next, until);
  if (latest === null || latest <= next) return null;
  const skipped = range(trigger, 'overloaded', next, latest - 1);
  return skipped ? { next: latest, skipped } : null;
}

/** The skipped range of fires in `[from, to]`, or null when it holds none. */
function range(trigger: Trigger, reason: SkipReason, from: number, to: number): SkippedRange | null {
  const last = latestFireIn(trigger, from, to);
  if (last === null) return null;
  const first = nextFireAfter(trigger, from - 1) ?? from;
  return { reason, first, last, count: countFires(trigger, first, last) };
}

/** How far back the fire before a skipped range is looked for (a yearly job still finds its last). */
const BEFORE_SPAN_MS = 400 * 86_400_000;

/** The fire just before `fire`, for extending the ledger row that ends there. */
export function fireBefore(trigger: Trigger, fire: number): number | undefined {
  if (!isRecurring(trigger)) return undefined;
  return previousFire(trigger, fire, fire - BEFORE_SPAN_MS) ?? undefined;
}

function single(reason: SkipReason, fire: number): SkippedRange {
  return { reason, first: fire, last: fire, count: 1 };
}

function done(reason: SkipReason, due: number): FirePlan {
  return { fires: [], availableAt: [], skipped: [single(reason, due)], next: null };
}

/** The first fire of a job that (re)starts at `now`, within its window; null when none. */
export function firstScheduledFire(trigger: Trigger, schedule: SchedulePolicy, now: number): number | null {
  const from = schedule.startAt === null ? now : Math.max(now, schedule.startAt - 1);
  const first = trigger.kind === 'delay' ? Math.max(now, schedule.startAt ?? now) : firstFire(trigger, from);
  if (first !== null && schedule.endAt !== null && first > schedule.endAt) return null;
  return first;
}

/**
 * Resuming a paused job at `now`: the fires it would have had while paused (from its kept next
 * fire `pausedNext` up to `now`) are recorded as skipped with reason `paused`, in one range, and the
 * schedule continues after `now`. A one-shot or fixed-delay fire that came due while paused runs late.
 */
export function planResume(
  trigger: Trigger,
  schedule: SchedulePolicy,
  pausedNext: number | null,
  now: number,
): { next: number | null; skipped: SkippedRange | null } {
  if (pausedNext === null) return { next: firstScheduledFire(trigger, schedule, now), skipped: null };
  if (!isRecurring(trigger) || pausedNext > now) return { next: pausedNext, skipped: null };
  return {
    next: firstScheduledFire(trigger, schedule, now),
    skipped: range(trigger, 'paused', pausedNext, now),
  };
}
