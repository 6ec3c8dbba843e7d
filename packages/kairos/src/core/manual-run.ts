import { isDeepStrictEqual } from 'node:util';
import type { JsonObject, TriggerRequest } from '@kairos/client';
import { KairosError } from '../errors.ts';
import { parseDuration } from './duration.ts';
import { parseRfc3339 } from './instant.ts';

/** How long an idempotency key holds its run when the trigger does not say (`idempotencyTtl`). */
export const IDEMPOTENCY_TTL_DEFAULT_MS = 24 * 3_600_000;
export const IDEMPOTENCY_TTL_MIN_MS = 1000;
export const IDEMPOTENCY_TTL_MAX_MS = 30 * 86_400_000;
/** The longest `delay` of a triggered run (the duration grammar's own limit); `runAt` has none. */
export const RUN_DELAY_MAX_MS = 365 * 86_400_000;

/** When a triggered run may start, and until when its idempotency key holds it. */
export interface RunTiming {
  /** Not handed to a worker before this instant (epoch ms); `now` for a run that starts at once. */
  availableAt: number;
  /** Null without an idempotency key. */
  idempotencyExpiresAt: number | null;
}

/**
 * The timing of a trigger request at `now`: `runAt` (an RFC 3339 instant; one already past runs at
 * once) or `delay` (a duration), not both; the key's time to live (`idempotencyTtl`, default 24 h,
 * 1 s to 30 days). Throws VALIDATION_FAILED or INVALID_DURATION naming the field.
 */
export function runTiming(request: TriggerRequest, now: number, field = ''): RunTiming {
  if (request.runAt !== undefined && request.delay !== undefined) {
    throw invalid(`${field}runAt`, 'runAt or delay, not both');
  }
  let availableAt = now;
  if (request.runAt !== undefined) {
    availableAt = Math.max(now, instantOf(request.runAt, `${field}runAt`));
  } else if (request.delay !== undefined) {
    availableAt = now + parseDuration(request.delay, `${field}delay`, { max: RUN_DELAY_MAX_MS });
  }
  if (request.idempotencyTtl !== undefined && request.idempotencyKey === undefined) {
    throw invalid(`${field}idempotencyTtl`, 'an idempotencyKey with it');
  }
  const ttl =
    request.idempotencyTtl === undefined
      ? IDEMPOTENCY_TTL_DEFAULT_MS
      : parseDuration(request.idempotencyTtl, `${field}idempotencyTtl`, {
          min: IDEMPOTENCY_TTL_MIN_MS,
          max: IDEMPOTENCY_TTL_MAX_MS,
        });
  return { availableAt, idempotencyExpiresAt: request.idempotencyKey === undefined ? null : now + ttl };
}

/**
 * Whether a run that an idempotency key holds was asked for with these params and priority: the
 * same answer is given to a repeated request, and IDEMPOTENCY_CONFLICT to another one. Params
 * compare as JSON values (key order does not matter).
 */
export function sameRunRequest(
  run: { params: JsonObject; priority: number },
  params: JsonObject,
  priority: number,
): boolean {
  return run.priority === priority && isDeepStrictEqual(run.params, params);
}

export function idempotencyConflict(key: string, runId: number): KairosError {
  return new KairosError(
    'IDEMPOTENCY_CONFLICT',
    `idempotency key ${JSON.stringify(key)} holds run ${runId}, triggered with other params or priority`,
    { idempotencyKey: key, runId },
  );
}

/** An RFC 3339 instant (an offset required; impossible dates refused) as epoch ms (core/instant.ts). */
function instantOf(value: string, field: string): number {
  const ms = parseRfc3339(value);
  if (ms === null) {
    throw invalid(field, `an RFC 3339 instant such as 2030-01-01T09:00:00Z, got ${JSON.stringify(value)}`);
  }
  return ms;
}

function invalid(field: string, expected: string): KairosError {
  return new KairosError('VALIDATION_FAILED', `${field}: expected ${expected}`, { field });
}
