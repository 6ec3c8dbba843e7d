// Schedule accuracy: `count` recurring schedules, each firing every period (1 s where the contestant can),
// run for a window; each handler start is compared with its job's nominal fire time. Fires are checked
// per schedule: a nominal instant of the window with no handler call is missing, one with two is doubled.
import { countFires } from '../fires.ts';
import { latencyStats } from '../stats.ts';
import { now, sleep } from '../util.ts';
import { type RunContext, startWorkers } from '../workers.ts';

/** Figures of one schedule-accuracy run (milliseconds). */
export interface ScheduleResult {
  schedules: number;
  periodMs: number;
  seconds: number;
  /** Nominal fires inside the window. */
  expected: number;
  fires: number;
  p50: number;
  p99: number;
  max: number;
  /** Nominal instants of the window with no handler call. */
  missing: number;
  /** Handler calls beyond the first for one schedule and nominal instant. */
  duplicates: number;
  /** Fires in the window at an instant off their schedule's period (absent in older result files). */
  offSchedule?: number;
  complete: boolean;
}

/** Settling time after the schedules are created, before the measured window opens (ms); the
 * environment's SETTLE_MS overrides it, to measure the lateness once the first seconds are past. */
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 3000);
/** A per-minute window holds its minute at least this long before it closes, so that late fires still
 * fall in it (pg-boss's came up to 10.9 s late). */
const LATE_ALLOWANCE_MS = 15_000;

/** When the window opens, at `earliest` or later. Per-minute schedules: the window holds one minute
 * start, at least a second after it opens (so that no fire of that minute comes before the window) and
 * {@link LATE_ALLOWANCE_MS} before it closes where the window is long enough (else a second after it
 * opens); the window opens as early as that allows, so that the wait for the minute stays short. */
export function windowStart(earliest: number, periodMs: number, windowMs: number): number {
  if (periodMs < 60_000) return earliest;
  const minute = Math.ceil((earliest + 1000) / periodMs) * periodMs;
  const lead = Math.max(1000, windowMs - LATE_ALLOWANCE_MS);
  return Math.max(earliest, minute - lead);
}

/** Whether a per-minute schedule scenario whose window may open at `earliest` (epoch ms, an estimate
 * that may be off by `errorMs` either way) waits at most `maxWaitMs` for its window and leaves at least
 * `roomMs` between its minute and its close, wherever in that error the true instant falls. */
export function suitsWindow(
  earliest: number,
  periodMs: number,
  windowMs: number,
  { maxWaitMs, errorMs, roomMs = 0 }: { maxWaitMs: number; errorMs: number; roomMs?: number },
): boolean {
  for (let shift = -errorMs; shift <= errorMs; shift += 250) {
    const at = earliest + shift;
    const from = windowStart(at, periodMs, windowMs);
    const minute = Math.ceil(from / periodMs) * periodMs;
    if (from - at > maxWaitMs || from + windowMs - minute < roomMs) return false;
  }
  return true;
}

/** How long from `now` until {@link suitsWindow} holds for a window that may open `leadMs` after
 * that instant: 0 when it holds now, null when not within `withinMs` (looked at every 250 ms). */
export function waitToSuit(
  now: number,
  leadMs: number,
  periodMs: number,
  windowMs: number,
  options: { maxWaitMs: number; errorMs: number; roomMs?: number },
  withinMs: number,
): number | null {
  for (let wait = 0; wait <= withinMs; wait += 250)
    if (suitsWindow(now + wait + leadMs, periodMs, windowMs, options)) return wait;
  return null;
}

/** Runs the schedule-accuracy scenario on queue `schedule`; `remove`: the schedules are removed after
 * the window (else they keep firing until the run's teardown drops the store). */
export async function schedule(
  ctx: RunContext,
  count: number,
  seconds: number,
  remove = true,
): Promise<ScheduleResult> {
  const periodMs = ctx.contestant.schedules?.periodMs;
  if (!periodMs) throw new Error(`${ctx.contestant.name} has no schedules to measure`);
  // A contestant whose schedules live in the worker (Graphile Worker's crontab) reads their count here.
  const workers = await startWorkers(
    { ...ctx, extra: { ...ctx.extra, BENCH_SCHEDULES: String(count) } },
    'schedule',
  );
  await workers.go();
  await ctx.timings.time('schedules create', () =>
    ctx.client.call('schedule', { queue: 'schedule', count, periodMs }),
  );
  const from = windowStart(now() + SETTLE_MS, periodMs, seconds * 1000);
  const to = from + seconds * 1000;
  // The last fires of the window get a second to run before the schedules go.
  await sleep(Math.max(0, to - now() + 1000));
  if (remove)
    await ctx.timings.time('schedules remove', () =>
      ctx.client.call('unschedule', { queue: 'schedule', count }),
    );
  const handled = await workers.finish();

  // By nominal instant in [from, to), exactly (see fires.ts): the window's bounds carry fractions of a
  // millisecond, and each schedule keeps its own phase (BullMQ's: the instant it was created).
  const counted = countFires(handled.fires, { count, periodMs, from, to });
  const stats = latencyStats(counted.lateness);
  return {
    schedules: count,
    periodMs,
    seconds,
    expected: counted.expected,
    fires: counted.fires,
    p50: stats.p50,
    p99: stats.p99,
    max: stats.max,
    missing: counted.missing,
    duplicates: counted.duplicates,
    offSchedule: counted.offSchedule,
    complete: counted.missing === 0 && counted.offSchedule === 0,
  };
}
