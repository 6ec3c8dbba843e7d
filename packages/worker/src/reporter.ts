import { type AttemptRef, KairosApiError, type Report, type ReportResponse } from '@kairos/client';
import { Backoff } from './backoff.ts';
import { errorField, type WorkerLogger } from './logger.ts';
import { isConnectionError } from './nodes.ts';
import { settlesWithin, sleep } from './timing.ts';

/** Reports per request; the node accepts up to 1000. */
export const MAX_BATCH = 500;

/**
 * The queue of attempt reports. One request at a time, sent as soon as something is queued; what
 * piles up meanwhile goes in the next request. A failed request is retried with backoff: a report
 * is never dropped while the worker runs (the node would otherwise let the attempt time out and
 * run it again).
 */
export class Reporter {
  #queue: Report[] = [];
  #inFlight: Report[] = [];
  #draining: Promise<void> | null = null;
  /** Lowered while bisecting a batch the node rejected, back to MAX_BATCH after a success. */
  #batchSize = MAX_BATCH;
  readonly #closed = new AbortController();

  constructor(
    private readonly send: (reports: Report[]) => Promise<ReportResponse>,
    private readonly logger: WorkerLogger,
  ) {}

  add(report: Report): void {
    if (this.#closed.signal.aborted) {
      this.logger.debug('report after shutdown dropped', { runId: report.runId, attempt: report.attempt });
      return;
    }
    this.#queue.push(report);
    this.#drain();
  }

  /** Attempts whose report the node has not acknowledged yet: still leased to this worker. */
  pending(): AttemptRef[] {
    return [...this.#inFlight, ...this.#queue].map(({ runId, attempt }) => ({ runId, attempt }));
  }

  /** Waits until every queued report was sent: true, or false when `timeoutMs` passed first. */
  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.#draining) {
      const left = deadline - Date.now();
      if (left <= 0 || !(await settlesWithin(this.#draining, left))) return false;
    }
    return true;
  }

  /** Stops sending and retrying; answers how many reports were left unsent. */
  close(): number {
    this.#closed.abort();
    const left = this.#queue.length + this.#inFlight.length;
    this.#queue = [];
    return left;
  }

  #drain(): void {
    if (this.#draining) return;
    this.#draining = this.#sendAll()
      .catch((err: unknown) =>
        this.logger.error('report queue failed unexpectedly', { err: errorField(err) }),
      )
      .finally(() => {
        this.#draining = null;
        // A report added between the last check of the loop and here.
        if (this.#queue.length > 0 && !this.#closed.signal.aborted) this.#drain();
      });
  }

  async #sendAll(): Promise<void> {
    const backoff = new Backoff();
    let failing = false;
    while (this.#queue.length > 0 && !this.#closed.signal.aborted) {
      const batch = this.#queue.splice(0, this.#batchSize);
      this.#inFlight = batch;
      let answer: ReportResponse | undefined;
      try {
        answer = await this.send(batch);
      } catch (err) {
        this.#inFlight = [];
        if (this.#closed.signal.aborted) break;
        if (isRejectedBatch(err)) {
          this.#bisect(batch, err);
          continue;
        }
        this.#queue.unshift(...batch);
        // Connection errors are logged by the node pool; anything else (401...) once per streak here.
        if (!failing && !isConnectionError(err)) {
          this.logger.error('reports refused; retrying', { err: errorField(err) });
        }
        failing = true;
        await sleep(backoff.next(), this.#closed.signal);
        continue;
      }
      this.#inFlight = [];
      backoff.reset();
      failing = false;
      this.#batchSize = MAX_BATCH;
      this.#logRejected(answer);
    }
  }

  /**
   * The node refused the batch as a whole (too large, or invalid): halve it until the culprit is
   * alone, then replace that report with a small failure so that the run does not wait for its
   * time limit. A replacement refused in turn is dropped.
   */
  #bisect(batch: Report[], err: KairosApiError): void {
    if (batch.length > 1) {
      this.#batchSize = Math.ceil(batch.length / 2);
      this.#queue.unshift(...batch);
      return;
    }
    const [report] = batch;
    if (!report) return;
    const { runId, attempt } = report;
    if (report.outcome === 'failed' && report.error.name === 'ReportRejected') {
      this.logger.error('report refused by the node; dropped', { runId, attempt, err: errorField(err) });
      return;
    }
    this.logger.warn('report refused by the node; reporting a failure instead', {
      runId,
      attempt,
      err: errorField(err),
    });
    this.#queue.unshift({
      runId,
      attempt,
      outcome: 'failed',
      error: {
        name: 'ReportRejected',
        message: `the node refused this attempt's report: ${err.message}`.slice(0, 8192),
      },
      retryable: false,
    });
  }

  #logRejected(answer: ReportResponse | undefined): void {
    for (const result of answer?.results ?? []) {
      // Usually ATTEMPT_STALE: a timeout, a cancel or a retry ended the attempt first.
      if (!result.ok) {
        this.logger.debug('report not applied', {
          runId: result.runId,
          attempt: result.attempt,
          code: result.code,
        });
      }
    }
  }
}

/** 400 or 413: sending the same batch again would fail again. */
function isRejectedBatch(err: unknown): err is KairosApiError {
  return err instanceof KairosApiError && (err.status === 400 || err.status === 413);
}
