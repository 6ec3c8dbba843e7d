import { describe, expect, it } from 'vitest';
import { fullBucket, type RateLimit, refill, take } from './rate-limit.ts';

const rate: RateLimit = { limit: 3, perMs: 1000 };
const T0 = 1_000_000;

describe('token bucket', () => {
  it('allows a burst of `limit`, then one token per perMs/limit', () => {
    let bucket = fullBucket(rate, T0);
    for (let i = 0; i < 3; i++) bucket = take(bucket, rate, T0)!;
    expect(take(bucket, rate, T0)).toBeNull();
    expect(take(bucket, rate, T0 + 332)).toBeNull();
    const next = take(bucket, rate, T0 + 334);
    expect(next).not.toBeNull();
    expect(take(next!, rate, T0 + 334)).toBeNull();
  });

  it('never holds more than `limit` tokens, and time never runs backwards', () => {
    expect(refill({ tokens: 0, updatedAt: T0 }, rate, T0 + 60_000)).toEqual({
      tokens: 3,
      updatedAt: T0 + 60_000,
    });
    expect(refill({ tokens: 1, updatedAt: T0 }, rate, T0 - 5000)).toEqual({ tokens: 1, updatedAt: T0 });
  });

  it('over any window of perMs, at most limit + limit takes', () => {
    let bucket = fullBucket(rate, T0);
    let taken = 0;
    for (let t = T0; t < T0 + 1000; t += 7) {
      const next = take(bucket, rate, t);
      if (next) {
        bucket = next;
        taken++;
      }
    }
    expect(taken).toBeLessThanOrEqual(6);
    expect(taken).toBeGreaterThanOrEqual(5);
  });
});
