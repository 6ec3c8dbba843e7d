import { describe, expect, it } from 'vitest';
import { TimeLimits } from './time-limits.ts';

describe('TimeLimits', () => {
  it('shares one timer per deadline and calls back for each attempt still there at its deadline', async () => {
    const timedOut: string[] = [];
    const limits = new TimeLimits<string>((attempt) => timedOut.push(attempt));
    const now = Date.now();
    for (const attempt of ['a', 'b', 'c']) limits.add(attempt, now + 30, now);
    limits.add('d', now + 60, now);
    expect(limits.timers).toBe(2);
    limits.remove('b', now + 30);
    await new Promise((resolve) => setTimeout(resolve, 45));
    expect(timedOut).toEqual(['a', 'c']);
    expect(limits.timers).toBe(1);
    // The last attempt of a deadline takes its timer with it.
    limits.remove('d', now + 60);
    expect(limits.timers).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(timedOut).toEqual(['a', 'c']);
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
