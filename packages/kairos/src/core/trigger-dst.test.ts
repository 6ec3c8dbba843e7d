import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ReferencePattern, referenceNextFire } from './dst-reference.ts';
import { previewFires } from './preview.ts';
import { compileSchedule } from './schedule-policy.ts';
import { compileTrigger, nextFireAfter, type Trigger } from './trigger.ts';

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

function fires(trigger: Trigger, from: string, count: number): string[] {
  const out: string[] = [];
  let t: number | null = Date.parse(from);
  for (let i = 0; i < count && t !== null; i++) {
    t = nextFireAfter(trigger, t);
    if (t !== null) out.push(iso(t)!);
  }
  return out;
}

const cron = (expression: string, timezone: string, dst?: 'literal' | 'once-per-day') =>
  compileTrigger(
    dst ? { kind: 'cron', cron: expression, timezone, dst } : { kind: 'cron', cron: expression, timezone },
  );

describe('DST rules on spring-forward and fall-back days', () => {
  // Europe/Berlin 2026: 02:00 → 03:00 on 29 March, 03:00 → 02:00 on 25 October.
  it('once-per-day (default): 02:30 Berlin fires after the gap and once on the repeated hour', () => {
    const job = cron('30 2 * * *', 'Europe/Berlin');
    expect(fires(job, '2026-03-28T12:00:00Z', 2)).toEqual([
      '2026-03-29T01:00:00.000Z', // 03:00 CEST: the first instant after the gap
      '2026-03-30T00:30:00.000Z',
    ]);
    expect(fires(job, '2026-10-24T12:00:00Z', 2)).toEqual([
      '2026-10-25T00:30:00.000Z', // 02:30 CEST, the first occurrence only
      '2026-10-26T01:30:00.000Z',
    ]);
  });

  it('literal: 02:30 Berlin is skipped on spring-forward day and fires twice on fall-back day', () => {
    const job = cron('30 2 * * *', 'Europe/Berlin', 'literal');
    expect(fires(job, '2026-03-28T12:00:00Z', 1)).toEqual(['2026-03-30T00:30:00.000Z']);
    expect(fires(job, '2026-10-24T12:00:00Z', 3)).toEqual([
      '2026-10-25T00:30:00.000Z',
      '2026-10-25T01:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
    ]);
  });

  it('America/New_York 01:30 on fall-back day: once by default, twice when literal', () => {
    expect(fires(cron('30 1 * * *', 'America/New_York'), '2026-10-31T12:00:00Z', 2)).toEqual([
      '2026-11-01T05:30:00.000Z',
      '2026-11-02T06:30:00.000Z',
    ]);
    expect(fires(cron('30 1 * * *', 'America/New_York', 'literal'), '2026-10-31T12:00:00Z', 2)).toEqual([
      '2026-11-01T05:30:00.000Z',
      '2026-11-01T06:30:00.000Z',
    ]);
  });

  it('every-N schedules follow absolute time across both transitions: no gap, no burst', () => {
    for (const trigger of [
      cron('*/15 * * * *', 'Europe/Berlin'),
      cron('*/15 * * * *', 'Europe/Berlin', 'literal'),
      compileTrigger({ kind: 'every', every: '15m' }),
    ]) {
      for (const day of ['2026-03-29T00:00:00Z', '2026-10-25T00:00:00Z']) {
        const times = fires(trigger, day, 12).map((t) => Date.parse(t));
        const gaps = times.slice(1).map((t, i) => t - times[i]!);
        expect(new Set(gaps)).toEqual(new Set([15 * 60_000]));
      }
    }
  });

  it('Asia/Shanghai has no DST: the same local time every day', () => {
    expect(fires(cron('30 2 * * *', 'Asia/Shanghai'), '2026-03-28T00:00:00Z', 3)).toEqual([
      '2026-03-28T18:30:00.000Z',
      '2026-03-29T18:30:00.000Z',
      '2026-03-30T18:30:00.000Z',
    ]);
  });

  it('a preview marks the fires a DST rule moves, repeats or drops', () => {
    const schedule = compileSchedule(undefined);
    const from = Date.parse('2026-03-28T12:00:00Z');
    const moved = previewFires({ trigger: cron('30 2 * * *', 'Europe/Berlin'), schedule }, from, 2);
    expect(moved.fires[0]).toEqual({
      fireTime: '2026-03-29T01:00:00.000Z',
      runAt: '2026-03-29T01:00:00.000Z',
      note: 'dst-moved',
    });
    expect(moved.fires[1]!.note).toBeUndefined();
    const fallBack = Date.parse('2026-10-24T12:00:00Z');
    const literal = previewFires(
      { trigger: cron('30 2 * * *', 'Europe/Berlin', 'literal'), schedule },
      fallBack,
      2,
    );
    expect(literal.fires.map((f) => f.note)).toEqual([undefined, 'dst-repeated']);
    const once = previewFires({ trigger: cron('30 2 * * *', 'Europe/Berlin'), schedule }, fallBack, 2);
    expect(once.skipped).toEqual([{ fireTime: '2026-10-25T01:30:00.000Z', reason: 'dst' }]);
  });
});

