import { clearTimeout, setTimeout } from 'node:timers';

/**
 * The time limits of running attempts: one timer per deadline (epoch ms), shared by every attempt
 * whose limit ends in that millisecond, rather than a timer per attempt. A burst of held runs
 * starts in one millisecond with one timeout: 1,000 attempts, one timer, and a start costs a Set
 * insertion instead of a Timeout object.
 */
export class TimeLimits<T> {
  readonly #buckets = new Map<number, { timer: NodeJS.Timeout; attempts: Set<T> }>();

  /** `onTimeout` is called with each attempt whose deadline came before it was removed. */
  constructor(private readonly onTimeout: (attempt: T) => void) {}

  /** Calls back at `deadline` (epoch ms; `now` is the current time) unless the attempt is removed first. */
  add(attempt: T, deadline: number, now: number): void {
    let bucket = this.#buckets.get(deadline);
    if (!bucket) {
      const attempts = new Set<T>();
      const timer = setTimeout(() => {
        this.#buckets.delete(deadline);
        for (const timedOut of attempts) this.onTimeout(timedOut);
      }, deadline - now);
      bucket = { timer, attempts };
      this.#buckets.set(deadline, bucket);
    }
    bucket.attempts.add(attempt);
  }

  /** Cancels the attempt's time limit (at `deadline`, as added); its bucket's timer goes with the last one. */
  remove(attempt: T, deadline: number): void {
    const bucket = this.#buckets.get(deadline);
    if (!bucket?.attempts.delete(attempt) || bucket.attempts.size > 0) return;
    clearTimeout(bucket.timer);
    this.#buckets.delete(deadline);
  }

  /** Deadlines with a timer armed. */
  get timers(): number {
    return this.#buckets.size;
  }
}
