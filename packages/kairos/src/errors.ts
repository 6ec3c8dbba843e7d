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
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.status = ERROR_CODES[code];
  }
}

/** A store operation failed for a reason outside the caller's control (connection, I/O). */
export class StoreUnavailableError extends KairosError {
  constructor(operation: string, cause: unknown) {
    super('STORE_UNAVAILABLE', `store unavailable during ${operation}`, undefined, { cause });
  }
}
