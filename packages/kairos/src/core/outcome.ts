import type { AttemptStatus, Json, RetryPolicy, RunError, RunStatus } from '@kairos/client';
import { type AttemptFailure, decideRetry } from './retry.ts';
import { finalStatusOf } from './run-state.ts';

/** How one attempt ended, as its worker reported it or as the reaper found it. */
export type AttemptResult =
  | { kind: 'succeeded'; result: Json }
  | (AttemptFailure & { error: RunError })
  | { kind: 'cancelled'; error: RunError };

/** What ending an attempt does to its run. */
export interface AttemptDecision {
  attemptStatus: Exclude<AttemptStatus, 'running'>;
  error: RunError | null;
  result: Json | null;
  run: { status: 'queued'; availableAt: number } | { status: Exclude<RunStatus, 'queued' | 'running'> };
}

/**
 * Decides the end of attempt number `attempt` of a run with retry policy `retry`, at `now`.
 * `random` in [0, 1) feeds the backoff jitter.
 */
export function decideOutcome(
  retry: RetryPolicy,
  attempt: number,
  outcome: AttemptResult,
  now: number,
  random: number,
): AttemptDecision {
  switch (outcome.kind) {
    case 'succeeded':
    case 'cancelled':
      return finalOutcome(outcome);
    default: {
      const decision = decideRetry(retry, attempt, outcome, random);
      return {
        attemptStatus: outcome.kind,
        error: outcome.error,
        result: null,
        run: decision.retry
          ? { status: 'queued', availableAt: now + decision.delayMs }
          : { status: finalStatusOf(outcome.kind) },
      };
    }
  }
}

/** An outcome that ends its run whatever the retry policy says: a success or a cancel. */
export type FinalResult = Extract<AttemptResult, { kind: 'succeeded' | 'cancelled' }>;

export function isFinalResult(outcome: AttemptResult): outcome is FinalResult {
  return outcome.kind === 'succeeded' || outcome.kind === 'cancelled';
}

/** The end of an attempt whose outcome needs no retry policy (see decideOutcome). */
export function finalOutcome(outcome: FinalResult): AttemptDecision {
  return outcome.kind === 'succeeded'
    ? { attemptStatus: 'succeeded', error: null, result: outcome.result, run: { status: 'succeeded' } }
    : { attemptStatus: 'cancelled', error: outcome.error, result: null, run: { status: 'cancelled' } };
}
