import { describe, expect, it } from 'vitest';
import type { KairosError } from '../errors.ts';
import { compileTrigger, firstFire, nextFireAfter, type Trigger } from './trigger.ts';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The next `count` fires after `from`. */
function fires(trigger: Trigger, from: string, count: number): (string | null)[] {
  const out: (string | null)[] = [];
  let after = at(from);
  for (let i = 0; i < count; i++) {
    const next = nextFireAfter(trigger, after);
    out.push(iso(next));
    if (next === null) break;
    after = next;
  }
  return out;
}

const cron = (expression: string, timezone?: string) =>
  compileTrigger(
    timezone ? { kind: 'cron', cron: expression, timezone } : { kind: 'cron', cron: expression },
  );

describe('cron', () => {
  it('fires on seconds in a time zone without DST', () => {
    expect(fires(cron('*/5 * * * * *', 'Asia/Shanghai'), '2026-03-01T00:00:01Z', 3)).toEqual([
      '2026-03-01T00:00:05.000Z',
      '2026-03-01T00:00:10.000Z',
      '2026-03-01T00:00:15.000Z',
    ]);
    // 09:00 in Shanghai is 01:00 UTC, every day of the year.
    expect(fires(cron('0 9 * * *', 'Asia/Shanghai'), '2026-06-30T02:00:00Z', 2)).toEqual([
      '2026-07-01T01:00:00.000Z',
      '2026-07-02T01:00:00.000Z',
    ]);
  });

  it('accepts macros and five fields, and answers strictly after the instant', () => {
    expect(fires(cron('@daily'), '2026-01-01T00:00:00Z', 1)).toEqual(['2026-01-02T00:00:00.000Z']);
    expect(fires(cron('30 2 * * 1'), '2026-11-23T02:30:00Z', 1)).toEqual(['2026-11-30T02:30:00.000Z']);
  });

  describe('DST in Europe/Berlin (spring forward 2026-03-29 02:00→03:00, fall back 2026-10-25 03:00→02:00)', () => {
    it('a fixed-time job at a wall time that does not exist fires once, right after the gap', () => {
      // 02:30 does not exist on 29 March; the job fires at 03:00 CEST (01:00 UTC), then normally.
      expect(fires(cron('30 2 * * *', 'Europe/Berlin'), '2026-03-28T12:00:00Z', 3)).toEqual([
        '2026-03-29T01:00:00.000Z',
        '2026-03-30T00:30:00.000Z',
        '2026-03-31T00:30:00.000Z',
      ]);
    });

    it('a fixed-time job at a wall time that occurs twice fires once, at the first occurrence', () => {
      // 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET) on 25 October.
      expect(fires(cron('30 2 * * *', 'Europe/Berlin'), '2026-10-24T12:00:00Z', 3)).toEqual([
        '2026-10-25T00:30:00.000Z',
        '2026-10-26T01:30:00.000Z',
        '2026-10-27T01:30:00.000Z',
      ]);
    });

    it('a job every 30 minutes follows absolute time: no burst in the gap, no gap in the repeat', () => {
      expect(fires(cron('0,30 * * * *', 'Europe/Berlin'), '2026-03-29T00:15:00Z', 3)).toEqual([
        '2026-03-29T00:30:00.000Z', // 01:30 CET
        '2026-03-29T01:00:00.000Z', // 03:00 CEST: 02:00 and 02:30 do not exist
        '2026-03-29T01:30:00.000Z',
      ]);
      expect(fires(cron('0,30 * * * *', 'Europe/Berlin'), '2026-10-25T00:15:00Z', 4)).toEqual([
        '2026-10-25T00:30:00.000Z', // 02:30 CEST
        '2026-10-25T01:00:00.000Z', // 02:00 CET
        '2026-10-25T01:30:00.000Z', // 02:30 CET
        '2026-10-25T02:00:00.000Z',
      ]);
    });
  });

  it('America/New_York: a 06:00 weekly job runs once on each DST weekend', () => {
    // Sunday 2026-03-08 (spring forward) and Sunday 2026-11-01 (fall back).
    expect(fires(cron('0 6 * * 0', 'America/New_York'), '2026-03-07T00:00:00Z', 2)).toEqual([
      '2026-03-08T10:00:00.000Z', // EDT
      '2026-03-15T10:00:00.000Z',
    ]);
    expect(fires(cron('0 6 * * 0', 'America/New_York'), '2026-10-31T00:00:00Z', 2)).toEqual([
      '2026-11-01T11:00:00.000Z', // EST
      '2026-11-08T11:00:00.000Z',
    ]);
  });

  it('rejects what cannot fire or cannot be read, with a code', () => {
    const code = (spec: Parameters<typeof compileTrigger>[0]) => {
      try {
        compileTrigger(spec);
        return 'accepted';
      } catch (error) {
        return (error as KairosError).code;
      }
    };
    expect(code({ kind: 'cron', cron: 'every minute' })).toBe('INVALID_CRON');
    expect(code({ kind: 'cron', cron: '0 0 30 2 *' })).toBe('INVALID_CRON');
    expect(code({ kind: 'cron', cron: '* * * * *', timezone: 'Mars/Olympus' })).toBe('INVALID_TIMEZONE');
    expect(code({ kind: 'every', every: -5 })).toBe('INVALID_DURATION');
    expect(code({ kind: 'every', every: '500ms' })).toBe('INVALID_DURATION');
    expect(code({ kind: 'at', at: 'tomorrow' })).toBe('INVALID_TRIGGER');
    expect(code({ kind: 'manual', cron: '* * * * *' } as never)).toBe('INVALID_TRIGGER');
  });
});

describe('every, at, delay, manual', () => {
  it('every fires at anchor + k × period, in absolute time', () => {
    const every = compileTrigger({ kind: 'every', every: '2s' });
    expect(fires(every, '2026-10-25T00:59:59.500Z', 2)).toEqual([
      '2026-10-25T01:00:00.000Z',
      '2026-10-25T01:00:02.000Z',
    ]);
    const anchored = compileTrigger({ kind: 'every', every: '1h', startAt: '2030-01-01T00:30:00Z' });
    expect(fires(anchored, '2026-01-01T00:00:00Z', 2)).toEqual([
      '2030-01-01T00:30:00.000Z',
      '2030-01-01T01:30:00.000Z',
    ]);
  });

  it('at fires once, even when already past; delay starts now; manual never fires by itself', () => {
    const now = at('2026-05-01T00:00:00Z');
    const past = compileTrigger({ kind: 'at', at: '2026-04-01T00:00:00Z' });
    expect(firstFire(past, now)).toBe(at('2026-04-01T00:00:00Z'));
    expect(nextFireAfter(past, now)).toBeNull();
    expect(firstFire(compileTrigger({ kind: 'delay', delay: '10s' }), now)).toBe(now);
    expect(firstFire(compileTrigger({ kind: 'manual' }), now)).toBeNull();
  });
});
