import { describe, expect, it } from 'vitest';
import { middleRate } from './stats.ts';

describe('middleRate', () => {
  it('leaves out a slow start-up and a slow tail', () => {
    // 100 jobs: the first 10 start over 1 s (start-up), the next 80 one per ms, the last 10 over 1 s.
    const starts = [
      ...Array.from({ length: 10 }, (_, k) => k * 100),
      ...Array.from({ length: 80 }, (_, k) => 1000 + k),
      ...Array.from({ length: 10 }, (_, k) => 1080 + k * 100),
    ];
    const rate = middleRate(starts.reverse(), 0);
    // From the 11th start (1,000 ms) to the 90th (1,079 ms): 79 jobs in 79 ms.
    expect(rate).toEqual({ perSecond: 1000, fromMs: 1000, toMs: 1079 });
  });

  it('is NaN without a span to measure', () => {
    expect(middleRate([5], 0).perSecond).toBeNaN();
    expect(middleRate([5, 5, 5, 5], 0).perSecond).toBeNaN();
  });
});
