/**
 * The start/stop of a scheduler loop (the reaper, the pruner, the alert service): `body` runs from
 * {@link start} until {@link stop}, which aborts {@link signal} (ending a sleep or a send waiting on
 * it) and waits for `body` to return. `body` loops `while (loop.running)`.
 *
 * States: idle (never started) → running (start) → stopped (stop) → running (start again) …
 */
export class BackgroundLoop {
  private active = false;
  private controller = new AbortController();
  private done: Promise<void> | undefined;

  constructor(private readonly body: () => Promise<void>) {}

  /** Between start() and stop(). */
  get running(): boolean {
    return this.active;
  }

  /** Started once and asked to stop since: work in progress ends where it is. */
  get stopped(): boolean {
    return !this.active && this.done !== undefined;
  }

  /** Aborts at stop(): pass it to sleeps and sends. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  start(): void {
    if (this.active) return;
    this.active = true;
    this.controller = new AbortController();
    this.done = this.body();
  }

  async stop(): Promise<void> {
    this.active = false;
    this.controller.abort();
    await this.done;
  }
}