// Property tests against the independent reference (dst-reference.ts).
const ZONES = ['Europe/Berlin', 'America/New_York', 'Australia/Sydney', 'Asia/Shanghai', 'UTC'] as const;
// Around each 2026 transition (and Shanghai's nothing): the instants where the rules matter.
const TRANSITIONS = [
  '2026-03-29T01:00:00Z',
  '2026-10-25T01:00:00Z',
  '2026-03-08T07:00:00Z',
  '2026-11-01T06:00:00Z',
  '2026-04-04T16:00:00Z',
  '2026-10-03T16:00:00Z',
].map(Date.parse);

type Field = readonly [string, number[]];
const range = (from: number, to: number, step = 1) =>
  Array.from({ length: Math.floor((to - from) / step) + 1 }, (_, i) => from + i * step);
const SECONDS: Field[] = [
  ['0', [0]],
  ['0,30', [0, 30]],
  ['*/20', [0, 20, 40]],
];
const MINUTES: Field[] = [
  ['0', [0]],
  ['30', [30]],
  ['15,45', [15, 45]],
  ['*/20', [0, 20, 40]],
];
const HOURS: Field[] = [
  ['2', [2]],
  ['1,2', [1, 2]],
  ['2-3', [2, 3]],
  ['3', [3]],
  ['1', [1]],
  ['*/6', range(0, 18, 6)],
  ['*', range(0, 23)],
];

const pattern = fc
  .tuple(fc.constantFrom(...SECONDS), fc.constantFrom(...MINUTES), fc.constantFrom(...HOURS))
  .map(([s, m, h]): { cron: string; reference: ReferencePattern } => ({
    cron: `${s[0]} ${m[0]} ${h[0]} * * *`,
    reference: {
      seconds: s[1],
      minutes: m[1],
      hours: h[1],
      fixedTime: ![s[0], m[0], h[0]].some((f) => /[*/]/.test(f)),
    },
  }));
const instant = fc.oneof(
  fc
    .tuple(fc.constantFrom(...TRANSITIONS), fc.integer({ min: -36 * 3600, max: 36 * 3600 }))
    .map(([t, s]) => t + s * 1000),
  fc
    .integer({
      min: Date.parse('2026-01-01T00:00:00Z') / 1000,
      max: Date.parse('2026-12-31T00:00:00Z') / 1000,
    })
    .map((s) => s * 1000),
);

describe('trigger math against an independent reference', () => {
  it('once-per-day (default, croner rule): agrees with the reference for random patterns, zones and instants', () => {
    fc.assert(
      fc.property(pattern, fc.constantFrom(...ZONES), instant, (p, zone, at) => {
        const ours = nextFireAfter(cron(p.cron, zone), at);
        expect(iso(ours)).toBe(iso(referenceNextFire(p.reference, zone, at, false)));
      }),
      { numRuns: 150 },
    );
  });

  it('literal: agrees with the reference (skip what does not exist, fire both occurrences)', () => {
    fc.assert(
      fc.property(pattern, fc.constantFrom(...ZONES), instant, (p, zone, at) => {
        const ours = nextFireAfter(cron(p.cron, zone, 'literal'), at);
        expect(iso(ours)).toBe(iso(referenceNextFire(p.reference, zone, at, true)));
      }),
      { numRuns: 150 },
    );
  });

  it('once-per-day fires a fixed-time pattern exactly once per local day on every transition day', () => {
    fc.assert(
      fc.property(
        pattern.filter(
          (p) =>
            p.reference.fixedTime &&
            p.reference.hours.length === 1 &&
            p.reference.minutes.length === 1 &&
            p.reference.seconds.length === 1,
        ),
        fc.constantFrom(...ZONES),
        fc.constantFrom(...TRANSITIONS),
        (p, zone, transition) => {
          const trigger = cron(p.cron, zone);
          const times = fires(trigger, new Date(transition - 3 * 86_400_000).toISOString(), 6).map(
            Date.parse,
          );
          const days = times.map((t) => new Intl.DateTimeFormat('en-CA', { timeZone: zone }).format(t));
          expect(new Set(days).size).toBe(days.length);
        },
      ),
      { numRuns: 60 },
    );
  });
});
