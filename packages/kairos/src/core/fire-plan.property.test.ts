import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CalendarDefinition, compileCalendar } from './calendar.ts';
import { planFires, type SkippedRange } from './fire-plan.ts';
import { latestFireIn } from './fire-search.ts';
import { compileSchedule } from './schedule-policy.ts';
import { compileTrigger, nextFireAfter, type Trigger } from './trigger.ts';

const T0 = Date.UTC(2026, 2, 20);
const MIN = 60_000;

/** Every fire in [from, to] by stepping forward: the reference the searches must agree with. */
function enumerate(trigger: Trigger, from: number, to: number): number[] {
  const out: number[] = [];
  for (let t = nextFireAfter(trigger, from - 1); t !== null && t <= to; t = nextFireAfter(trigger, t))
    out.push(t);
  return out;
}

const triggers = fc.constantFrom(
  compileTrigger({ kind: 'every', every: '7m' }),
  compileTrigger({ kind: 'every', every: '1h', startAt: '2026-01-01T00:00:30Z' }),
  compileTrigger({ kind: 'cron', cron: '*/10 * * * *', timezone: 'Europe/Berlin' }),
  compileTrigger({ kind: 'cron', cron: '30 2 * * *', timezone: 'Europe/Berlin' }),
  compileTrigger({ kind: 'cron', cron: '30 2 * * *', timezone: 'Europe/Berlin', dst: 'literal' }),
  compileTrigger({ kind: 'cron', cron: '0 0,30 1-3 * * *', timezone: 'America/New_York' }),
  compileTrigger({ kind: 'cron', cron: '15 * * * *', timezone: 'Australia/Sydney' }),
);
const weekends = compileCalendar({ name: 'weekends', timezone: 'Europe/Berlin', weekdays: [0, 6] });
const offsets = fc.integer({ min: 0, max: 14 * 24 * 60 }).map((m) => m * MIN);

describe('fire searches agree with stepping forward', () => {
  it('latestFireIn is the last fire of the range', () => {
    fc.assert(
      fc.property(triggers, offsets, fc.integer({ min: 0, max: 3 * 24 * 60 }), (trigger, start, length) => {
        const from = T0 + start;
        const to = from + length * MIN;
        const all = enumerate(trigger, from, to);
        expect(latestFireIn(trigger, from, to)).toBe(all.length === 0 ? null : all[all.length - 1]);
      }),
      { numRuns: 120 },
    );
  });
});

describe('plans account for every fire', () => {
  it('each fire from due to now runs once or is in exactly one skipped range, whatever the policy', () => {
    fc.assert(
      fc.property(
        triggers,
        offsets,
        fc.integer({ min: 0, max: 2 * 24 * 60 }),
        fc.constantFrom('skip', 'run-once', 'catch-up') as fc.Arbitrary<'skip' | 'run-once' | 'catch-up'>,
        fc.integer({ min: 1, max: 20 }),
        fc.boolean(),
        (trigger, start, late, policy, maxCatchUp, withCalendar) => {
          const due = nextFireAfter(trigger, T0 + start)!;
          const now = due + late * MIN;
          const schedule = compileSchedule({
            misfire: policy === 'catch-up' ? { policy, maxCatchUp, catchUpWindow: '6h' } : { policy },
          });
          const calendars: CalendarDefinition[] = withCalendar ? [weekends] : [];
          const plan = planFires({ id: 1, trigger, schedule, calendars }, due, now, {
            misfireGraceMs: 5 * MIN,
            maxFires: 10_000,
          });
          // Fires: real fire times, oldest first, none twice, none in the future.
          const all = enumerate(trigger, due, now);
          expect(plan.fires.every((f) => all.includes(f))).toBe(true);
          expect([...plan.fires].sort((a, b) => a - b)).toEqual(plan.fires);
          expect(new Set(plan.fires).size).toBe(plan.fires.length);
          // Every fire up to the next one is either run or skipped, never both.
          const horizon = plan.next === null ? now : plan.next - 1;
          const inRange = (t: number, r: SkippedRange) => r.first <= t && t <= r.last;
          for (const t of enumerate(trigger, due, Math.min(now, horizon))) {
            const ran = plan.fires.includes(t) ? 1 : 0;
            const skipped = plan.skipped.filter((r) => inRange(t, r)).length;
            expect(ran + skipped).toBe(1);
          }
          // Counted ranges hold exactly their count.
          for (const range of plan.skipped) {
            if (range.count !== null && range.reason !== 'calendar') {
              expect(enumerate(trigger, range.first, range.last)).toHaveLength(range.count);
            }
          }
          // The next fire is after now (or after the last planned fire), and a real fire time.
          if (plan.next !== null) {
            expect(plan.next).toBeGreaterThan(plan.fires[plan.fires.length - 1] ?? due - 1);
            expect(nextFireAfter(trigger, plan.next - 1)).toBe(plan.next);
          }
          // Policies: run-once runs at most one missed fire; catch-up at most its cap beyond the grace.
          if (late * MIN > 5 * MIN && policy === 'run-once') expect(plan.fires.length).toBeLessThanOrEqual(1);
          if (late * MIN > 5 * MIN && policy === 'catch-up')
            expect(plan.fires.length).toBeLessThanOrEqual(maxCatchUp);
        },
      ),
      { numRuns: 150 },
    );
  });
});
