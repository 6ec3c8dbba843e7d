import { describe, expect, it } from 'vitest';
import { compileCalendar, exclusionOf } from './calendar.ts';
import { planFires } from './fire-plan.ts';
import { compileSchedule } from './schedule-policy.ts';
import { compileTrigger } from './trigger.ts';

const berlin = compileCalendar({
  name: 'berlin-office',
  timezone: 'Europe/Berlin',
  dates: ['2026-12-25'],
  periods: [{ from: '2026-12-28', to: '2026-12-31' }],
  weekdays: [0, 6],
  cron: '* 0-5 * * *',
});
const at = (iso: string) => Date.parse(iso);

describe('calendars', () => {
  it('excludes whole local days, periods and weekdays until the next local midnight', () => {
    // 25 Dec 2026 is a Friday; Berlin is UTC+1 in winter.
    expect(exclusionOf(berlin, at('2026-12-25T09:00:00Z'))).toEqual({ until: at('2026-12-25T23:00:00Z') });
    // 24 Dec 23:30 UTC is already 25 Dec in Berlin.
    expect(exclusionOf(berlin, at('2026-12-24T23:30:00Z'))?.until).toBe(at('2026-12-25T23:00:00Z'));
    expect(exclusionOf(berlin, at('2026-12-24T12:00:00Z'))).toBeNull();
    // Saturday and Sunday, one day at a time; the period ends at its last day.
    expect(exclusionOf(berlin, at('2026-12-26T12:00:00Z'))?.until).toBe(at('2026-12-26T23:00:00Z'));
    expect(exclusionOf(berlin, at('2026-12-29T12:00:00Z'))?.until).toBe(at('2026-12-31T23:00:00Z'));
  });

  it('excludes the fire times a cron expression matches, in the calendar zone', () => {
    expect(exclusionOf(berlin, at('2026-12-23T03:30:00Z'))).toEqual({
      until: at('2026-12-23T03:30:00Z') + 1,
    });
    expect(exclusionOf(berlin, at('2026-12-23T05:30:00Z'))).toBeNull();
  });

  it('rejects bad dates, periods, weekdays, zones and expressions with their codes', () => {
    expect(() => compileCalendar({ name: 'x', dates: ['2026-02-30'] })).toThrow(/dates\[0\]/);
    expect(() => compileCalendar({ name: 'x', periods: [{ from: '2026-02-03', to: '2026-02-01' }] })).toThrow(
      /periods/,
    );
    expect(() => compileCalendar({ name: 'x', weekdays: [7] })).toThrow(/weekdays/);
    expect(() => compileCalendar({ name: 'x', timezone: 'Mars/Base' })).toThrow(
      expect.objectContaining({ code: 'INVALID_TIMEZONE' }),
    );
    expect(() => compileCalendar({ name: 'x', cron: '99 * * * *' })).toThrow(
      expect.objectContaining({ code: 'INVALID_CRON' }),
    );
  });

  it('a plan jumps over an excluded day in one step and records it as one counted range', () => {
    const holiday = compileCalendar({ name: 'h', dates: ['2026-01-02'] });
    const trigger = compileTrigger({ kind: 'every', every: '2h' });
    const job = { id: 1, trigger, schedule: compileSchedule({ calendars: ['h'] }), calendars: [holiday] };
    const plan = planFires(job, at('2026-01-01T22:00:00Z'), at('2026-01-01T22:00:00Z'), {
      misfireGraceMs: 60_000,
      maxFires: 100,
    });
    expect(plan.fires).toEqual([at('2026-01-01T22:00:00Z')]);
    expect(plan.next).toBe(at('2026-01-03T00:00:00Z'));
    expect(plan.skipped).toEqual([
      {
        reason: 'calendar',
        first: at('2026-01-02T00:00:00Z'),
        last: at('2026-01-02T22:00:00Z'),
        count: 12,
        after: at('2026-01-01T22:00:00Z'),
      },
    ]);
  });
});
