import type { Json } from '@kairos/client';
import { ERROR_CODES, type ErrorCode } from '@kairos/client';

/**
 * An error with a stable code and the HTTP status that goes with it. Anything thrown inside
 * Kairos that a user should see is one of these; anything else answers 500 INTERNAL.
 */
export class KairosError extends Error {
  override readonly name = 'KairosError';
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Json,
    options?: { cause?: unknown; status?: number },
  ) {
    super(message, options);
    this.status = options?.status ?? ERROR_CODES[code];
  }
}

/**
 * A namespace quota refused a request (docs/tenancy.md#quotas): 422 for a definition limit (jobs,
 * fires per second, interval, params bytes, backfill size), 429 with `retryAfterS` for a rate or the
 * queued runs. Nothing was written.
 */
export class QuotaExceededError extends KairosError {
  constructor(
    readonly quota: string,
    limit: number | string,
    current: number | string | undefined,
    message: string,
    readonly retryAfterS?: number,
  ) {
    super(
      'QUOTA_EXCEEDED',
      message,
      current === undefined ? { quota, limit } : { quota, limit, current },
      retryAfterS === undefined ? {} : { status: 429 },
    );
  }
}

/** A store operation failed for a reason outside the caller's control (connection, I/O). */
export class StoreUnavailableError extends KairosError {
  constructor(operation: string, cause: unknown) {
    super('STORE_UNAVAILABLE', `store unavailable during ${operation}`, undefined, { cause });
  }
}
