import type { AttemptRef, Report } from '@kairos/client';
import { type AttemptResult, decideOutcome } from '../core/outcome.ts';
import { DEFAULT_RETRY } from '../core/retry.ts';
import type { AttemptOutcome, DecisionInput, Store } from '../store/store.ts';

export interface ReportResult extends AttemptRef {
  ok: boolean;
  code?: string;
}

/**
 * Ends attempts: reads the runs still running with those attempt numbers, decides each end in the
 * pure core, and writes the decisions fenced by (run, attempt). A report whose attempt is not the
 * run's current running attempt (a retry, a timeout or a cancel came first) changes nothing.
 * A success ends its run whatever the run's retry policy says: successes are decided without
 * reading the runs first, and the write's fence alone tells whether they applied (one round trip
 * per report batch where there were two, on PostgreSQL).
 */
export class AttemptEnder {
  constructor(
    private readonly store: Store,
    private readonly random: () => number = Math.random,
    /** Called with the groups and instants at which retried runs become available. */
    private readonly onRequeued: (group: string, availableAt: number) => void = () => {},
  ) {}

  async report(reports: readonly Report[], now: number): Promise<ReportResult[]> {
    const needInput = reports.filter((r) => !endsWhatever(r));
    const inputs = needInput.length > 0 ? await this.store.runsForDecision(needInput) : [];
    const byRef = new Map(inputs.map((input) => [key(input), input]));
    const seen = new Set<string>();
    const outcomes: AttemptOutcome[] = [];
    const positions: number[] = [];
    reports.forEach((report, index) => {
      // An attempt named twice in one batch is decided once: the first report wins, the repeat is stale.
      const ref = key(report);
      if (seen.has(ref)) return;
      seen.add(ref);
      if (endsWhatever(report)) {
        // No retry to decide: the policy and the group (which only a requeued run needs) play no part.
        outcomes.push({
          ...decideOutcome(DEFAULT_RETRY, report.attempt, resultOf(report), now, 0),
          runId: report.runId,
          attempt: report.attempt,
          group: '',
        });
        positions.push(index);
        return;
      }
      const input = byRef.get(ref);
      if (!input) return;
      outcomes.push(this.decide(input, resultOf(report), now));
      positions.push(index);
    });
    const applied = outcomes.length > 0 ? await this.store.finishAttempts(outcomes, now) : [];
    const results: ReportResult[] = reports.map((r) => ({
      runId: r.runId,
      attempt: r.attempt,
      ok: false,
      code: 'ATTEMPT_STALE',
    }));
    positions.forEach((position, i) => {
      if (applied[i])
        results[position] = {
          runId: reports[position]!.runId,
          attempt: reports[position]!.attempt,
          ok: true,
        };
    });
    this.notifyRequeued(outcomes.filter((_, i) => applied[i]));
    return results;
  }

  /** Ends attempts the reaper found: lost (no heartbeat) or over their deadline. */
  async expire(now: number, limit: number): Promise<number> {
    const expired = await this.store.expiredAttempts(now, limit);
    if (expired.length === 0) return 0;
    const outcomes = expired.map((attempt) =>
      this.decide(
        attempt,
        attempt.reason === 'lost'
          ? {
              kind: 'lost',
              name: 'WorkerLost',
              error: { name: 'WorkerLost', message: `worker ${attempt.workerId} stopped heartbeating` },
            }
          : {
              kind: 'timed_out',
              name: 'Timeout',
              error: { name: 'Timeout', message: 'the attempt passed its time limit' },
            },
        now,
      ),
    );
    const applied = await this.store.finishAttempts(outcomes, now);
    this.notifyRequeued(outcomes.filter((_, i) => applied[i]));
    return applied.filter(Boolean).length;
  }

  private decide(input: DecisionInput, result: AttemptResult, now: number): AttemptOutcome {
    return {
      ...decideOutcome(input.retry, input.attempt, result, now, this.random()),
      runId: input.runId,
      attempt: input.attempt,
      group: input.group,
    };
  }

  private notifyRequeued(outcomes: AttemptOutcome[]): void {
    for (const outcome of outcomes) {
      if (outcome.run.status === 'queued') this.onRequeued(outcome.group, outcome.run.availableAt);
    }
  }
}

/** A success ends its run whatever the run's retry policy (decideOutcome does not read it then). */
function endsWhatever(report: Report): boolean {
  return report.outcome === 'succeeded';
}

function resultOf(report: Report): AttemptResult {
  if (report.outcome === 'succeeded') return { kind: 'succeeded', result: report.result ?? null };
  return {
    kind: report.outcome,
    name: report.error.name,
    error: report.error,
    retryable: report.retryable,
    retryAfterMs: report.retryAfterMs,
  };
}

function key(ref: AttemptRef): string {
  return `${ref.runId}:${ref.attempt}`;
}
