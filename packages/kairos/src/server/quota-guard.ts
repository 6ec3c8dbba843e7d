import { type QuotaConfig, quotasFromColumn } from '../core/quotas.ts';
import { type Bucket, fullBucket, type RateLimit, take } from '../core/rate-limit.ts';
import { QuotaExceededError } from '../errors.ts';
import type { Clock } from '../scheduler/clock.ts';
import type { Store } from '../store/store.ts';

/** How long a node keeps a namespace's quotas before reading them again: a PUT elsewhere applies within it. */
const QUOTAS_CACHE_MS = 2000;

/**
 * Reads the quotas of the request's namespace (cached for {@link QUOTAS_CACHE_MS}; this node's own
 * PUT applies at once) and holds the `requestsPerSecond` token buckets. The quotas on what the store
 * holds (jobs, fire rates, queued runs) are checked by the store in the writes' transactions. The buckets are per node
 * (like the login limiter): a cluster of n nodes admits up to n × requestsPerSecond.
 */
export class QuotaGuard {
  private readonly cached = new Map<string, { quotas: QuotaConfig; until: number }>();
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** The namespace's quotas; unlimited for a namespace without any (or one that does not exist). */
  async of(namespace: string): Promise<QuotaConfig> {
    const now = this.clock.now();
    const hit = this.cached.get(namespace);
    if (hit && hit.until > now) return hit.quotas;
    const record = await this.store.namespaces.get(namespace);
    const quotas = quotasFromColumn(record?.quotas ?? null);
    if (this.cached.size > 10_000) this.cached.clear();
    this.cached.set(namespace, { quotas, until: now + QUOTAS_CACHE_MS });
    return quotas;
  }

  /** Forgets what this node cached of a namespace (its quotas were set here). */
  forget(namespace: string): void {
    this.cached.delete(namespace);
    this.buckets.delete(namespace);
  }

  /**
   * Takes one request of the namespace's `requestsPerSecond` (a token bucket of that size, refilled
   * at that rate: a burst of one second's worth is allowed). Throws 429 QUOTA_EXCEEDED with
   * Retry-After when the bucket is empty.
   */
  async admitRequest(namespace: string): Promise<void> {
    const { requestsPerSecond } = await this.of(namespace);
    if (requestsPerSecond === null) return;
    const now = this.clock.now();
    const rate: RateLimit = { limit: requestsPerSecond, perMs: 1000 };
    const taken = take(this.buckets.get(namespace) ?? fullBucket(rate, now), rate, now);
    if (taken === null) {
      throw new QuotaExceededError(
        'requestsPerSecond',
        requestsPerSecond,
        undefined,
        `the namespace's quota of ${requestsPerSecond} API requests per second is used up`,
        1,
      );
    }
    if (this.buckets.size > 10_000) this.buckets.clear();
    this.buckets.set(namespace, taken);
  }
}
