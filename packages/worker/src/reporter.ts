import { type AttemptRef, KairosApiError, type Report, type ReportResponse } from '@kairos/client';
import { Backoff } from './backoff.ts';
import { errorField, type WorkerLogger } from './logger.ts';
import { isConnectionError } from './nodes.ts';
import { settlesWithin, sleep } from './timing.ts';

/** Reports per request; the node accepts up to 1000. */
export const MAX_BATCH = 500;

/**
 * The queue of attempt reports. One request at a time, sent in the turn of the event loop after
 * something is queued (the reports of handlers that end together go in one request); what piles up
 * meanwhile goes in the next request. A poll about to be sent may take the queued reports instead
 * (`take`): they ride with it, and come back here if it fails. A failed request is retried with
 * backoff: a report is never dropped while the worker runs (the node would otherwise let the
 * attempt time out and run it again).
 */
export class Reporter {
  /** Reports not sent yet: the next request takes them, or a poll (`take`). */
  #queue: Report[] = [];
  /** Reports a request or a poll failed to deliver: only this queue's own requests send them again. */
  #retry: Report[] = [];
  #inFlight: Report[] = [];
  /** Reports riding with a poll that has not been answered. */
  #riding = new Set<Report>();
  #draining: Promise<void> | null = null;
  /** Starts a drain that waits for its turn now (set while one waits). */
  #startNow: (() => void) | null = null;
  /** Set by `flush`: the worker is stopping, and every report goes out at once. */
  #urgent = false;
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
    return [...this.#inFlight, ...this.#riding, ...this.#retry, ...this.#queue].map(({ runId, attempt }) => ({
      runId,
      attempt,
    }));
  }

  /**
   * Up to `max` queued reports for a poll to carry. They stay pending until the poll settles:
   * `carried` when answered, `giveBack` when it failed.
   */
  take(max = MAX_BATCH): Report[] {
    if (this.#closed.signal.aborted || this.#queue.length === 0) return [];
    const taken = this.#queue.splice(0, max);
    for (const report of taken) this.#riding.add(report);
    return taken;
  }

  /** A poll carried `reports` and the node answered `results` (absent: it did not apply them). */
  carried(reports: Report[], results: ReportResponse['results'] | undefined): void {
    if (results === undefined) {
      this.giveBack(reports);
      return;
    }
    for (const report of reports) this.#riding.delete(report);
    this.#logRejected(results);
  }

  /** A poll that carried `reports` failed: this queue sends them in a request of their own. */
  giveBack(reports: Report[]): void {
    for (const report of reports) this.#riding.delete(report);
    if (this.#closed.signal.aborted) {
      this.logger.debug('reports given back after shutdown dropped', { count: reports.length });
      return;
    }
    this.#retry.push(...reports);
    this.#drain();
  }

  /** Waits until every queued report was sent: true, or false when `timeoutMs` passed first. */
  async flush(timeoutMs: number): Promise<boolean> {
    this.#urgent = true;
    this.#startNow?.();
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
    const left = this.#queue.length + this.#retry.length + this.#inFlight.length + this.#riding.size;
    this.#queue = [];
    this.#retry = [];
    return left;
  }

  #drain(): void {
    if (this.#draining) return;
    this.#draining = new Promise<void>((resolve) => {
      this.#startNow = resolve;
      if (this.#urgent) resolve();
      else setImmediate(resolve);
    })
      .then(() => {
        this.#startNow = null;
        return this.#sendAll();
      })
      .catch((err: unknown) =>
        this.logger.error('report queue failed unexpectedly', { err: errorField(err) }),
      )
      .finally(() => {
        this.#draining = null;
        // A report added between the last check of the loop and here.
        if (this.#queue.length + this.#retry.length > 0 && !this.#closed.signal.aborted) this.#drain();
      });
  }

  async #sendAll(): Promise<void> {
    const backoff = new Backoff();
    let failing = false;
    while (this.#queue.length + this.#retry.length > 0 && !this.#closed.signal.aborted) {
      const batch = (this.#retry.length > 0 ? this.#retry : this.#queue).splice(0, this.#batchSize);
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
        this.#retry.unshift(...batch);
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
      this.#logRejected(answer?.results);
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
      this.#retry.unshift(...batch);
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
    this.#retry.unshift({
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

  #logRejected(results: ReportResponse['results'] | undefined): void {
    for (const result of results ?? []) {
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
