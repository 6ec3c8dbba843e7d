import { parseDuration } from './duration.ts';

/**
 * Thrown by a handler to fail the run at once: no retry, whatever the job's retry policy says.
 *
 * ```ts
 * if (!ctx.params.email) throw new NonRetryableError('params.email is missing');
 * ```
 */
export class NonRetryableError extends Error {
  override name = 'NonRetryableError';

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * Thrown by a handler to fail this attempt and retry after `delay` instead of the job's backoff
 * (a rate limit said "come back in 30 s", for example). The run still stops at its `maxAttempts`.
 *
 * ```ts
 * throw new RetryAfterError('rate limited', '30s');
 * ```
 */
export class RetryAfterError extends Error {
  override name = 'RetryAfterError';
  /** The delay before the next attempt, in milliseconds. */
  readonly retryAfterMs: number;

  /**
   * @param delay Milliseconds, or a string with a unit: `'500ms'`, `'30s'`, `'5m'`, `'2h'`, `'1d'`.
   * @throws TypeError when `delay` is not a valid duration.
   */
  constructor(message: string, delay: number | string, options?: ErrorOptions) {
    super(message, options);
    this.retryAfterMs = parseDuration(delay, 'RetryAfterError delay');
  }
}

/** The reason of `ctx.signal` when an attempt reaches its time limit. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';

  constructor(
    message: string,
    /** The attempt's time limit in milliseconds. */
    readonly timeoutMs: number,
  ) {
    super(message);
  }
}

/**
 * The reason of `ctx.signal` when the attempt must stop before its time limit: the run was
 * cancelled, the node handed it to another worker (fenced out), or the worker is shutting down.
 */
export class CancelledError extends Error {
  override name = 'CancelledError';
}
