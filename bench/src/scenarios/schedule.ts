// Schedule accuracy: `count` recurring schedules, each firing every period (1 s where the contestant can),
// run for a window; each handler start is compared with its job's nominal fire time. Fires are checked
// per schedule: a nominal instant of the window with no handler call is missing, one with two is doubled.
import { latencyStats } from '../stats.ts';
import { now, sleep, until } from '../util.ts';
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
  missing: number;
  duplicates: number;
  complete: boolean;
}

/** Settling time after the schedules are created, before the measured window opens. */
const SETTLE_MS = 3000;
/** A per-minute window holds its minute at least this long before it closes, so that late fires still
 * fall in it (pg-boss's came up to 10.4 s late). */
const LATE_ALLOWANCE_MS = 30_000;

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

/** Runs the schedule-accuracy scenario on queue `schedule`. */
export async function schedule(ctx: RunContext, count: number, seconds: number): Promise<ScheduleResult> {
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
  // Per-minute schedules fire once in the window, at its minute: until the window opens nothing fires,
  // and once every schedule has run, the rest of the window only watches for doubled fires. Once-only
  // sections that end before the window opens, or before it closes, run in that idle time.
  if (ctx.idle && periodMs >= 60_000) {
    await ctx.idle.fill(from, `the wait for ${ctx.contestant.name}'s schedule window`);
    await sleep(Math.max(0, from - now()));
    if (await until(async () => (await workers.firedSince(from)) >= count, 250, to - now()))
      await ctx.idle.fill(to, `${ctx.contestant.name}'s schedule window, after its minute's fires`);
  }
  // The last fires of the window get a second to run before the schedules go.
  await sleep(Math.max(0, to - now() + 1000));
  await ctx.timings.time('schedules remove', () =>
    ctx.client.call('unschedule', { queue: 'schedule', count }),
  );
  const handled = await workers.finish();

  const inWindow = handled.fires.filter(([, fireTime]) => fireTime >= from && fireTime < to);
  const distinct = new Map<string, number>();
  const phase = new Map<number, number>();
  for (const [i, fireTime, lateness] of inWindow) {
    const key = `${i}@${fireTime}`;
    if (!distinct.has(key)) distinct.set(key, lateness);
    phase.set(i, fireTime % periodMs);
  }
  // Per schedule, the nominal instants in [from, to) with the phase its fires showed (0 for a
  // schedule that never fired in the window: all its instants are missing).
  const slots = (offset: number) => {
    const first = Math.ceil((from - offset) / periodMs) * periodMs + offset;
    return first >= to ? 0 : Math.floor((to - 1 - first) / periodMs) + 1;
  };
  let expected = 0;
  for (let i = 0; i < count; i++) expected += slots(phase.get(i) ?? 0);
  const stats = latencyStats([...distinct.values()]);
  return {
    schedules: count,
    periodMs,
    seconds,
    expected,
    fires: distinct.size,
    p50: stats.p50,
    p99: stats.p99,
    max: stats.max,
    missing: expected - distinct.size,
    duplicates: inWindow.length - distinct.size,
    complete: distinct.size === expected,
  };
}
