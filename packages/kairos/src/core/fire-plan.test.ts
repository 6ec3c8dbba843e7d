import { describe, expect, it } from 'vitest';
import { planFires } from './fire-plan.ts';
import { compileTrigger } from './trigger.ts';

const everySecond = compileTrigger({ kind: 'every', every: '1s' });
const options = { misfireGraceMs: 60_000, maxFires: 100 };

describe('planFires', () => {
  it('fires each due time once, oldest first, and sets the next one', () => {
    expect(planFires(everySecond, 10_000, 12_500, options)).toEqual({
      fires: [10_000, 11_000, 12_000],
      skipped: null,
      next: 13_000,
    });
    expect(planFires(everySecond, 13_000, 12_500, options)).toEqual({
      fires: [],
      skipped: null,
      next: 13_000,
    });
  });

  it('skips what is older than the grace without enumerating it (a day of per-second fires)', () => {
    const day = 86_400_000;
    const plan = planFires(everySecond, 0, day, options);
    expect(plan.skipped).toEqual({ from: 0, to: day - 60_000 });
    // The fires within the grace run, each once: 60 s of them and the one due now.
    expect(plan.fires).toHaveLength(61);
    expect(plan.fires[0]).toBe(day - 60_000);
    expect(plan.next).toBe(day + 1000);
  });

  it('plans at most maxFires per call; the next call carries on where it stopped', () => {
    const first = planFires(everySecond, 0, 150_000, { misfireGraceMs: 1_000_000, maxFires: 100 });
    expect(first.fires).toHaveLength(100);
    expect(first.next).toBe(100_000);
    const second = planFires(everySecond, first.next!, 150_000, { misfireGraceMs: 1_000_000, maxFires: 100 });
    expect(second.fires[0]).toBe(100_000);
    expect(second.fires.at(-1)).toBe(150_000);
  });

  it('runs a one-shot or fixed-delay fire late, once, whatever its lateness', () => {
    const once = compileTrigger({ kind: 'at', at: '2026-01-01T00:00:00Z' });
    const due = Date.parse('2026-01-01T00:00:00Z');
    expect(planFires(once, due, due + 3 * 3_600_000, options)).toEqual({
      fires: [due],
      skipped: null,
      next: null,
    });
  });
});
