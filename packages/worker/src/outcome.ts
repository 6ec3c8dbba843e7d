import type { AttemptRef, Json, Report, RunError } from '@kairos/client';
import { formatDuration } from './duration.ts';
import { NonRetryableError, RetryAfterError } from './errors.ts';

/** How a handler call ended: the value it returned, or what it threw. */
export type Settlement = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Whether the attempt's time limit fired before the handler settled, and what that limit was. */
export interface TimeLimit {
  timedOut: boolean;
  timeoutMs: number;
}

// Bounds of the node's report schema: one field over them would get the whole batch rejected.
const MAX_NAME = 200;
const MAX_MESSAGE = 8192;
const MAX_STACK = 16_384;
const MAX_RETRY_AFTER_MS = 7 * 86_400_000;

/**
 * Turns the end of a handler call into the report sent to the node. Pure: the worker decides
 * `timedOut` (its timer fired before the handler settled, whatever the handler did next).
 */
export function classifyOutcome(ref: AttemptRef, settlement: Settlement, limit: TimeLimit): Report {
  const { runId, attempt } = ref;
  if (limit.timedOut) {
    // Named like the node's own timeout so that a job's `nonRetryable` list matches both.
    const message = `the attempt passed its time limit of ${formatDuration(limit.timeoutMs)}`;
    return { runId, attempt, outcome: 'timed_out', error: { name: 'Timeout', message } };
  }
  if (settlement.ok) {
    try {
      return { runId, attempt, outcome: 'succeeded', result: toJson(settlement.value) };
    } catch (err) {
      const message = `the handler returned a value that is not JSON: ${toRunError(err).message}`;
      return { runId, attempt, outcome: 'failed', error: { name: 'InvalidResult', message } };
    }
  }
  const { error } = settlement;
  if (error instanceof NonRetryableError) {
    return { runId, attempt, outcome: 'failed', error: toRunError(error), retryable: false };
  }
  if (error instanceof RetryAfterError) {
    const retryAfterMs = Math.min(Math.max(0, Math.round(error.retryAfterMs)), MAX_RETRY_AFTER_MS);
    return { runId, attempt, outcome: 'failed', error: toRunError(error), retryAfterMs };
  }
  return { runId, attempt, outcome: 'failed', error: toRunError(error) };
}

/**
 * A thrown value as the wire's RunError. Errors (and error-like objects, e.g. from another realm)
 * keep name, message and stack; anything else becomes a message string.
 */
export function toRunError(value: unknown): RunError {
  if (isErrorLike(value)) {
    const name = typeof value.name === 'string' && value.name !== '' ? value.name : 'Error';
    const error: RunError = { name: clip(name, MAX_NAME), message: clip(value.message, MAX_MESSAGE) };
    if (typeof value.stack === 'string') error.stack = clip(value.stack, MAX_STACK);
    return error;
  }
  return { name: 'Error', message: clip(describe(value), MAX_MESSAGE) };
}

/**
 * The result exactly as it will travel: a JSON round trip now, so that a handler mutating the
 * object after returning it cannot change the queued report. `undefined` becomes null.
 */
function toJson(value: unknown): Json {
  const text = JSON.stringify(value);
  return text === undefined ? null : (JSON.parse(text) as Json);
}

function isErrorLike(value: unknown): value is { name?: unknown; message: string; stack?: unknown } {
  return (
    value instanceof Error ||
    (typeof value === 'object' &&
      value !== null &&
      typeof (value as { message?: unknown }).message === 'string')
  );
}

function describe(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    // A BigInt, a cycle, or an object whose toString throws.
    try {
      return String(value);
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
