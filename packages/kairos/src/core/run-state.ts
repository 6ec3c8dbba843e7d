import type { AttemptStatus, RunStatus } from '@kairos/client';

/**
 * The run state machine, the one place it is written down.
 *
 *   queued ──claim──────────▶ running ──report succeeded──────────▶ succeeded
 *     ▲                          │
 *     └──── retry (backoff) ─────┤ report failed | time limit | worker lost
 *                                ├── no attempt left / not retryable ─▶ failed | timed_out
 *                                └── cancel ──────────────────────────▶ cancelled
 *   queued ──cancel──▶ cancelled
 *
 * Every transition out of `running` names the attempt it ends (the fencing token): a report,
 * a timeout or a loss for an attempt that is no longer the run's current one changes nothing.
 */
export const RUN_TRANSITIONS: Readonly<Record<RunStatus, readonly RunStatus[]>> = {
  queued: ['running', 'cancelled'],
  running: ['succeeded', 'failed', 'timed_out', 'cancelled', 'queued'],
  succeeded: [],
  failed: [],
  timed_out: [],
  cancelled: [],
};

export const FINAL_RUN_STATUSES: readonly RunStatus[] = ['succeeded', 'failed', 'timed_out', 'cancelled'];

export function isFinal(status: RunStatus): boolean {
  return RUN_TRANSITIONS[status].length === 0;
}

export function canTransition(from: RunStatus, to: RunStatus): boolean {
  return RUN_TRANSITIONS[from].includes(to);
}

/** The run status a failed attempt leaves behind when it is not retried. */
export function finalStatusOf(
  attempt: Exclude<AttemptStatus, 'running' | 'succeeded'>,
): Exclude<RunStatus, 'queued' | 'running' | 'succeeded'> {
  return attempt === 'timed_out' ? 'timed_out' : attempt === 'cancelled' ? 'cancelled' : 'failed';
}
