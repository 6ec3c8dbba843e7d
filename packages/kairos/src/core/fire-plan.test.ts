import { describe, expect, it } from 'vitest';
import { firstScheduledFire, planFires, planResume } from './fire-plan.ts';
import { countFires, latestFireIn, previousFire } from './fire-search.ts';
import { jitterOf } from './jitter.ts';
import { compileSchedule } from './schedule-policy.ts';
import { compileTrigger } from './trigger.ts';

const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;
const HOUR = 60 * MIN;
const options = { misfireGraceMs: MIN, maxFires: 100 };
const perMinute = compileTrigger({ kind: 'cron', cron: '* * * * *' });
const perSecond = compileTrigger({ kind: 'every', every: '1s' });

function job(misfire?: Parameters<typeof compileSchedule>[0]) {
  return { id: 7, trigger: perMinute, schedule: compileSchedule(misfire) };
}

describe('fire search', () => {
  it('finds the latest fire of a range and the one before, for cron and every', () => {
    expect(latestFireIn(perMinute, T0, T0 + 3 * HOUR + 30_000)).toBe(T0 + 3 * HOUR);
    expect(latestFireIn(perMinute, T0 + 1, T0 + 59_999)).toBeNull();
    expect(latestFireIn(perSecond, T0, T0 + 86_400_500)).toBe(T0 + 86_400_000);
    expect(previousFire(perMinute, T0 + HOUR, T0)).toBe(T0 + HOUR - MIN);
    expect(previousFire(perMinute, T0, T0)).toBeNull();
    const daily = compileTrigger({ kind: 'cron', cron: '0 9 * * *', timezone: 'Europe/Berlin' });
    expect(latestFireIn(daily, T0, T0 + 400 * 86_400_000)).toBe(Date.UTC(2027, 1, 4, 8));
  });

  it('counts every exactly and cron up to its limit', () => {
    expect(countFires(perSecond, T0, T0 + 86_400_000)).toBe(86_401);
    expect(countFires(perMinute, T0, T0 + 10 * MIN)).toBe(11);
    expect(countFires(perMinute, T0, T0 + HOUR)).toBeNull();
  });
});

describe('misfire policies after 3 hours down (a per-minute job)', () => {
  const due = T0;
  const now = T0 + 3 * HOUR + 30_000;

  it('skip (default): records the misses as one range and runs the fires within the grace', () => {
    const plan = planFires(job(), due, now, options);
    expect(plan.fires).toEqual([T0 + 3 * HOUR]);
    expect(plan.skipped).toEqual([{ reason: 'misfire', first: T0, last: T0 + 3 * HOUR - MIN, count: null }]);
    expect(plan.next).toBe(T0 + 3 * HOUR + MIN);
  });

  it('run-once: one run for the latest missed fire', () => {
    const plan = planFires(job({ misfire: { policy: 'run-once' } }), due, now, options);
    expect(plan.fires).toEqual([T0 + 3 * HOUR]);
    expect(plan.skipped).toEqual([{ reason: 'misfire', first: T0, last: T0 + 3 * HOUR - MIN, count: null }]);
    expect(plan.next).toBe(T0 + 3 * HOUR + MIN);
  });

  it('catch-up: the most recent missed fires within the window, oldest first, capped', () => {
    const plan = planFires(
      job({ misfire: { policy: 'catch-up', maxCatchUp: 5, catchUpWindow: '1h' } }),
      due,
      now,
      options,
    );
    expect(plan.fires).toEqual([-4, -3, -2, -1, 0].map((k) => T0 + 3 * HOUR + k * MIN));
    expect(plan.skipped).toEqual([
      { reason: 'misfire', first: T0, last: T0 + 3 * HOUR - 5 * MIN, count: null },
    ]);
    expect(plan.next).toBe(T0 + 3 * HOUR + MIN);
  });

  it('catch-up runs every missed fire when they fit the cap and the window', () => {
    const plan = planFires(job({ misfire: { policy: 'catch-up', maxCatchUp: 500 } }), due, now, options);
    expect(plan.fires).toHaveLength(181);
    expect(plan.fires[0]).toBe(T0);
    expect(plan.skipped).toEqual([]);
  });

  it('a job late by less than the grace is no misfire: every fire runs, each once', () => {
    const plan = planFires(job({ misfire: { policy: 'run-once' } }), T0, T0 + 50_000, {
      misfireGraceMs: 2 * MIN,
      maxFires: 100,
    });
    expect(plan.fires).toEqual([T0]);
    expect(plan.skipped).toEqual([]);
  });

  it('one-shot fires never misfire: they run late, once', () => {
    const at = compileTrigger({ kind: 'at', at: new Date(T0).toISOString() });
    const plan = planFires(
      { id: 1, trigger: at, schedule: compileSchedule(undefined) },
      T0,
      T0 + 5 * HOUR,
      options,
    );
    expect(plan).toMatchObject({ fires: [T0], skipped: [], next: null });
  });
});

