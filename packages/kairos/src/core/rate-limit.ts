/**
 * Token buckets for rate limits ("at most `limit` runs started per `perMs`"), pure: the bucket
 * lives in the store and every claim on every node takes its tokens in the claim transaction, so
 * the limit holds across the cluster. A full bucket allows a burst of `limit`.
 */
export interface RateLimit {
  limit: number;
  perMs: number;
}

export interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** The bucket of a scope never used: full. */
export function fullBucket(rate: RateLimit, now: number): Bucket {
  return { tokens: rate.limit, updatedAt: now };
}

/** The bucket at `now`: refilled at `limit / perMs` tokens per ms, up to `limit`. */
export function refill(bucket: Bucket, rate: RateLimit, now: number): Bucket {
  const elapsed = Math.max(0, now - bucket.updatedAt);
  return {
    tokens: Math.min(rate.limit, bucket.tokens + (elapsed * rate.limit) / rate.perMs),
    updatedAt: Math.max(now, bucket.updatedAt),
  };
}

/** Takes one token if there is one: the new bucket, or null when the limit is reached. */
export function take(bucket: Bucket, rate: RateLimit, now: number): Bucket | null {
  const current = refill(bucket, rate, now);
  // A hair of tolerance: refills are fractions and must not lose a token to rounding.
  if (current.tokens < 1 - 1e-9) return null;
  return { tokens: current.tokens - 1, updatedAt: current.updatedAt };
}
