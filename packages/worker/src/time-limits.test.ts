import { describe, expect, it } from 'vitest';
import { TimeLimits } from './time-limits.ts';

describe('TimeLimits', () => {
  it('shares one timer per deadline and calls back for each attempt still there at its deadline', async () => {
    const timedOut: string[] = [];
    const limits = new TimeLimits<string>((attempt) => timedOut.push(attempt));
    const now = Date.now();
    for (const attempt of ['a', 'b', 'c']) limits.add(attempt, now + 30, now);
    // A deadline far enough away that a busy machine cannot reach it while the test waits.
    limits.add('d', now + 600_000, now);
    expect(limits.timers).toBe(2);
    limits.remove('b', now + 30);
    while (timedOut.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(timedOut).toEqual(['a', 'c']);
    expect(limits.timers).toBe(1);
    // The last attempt of a deadline takes its timer with it: nothing is left to call back.
    limits.remove('d', now + 600_000);
    expect(limits.timers).toBe(0);
  });

  it('ignores the removal of an attempt it does not hold', () => {
    const limits = new TimeLimits<string>(() => {});
    const now = Date.now();
    limits.add('a', now + 1000, now);
    limits.remove('b', now + 1000);
    limits.remove('a', now + 2000);
    expect(limits.timers).toBe(1);
    limits.remove('a', now + 1000);
    expect(limits.timers).toBe(0);
  });
});