describe('window, run cap and jitter', () => {
  it('ends the schedule at endAt and records the first fire past it', () => {
    const schedule = compileSchedule({ endAt: new Date(T0 + 2 * MIN).toISOString() });
    const plan = planFires({ id: 1, trigger: perMinute, schedule }, T0 + MIN, T0 + 2 * MIN, options);
    expect(plan.fires).toEqual([T0 + MIN, T0 + 2 * MIN]);
    expect(plan.next).toBeNull();
    expect(plan.skipped).toEqual([
      { reason: 'outside-window', first: T0 + 3 * MIN, last: T0 + 3 * MIN, count: 1 },
    ]);
  });

  it('starts at startAt', () => {
    const schedule = compileSchedule({ startAt: new Date(T0 + HOUR).toISOString() });
    expect(firstScheduledFire(perMinute, schedule, T0)).toBe(T0 + HOUR);
    expect(firstScheduledFire(perMinute, schedule, T0 + 2 * HOUR)).toBe(T0 + 2 * HOUR + MIN);
    const ended = compileSchedule({ endAt: new Date(T0 + HOUR).toISOString() });
    expect(firstScheduledFire(perMinute, ended, T0 + 2 * HOUR)).toBeNull();
  });

  it('caps the runs: cuts what goes past maxRuns, then ends on the next fire', () => {
    const schedule = compileSchedule({ maxRuns: 3 });
    const first = planFires({ id: 1, trigger: perSecond, schedule, runsFired: 1 }, T0, T0 + 4000, options);
    expect(first.fires).toEqual([T0, T0 + 1000]);
    expect(first.skipped).toEqual([{ reason: 'max-runs', first: T0 + 2000, last: T0 + 4000, count: 3 }]);
    const last = planFires(
      { id: 1, trigger: perSecond, schedule, runsFired: 3 },
      T0 + 5000,
      T0 + 5000,
      options,
    );
    expect(last).toEqual({
      fires: [],
      availableAt: [],
      next: null,
      skipped: [{ reason: 'max-runs', first: T0 + 5000, last: T0 + 5000, count: 1 }],
    });
  });

  it('jitter is reproducible per job and fire, within its bound, and differs between fires', () => {
    const schedule = compileSchedule({ jitter: '30s' });
    const plan = planFires({ id: 42, trigger: perSecond, schedule }, T0, T0 + 9000, options);
    const delays = plan.availableAt.map((at, i) => at - plan.fires[i]!);
    expect(delays.every((d) => d >= 0 && d <= 30_000)).toBe(true);
    expect(new Set(delays).size).toBeGreaterThan(5);
    expect(planFires({ id: 42, trigger: perSecond, schedule }, T0, T0 + 9000, options)).toEqual(plan);
    expect(jitterOf(42, T0, 30_000)).toBe(delays[0]);
    expect(jitterOf(43, T0, 30_000)).not.toBe(delays[0]);
  });
});

describe('pause and resume', () => {
  it('records the fires missed while paused as one counted range and resumes after now', () => {
    const schedule = compileSchedule(undefined);
    const resume = planResume(perSecond, schedule, T0 + 1000, T0 + 600_500);
    expect(resume).toEqual({
      next: T0 + 601_000,
      skipped: { reason: 'paused', first: T0 + 1000, last: T0 + 600_000, count: 600 },
    });
    expect(planResume(perSecond, schedule, T0 + 9000, T0 + 500)).toEqual({ next: T0 + 9000, skipped: null });
    expect(planResume(perSecond, schedule, null, T0 + 500)).toEqual({ next: T0 + 1000, skipped: null });
  });
});

