import type { AttemptRef, Report } from '@kairos/client';
import { type AttemptResult, decideOutcome, finalOutcome, isFinalResult } from '../core/outcome.ts';
import type { AttemptOutcome, DecisionInput, Store } from '../store/store.ts';

export interface ReportResult extends AttemptRef {
  ok: boolean;
  code?: string;
}

/**
 * Ends attempts: decides each end in the pure core (a failure after reading its run's retry policy,
 * a success from the report alone) and writes the decisions fenced by (run, attempt, status). A
 * report whose attempt is not the run's current running attempt (a retry, a timeout or a cancel
 * came first) changes nothing.
 */
export class AttemptEnder {
  constructor(
    private readonly store: Store,
    private readonly random: () => number = Math.random,
    /** Called with the groups and instants at which retried runs become available. */
    private readonly onRequeued: (group: string, availableAt: number) => void = () => {},
    /** Called with the ends that were written (a stale one is not), for metrics. */
    private readonly onEnded: (ended: readonly AttemptOutcome[]) => void = () => {},
  ) {}

  /**
   * Ends reported attempts. With `workerId` (a worker's report), an end applies only to an attempt
   * that worker holds: another worker's attempt is refused with `ATTEMPT_NOT_HELD` and changes
   * nothing. The reports the fence refused are offered to `Store.recordLateReports`: an attempt that
   * the node ended (lost, timed out, cancelled) and that still ran to its end is kept in its run's
   * history.
   */
  async report(reports: readonly Report[], now: number, workerId?: string): Promise<ReportResult[]> {
    // A success ends the run whatever its retry policy: decided without reading the run
    // (finishAttempts is fenced by run, attempt and status, so a stale one still changes nothing).
    // Only failures read the run's policy, to decide on a retry.
    const ends = reports.map(resultOf);
    const failures = reports.filter((_, i) => !isFinalResult(ends[i]!));
    const inputs = failures.length > 0 ? await this.store.runsForDecision(failures) : [];
    const byRef = new Map(inputs.map((input) => [key(input), input]));
    const seen = new Set<string>();
    const outcomes: AttemptOutcome[] = [];
    const positions: number[] = [];
    reports.forEach((report, index) => {
      // An attempt named twice in one batch is decided once: the first report wins, the repeat is stale.
      const ref = key(report);
      if (seen.has(ref)) return;
      seen.add(ref);
      const result = ends[index]!;
      if (isFinalResult(result)) {
        // The group only serves to wake polls for a requeued run, which a final outcome never is.
        outcomes.push({
          ...finalOutcome(result),
          runId: report.runId,
          attempt: report.attempt,
          group: '',
          ...(workerId === undefined ? {} : { workerId }),
        });
      } else {
        const input = byRef.get(ref);
        if (!input) return;
        if (workerId !== undefined && input.workerId !== workerId) return;
        outcomes.push({
          ...this.decide(input, result, now),
          ...(workerId === undefined ? {} : { workerId }),
        });
      }
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
    const late = reports.filter((_, i) => !results[i]!.ok);
    if (workerId !== undefined && late.length > 0) {
      // Refused: stale, or another worker's attempt. Only the refusals read their runs again.
      const held = await this.store.runsForDecision(late);
      const strangers = new Set(held.filter((input) => input.workerId !== workerId).map(key));
      for (const result of results)
        if (!result.ok && strangers.has(key(result))) result.code = 'ATTEMPT_NOT_HELD';
      await this.store.recordLateReports(
        workerId,
        late.map((r) => ({
          runId: r.runId,
          attempt: r.attempt,
          outcome: r.outcome,
          error: r.outcome === 'succeeded' ? null : r.error,
        })),
        now,
      );
    }
    return results;
  }

  /**
   * Gives back attempts claimed for a worker whose claim's answer never reached it (see
   * `Store.heartbeat`): each ends `lost` and its run is queued again at once, whatever its retry
   * policy: its handler never ran (a busy node answering after the worker gave up must not fail the
   * run). Answers how many.
   */
  async giveBack(workerId: string, refs: readonly AttemptRef[], now: number): Promise<number> {
    const inputs = await this.store.runsForDecision(refs);
    if (inputs.length === 0) return 0;
    const outcomes: AttemptOutcome[] = inputs.map((input) => ({
      runId: input.runId,
      attempt: input.attempt,
      group: input.group,
      attemptStatus: 'lost',
      error: {
        name: 'WorkerLost',
        message: `worker ${workerId} never received this attempt: the answer of the poll that claimed it was lost`,
      },
      result: null,
      run: { status: 'queued', availableAt: now },
    }));
    const applied = await this.store.finishAttempts(outcomes, now);
    this.notifyRequeued(outcomes.filter((_, i) => applied[i]));
    return applied.filter(Boolean).length;
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
    // A lost end is fenced on the worker's lease still being ended at `now` when it is written: the
    // write may land late (this node stalled, or its link to the database hung) after the worker
    // heartbeated through another node.
    const fenced = outcomes.map((outcome, i) =>
      expired[i]!.reason === 'lost' ? { ...outcome, leaseEndedBy: now } : outcome,
    );
    const applied = await this.store.finishAttempts(fenced, now);
    this.notifyRequeued(fenced.filter((_, i) => applied[i]));
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
    if (outcomes.length > 0) this.onEnded(outcomes);
    for (const outcome of outcomes) {
      if (outcome.run.status === 'queued') this.onRequeued(outcome.group, outcome.run.availableAt);
    }
  }
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
