import type { RetryPolicy, RetrySpec } from '@kairos/client';
import { KairosError } from '../errors.ts';
import { parseDuration } from './duration.ts';

export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  maxAttempts: 3,
  backoff: 'exponential',
  delay: 1000,
  maxDelay: 5 * 60_000,
  jitter: true,
  nonRetryable: [],
}) as RetryPolicy;

export const MAX_ATTEMPTS_LIMIT = 100;

export function compileRetry(spec: RetrySpec | undefined, base: RetryPolicy = DEFAULT_RETRY): RetryPolicy {
  if (!spec) return { ...base, nonRetryable: [...base.nonRetryable] };
  const maxAttempts = spec.maxAttempts ?? base.maxAttempts;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > MAX_ATTEMPTS_LIMIT) {
    throw new KairosError(
      'VALIDATION_FAILED',
      `retry.maxAttempts: expected a whole number from 1 to ${MAX_ATTEMPTS_LIMIT}`,
      {
        field: 'retry.maxAttempts',
      },
    );
  }
  const delay = spec.delay === undefined ? base.delay : parseDuration(spec.delay, 'retry.delay');
  const maxDelay =
    spec.maxDelay === undefined
      ? Math.max(base.maxDelay, delay)
      : parseDuration(spec.maxDelay, 'retry.maxDelay');
  if (maxDelay < delay) {
    throw new KairosError('VALIDATION_FAILED', 'retry.maxDelay must not be shorter than retry.delay', {
      field: 'retry.maxDelay',
    });
  }
  return {
    maxAttempts,
    backoff: spec.backoff ?? base.backoff,
    delay,
    maxDelay,
    jitter: spec.jitter ?? base.jitter,
    nonRetryable: spec.nonRetryable ?? [...base.nonRetryable],
  };
}

/** How an attempt ended, as far as retrying is concerned. */
export interface AttemptFailure {
  /** `failed`: the handler threw; `timed_out`: over its time limit; `lost`: its worker stopped heartbeating. */
  kind: 'failed' | 'timed_out' | 'lost';
  /** The error name, matched against `nonRetryable`. */
  name: string;
  /** False when the handler threw a NonRetryableError. */
  retryable?: boolean | undefined;
  /** Set when the handler threw a RetryAfterError. */
  retryAfterMs?: number | undefined;
}

export type RetryDecision = { retry: false } | { retry: true; delayMs: number };

/**
 * Whether attempt number `attempt` (1-based) that failed is followed by another, and after how long.
 * `random` is a number in [0, 1) that the caller draws, so that this stays pure.
 *
 * A lost attempt (dead worker) is retried at once: the handler did nothing wrong.
 * Exponential backoff: delay × 2^(attempt−1), capped at maxDelay; with jitter, a uniform
 * draw from [d/2, d] so that a crowd of retries spreads out.
 */
export function decideRetry(
  policy: RetryPolicy,
  attempt: number,
  failure: AttemptFailure,
  random: number,
): RetryDecision {
  if (attempt >= policy.maxAttempts) return { retry: false };
  if (failure.retryable === false || policy.nonRetryable.includes(failure.name)) return { retry: false };
  if (failure.kind === 'lost') return { retry: true, delayMs: 0 };
  if (failure.retryAfterMs !== undefined)
    return { retry: true, delayMs: Math.max(0, Math.round(failure.retryAfterMs)) };
  const raw = policy.backoff === 'fixed' ? policy.delay : policy.delay * 2 ** (attempt - 1);
  const capped = Math.min(raw, policy.maxDelay);
  const delayMs = policy.jitter ? Math.round(capped / 2 + (capped / 2) * random) : capped;
  return { retry: true, delayMs };
}