describe('fire ahead', () => {
  const every = { id: 7, trigger: perSecond, schedule: compileSchedule({ jitter: '200ms' }) };

  it('plans the fires due within aheadMs after now, each available at its fire time plus jitter', () => {
    expect(planFires(every, T0 + 1000, T0 + 499, { ...options, aheadMs: 500 })).toMatchObject({
      fires: [],
      next: T0 + 1000,
    });
    const plan = planFires(every, T0 + 1000, T0 + 500, { ...options, aheadMs: 1500 });
    expect(plan.fires).toEqual([T0 + 1000, T0 + 2000]);
    expect(plan.availableAt).toEqual(plan.fires.map((f) => f + jitterOf(7, f, 200)));
    expect(plan.next).toBe(T0 + 3000);
    expect(plan.skipped).toEqual([]);
  });

  it('judges misfires against now, not against the window', () => {
    // 61 s behind with a grace of 60 s: the one fire past the grace is a misfire, the rest run.
    const plan = planFires({ id: 7, trigger: perSecond }, T0, T0 + 61_000, { ...options, aheadMs: 500 });
    expect(plan.skipped).toMatchObject([{ reason: 'misfire', first: T0, last: T0, count: 1 }]);
    expect(plan.fires[0]).toBe(T0 + 1000);
    expect(plan.fires).toHaveLength(61);
    expect(plan.next).toBe(T0 + 62_000);
  });
});

describe('overload (the node is far behind)', () => {
  const everySecond = (misfire?: Parameters<typeof compileSchedule>[0]) => ({
    id: 7,
    trigger: perSecond,
    schedule: compileSchedule(misfire),
  });
  const overloaded = { ...options, overloaded: true };

  it('runs only the latest due fire and sheds the older ones as one counted overloaded range', () => {
    const plan = planFires(everySecond(), T0, T0 + 5500, overloaded);
    expect(plan.fires).toEqual([T0 + 5000]);
    expect(plan.skipped).toEqual([{ reason: 'overloaded', first: T0, last: T0 + 4000, count: 5 }]);
    expect(plan.next).toBe(T0 + 6000);
  });

  it('sheds nothing when one fire is due, and nothing when the node is not overloaded', () => {
    expect(planFires(everySecond(), T0, T0 + 500, overloaded)).toMatchObject({ fires: [T0], skipped: [] });
    expect(planFires(everySecond(), T0, T0 + 5500, options).fires).toHaveLength(6);
  });

  it('leaves the misfire policy first: skip drops what is past the grace, the overload sheds the rest', () => {
    const plan = planFires(everySecond(), T0, T0 + 2 * MIN, overloaded);
    expect(plan.fires).toEqual([T0 + 2 * MIN]);
    expect(plan.skipped).toEqual([
      { reason: 'misfire', first: T0, last: T0 + MIN - 1000, count: 60 },
      { reason: 'overloaded', first: T0 + MIN, last: T0 + 2 * MIN - 1000, count: 60 },
    ]);
  });

  it('never sheds a catch-up job: it asked for its missed fires', () => {
    const plan = planFires(everySecond({ misfire: { policy: 'catch-up' } }), T0, T0 + 5500, overloaded);
    expect(plan.fires).toHaveLength(6);
    expect(plan.skipped).toEqual([]);
  });

  it('sheds up to endAt only; what is after it stays outside the window', () => {
    const job = { ...everySecond(), schedule: compileSchedule({ endAt: new Date(T0 + 3000).toISOString() }) };
    const plan = planFires(job, T0, T0 + 5500, overloaded);
    expect(plan.fires).toEqual([T0 + 3000]);
    expect(plan.skipped[0]).toEqual({ reason: 'overloaded', first: T0, last: T0 + 2000, count: 3 });
    expect(plan.next).toBeNull();
  });
});
