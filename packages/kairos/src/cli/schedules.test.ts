import { describe, expect, it } from 'vitest';
import { jobSpecFromFlags, UsageError } from './options.ts';
import { withSchedule } from './schedules.ts';

describe('schedule flags', () => {
  const base = { handler: 'h', cron: '30 2 * * *', tz: 'Europe/Berlin' };

  it('builds the schedule policy and the DST rule', () => {
    const flags = {
      ...base,
      dst: 'literal',
      misfire: 'catch-up',
      maxCatchUp: '5',
      catchUpWindow: '2h',
      overlap: 'skip',
      startAt: '2030-01-01T00:00:00Z',
      endAt: '2030-02-01T00:00:00Z',
      jitter: '30s',
      maxRuns: '10',
    };
    const spec = withSchedule(jobSpecFromFlags('j', flags), flags);
    expect(spec.trigger).toEqual({
      kind: 'cron',
      cron: '30 2 * * *',
      timezone: 'Europe/Berlin',
      dst: 'literal',
    });
    expect(spec.schedule).toEqual({
      misfire: { policy: 'catch-up', maxCatchUp: 5, catchUpWindow: '2h' },
      overlap: 'skip',
      startAt: '2030-01-01T00:00:00.000Z',
      endAt: '2030-02-01T00:00:00.000Z',
      jitter: '30s',
      maxRuns: 10,
    });
    expect(withSchedule(jobSpecFromFlags('j', base), base).schedule).toBeUndefined();
  });

  it('--after makes a dependency trigger', () => {
    const flags = { handler: 'h', after: 'extract', on: 'always' };
    expect(withSchedule(jobSpecFromFlags('load', { ...flags, manual: true }), flags).trigger).toEqual({
      kind: 'after',
      job: 'extract',
      on: 'always',
    });
    const both = { handler: 'h', after: 'extract', every: '1m' };
    expect(() => withSchedule(jobSpecFromFlags('load', both), both)).toThrow(/choose one trigger/);
  });

  it.each([
    [{ on: 'success' }, /--on goes with --after/],
    [{ misfire: 'later' }, /--misfire/],
    [{ overlap: 'queue' }, /--overlap/],
    [{ maxCatchUp: '3' }, /--misfire catch-up/],
    [{ dst: 'literal', cron: undefined, tz: undefined, every: '1m' }, /--dst goes with --cron/],
    [{ dst: 'sometimes' }, /--dst/],
    [{ maxRuns: '0' }, /--max-runs/],
  ])('rejects %o', (extra, message) => {
    const flags = { ...base, ...extra };
    expect(() => withSchedule(jobSpecFromFlags('j', flags), flags)).toThrow(UsageError);
    expect(() => withSchedule(jobSpecFromFlags('j', flags), flags)).toThrow(message);
  });
});
