import { type AttemptRef, KairosApiError, type WorkerLogEntry, type WorkerLogsRequest } from '@kairos/client';
import { Backoff } from './backoff.ts';
import { errorField, type WorkerLogger } from './logger.ts';
import { sleep, Wakeup } from './timing.ts';

/** Lines per request; the node accepts up to 1000. */
export const LOG_BATCH = 1000;
/** Lines held while the node cannot be reached; later ones are dropped (and counted). */
export const MAX_QUEUED_LINES = 50_000;
/** The node's bound on one message; longer ones are cut here rather than refused there. */
const MAX_MESSAGE = 8192;

type Progress = AttemptRef & { value: number; message?: string };

/**
 * Ships run logs and progress to the node: one request at a time, everything queued meanwhile in
 * the next one, so a handler that logs in a tight loop costs a request per batch, not per line.
 * A failed request is retried with backoff; a batch the node refuses (400/413) is dropped.
 */
export class LogShipper {
  #queue: WorkerLogEntry[] = [];
  /** The latest progress per attempt: older values are never worth sending. */
  #progress = new Map<string, Progress>();
  #sending: Promise<void> | null = null;
  #dropped = 0;
  /** Lines queued and lines done (sent, or refused for good) so far: FIFO, so a flush waits for a watermark. */
  #queued = 0;
  #done = 0;
  readonly #progressed = new Wakeup();
  readonly #closed = new AbortController();

  constructor(
    private readonly send: (request: WorkerLogsRequest) => Promise<unknown>,
    private readonly logger: WorkerLogger,
  ) {}

  log(entry: WorkerLogEntry): void {
    if (this.#closed.signal.aborted) return;
    if (this.#queue.length >= MAX_QUEUED_LINES) {
      if (this.#dropped++ === 0)
        this.logger.warn('run log queue full: dropping lines until the node answers');
      return;
    }
    if (entry.message.length > MAX_MESSAGE) entry.message = `${entry.message.slice(0, MAX_MESSAGE - 1)}…`;
    this.#queue.push(entry);
    this.#queued++;
    this.#kick();
  }

  progress(progress: Progress): void {
    if (this.#closed.signal.aborted) return;
    this.#progress.set(`${progress.runId}:${progress.attempt}`, progress);
    this.#kick();
  }

  /** Lines queued and not sent yet (nor refused for good). */
  get unsent(): number {
    return this.#queued - this.#done;
  }

  /**
   * Waits until every line queued so far was sent (lines queued later, by other attempts, do not
   * hold it up): true, or false when `timeoutMs` passed first.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    const target = this.#queued;
    const deadline = Date.now() + timeoutMs;
    while (this.#done < target) {
      const left = deadline - Date.now();
      if (left <= 0 || this.#closed.signal.aborted) return false;
      const stop = new AbortController();
      const timer = setTimeout(() => stop.abort(), left);
      await this.#progressed.wait(AbortSignal.any([stop.signal, this.#closed.signal]));
      clearTimeout(timer);
    }
    return true;
  }

  /** Stops sending; answers how many lines were left unsent. */
  close(): number {
    this.#closed.abort();
    const left = this.#queue.length;
    this.#queue = [];
    this.#progress.clear();
    return left;
  }

  #kick(): void {
    if (this.#sending) return;
    this.#sending = this.#sendAll()
      .catch((err: unknown) =>
        this.logger.error('log shipping failed unexpectedly', { err: errorField(err) }),
      )
      .finally(() => {
        this.#sending = null;
        if ((this.#queue.length > 0 || this.#progress.size > 0) && !this.#closed.signal.aborted) this.#kick();
      });
  }

  async #sendAll(): Promise<void> {
    // Let the handler's synchronous burst of lines pile up into one batch.
    await new Promise((resolve) => setImmediate(resolve));
    const backoff = new Backoff();
    while ((this.#queue.length > 0 || this.#progress.size > 0) && !this.#closed.signal.aborted) {
      const logs = this.#queue.splice(0, LOG_BATCH);
      const progress = [...this.#progress.values()];
      this.#progress.clear();
      try {
        await this.send(progress.length > 0 ? { logs, progress } : { logs });
        this.#done += logs.length;
        this.#progressed.notify();
        backoff.reset();
        if (this.#dropped > 0) {
          this.logger.warn('run log lines were dropped while the queue was full', { dropped: this.#dropped });
          this.#dropped = 0;
        }
      } catch (err) {
        if (this.#closed.signal.aborted) return;
        if (err instanceof KairosApiError && (err.status === 400 || err.status === 413)) {
          this.logger.warn('the node refused a batch of run log lines; dropped', {
            lines: logs.length,
            err: errorField(err),
          });
          this.#done += logs.length;
          this.#progressed.notify();
          continue;
        }
        this.#queue.unshift(...logs);
        for (const p of progress) {
          const key = `${p.runId}:${p.attempt}`;
          if (!this.#progress.has(key)) this.#progress.set(key, p);
        }
        await sleep(backoff.next(), this.#closed.signal);
      }
    }
  }
}
