import type { ClaimedRun, Store } from '../store/store.ts';
import type { Clock } from './clock.ts';

export interface DispatcherOptions {
  store: Store;
  clock: Clock;
  workerLeaseMs: number;
  pollWaitMs: number;
  /** Fire ahead: how far ahead a poll with `ahead` may claim runs that are not available yet (0: never). */
  fireAheadMs?: number;
  /** A waiting poll re-checks the store this often even without an event (runs made by other nodes). */
  backstopMs?: number;
  /** Seeds `random` routing; tests pass a fixed one. */
  random?: () => number;
}

/**
 * Hands queued runs to workers' long polls. A poll claims at once when runs are ready; otherwise
 * it waits for a store event of its group (runs queued, retries due), the backstop, or the instant
 * the next queued run of its group becomes available (fired ahead, retried, jittered), then claims
 * again, until its wait is over. A poll with `ahead` also takes up to that many runs that become
 * available within `fireAheadMs`, which the worker holds until their instant; they are asked for
 * only when the ready runs did not fill `max`.
 */
export class Dispatcher {
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly groups = new Map<string, string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(private readonly options: DispatcherOptions) {
    this.unsubscribe = options.store.subscribe((event) => {
      if (event.type === 'runs') this.wake(event.group);
    });
  }

  /** Remembers a worker's group so its polls wait on that group's events only. */
  registered(workerId: string, group: string): void {
    this.groups.set(workerId, group);
  }

  async poll(
    workerId: string,
    max: number,
    waitMs: number,
    signal: AbortSignal,
    ahead = 0,
  ): Promise<ClaimedRun[]> {
    const { store, clock } = this.options;
    const wait = Math.min(Math.max(0, waitMs), this.options.pollWaitMs);
    const deadline = clock.now() + wait;
    const group = this.groups.get(workerId);
    for (;;) {
      // A worker that hung up gets nothing: runs claimed for it now would wait for its lease to end.
      if (signal.aborted || this.closed) return [];
      // Listen before claiming: an event that comes while the store is read is not lost.
      const listening = this.listen(group);
      let wakeInMs: number | undefined;
      try {
        const runs = await this.claim(workerId, max, ahead);
        const now = clock.now();
        const remaining = deadline - now;
        if (runs.length > 0 || remaining <= 0 || signal.aborted || this.closed) return runs;
        // Runs queued for later (fired ahead, retries, jitter) raise no event when they become
        // available: wake for the next of them, on whichever node made it.
        const next = (await store.nextAvailableAt(workerId, now)) ?? Number.POSITIVE_INFINITY;
        wakeInMs = Math.min(remaining, this.options.backstopMs ?? 2000, next - now);
      } finally {
        if (wakeInMs === undefined) listening.stop();
      }
      await listening.wait(wakeInMs, signal);
    }
  }

  /** One claim: up to `max` ready runs, then up to `ahead` runs due within `fireAheadMs`. */
  private async claim(workerId: string, max: number, ahead: number): Promise<ClaimedRun[]> {
    const { store, clock, workerLeaseMs } = this.options;
    const aheadMs = this.options.fireAheadMs ?? 0;
    // Job dispatch policies (routing, limits, draining) apply here: see Store.dispatchRuns.
    const runs = await store.dispatchRuns(
      workerId,
      max,
      workerLeaseMs,
      clock.now(),
      (this.options.random ?? Math.random)(),
    );
    // A full batch means a backlog: the worker has no use for runs that are not due yet.
    if (ahead > 0 && aheadMs > 0 && runs.length < max) {
      const now = clock.now();
      runs.push(...(await store.dispatchAhead(workerId, ahead, now + aheadMs, workerLeaseMs, now)));
    }
    return runs;
  }

  /** Wakes the polls of a group when a retry becomes available at `at`. */
  wakeAt(group: string, at: number): void {
    const ms = at - this.options.clock.now();
    if (ms <= 0) {
      this.wake(group);
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.wake(group);
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  /** Ends every waiting poll with what it has (nothing), so that the server can close at once. */
  close(): void {
    this.closed = true;
    this.unsubscribe();
    for (const timer of this.timers) clearTimeout(timer);
    for (const set of this.waiters.values()) for (const wake of set) wake();
  }

  private wake(group: string): void {
    for (const key of [group, '*']) {
      const set = this.waiters.get(key);
      if (!set) continue;
      this.waiters.delete(key);
      for (const wake of set) wake();
    }
  }

  /**
   * Listens for the next event of a group (any group when unknown): `wait` resolves at once when
   * one came since `listen`, else at the next one, after `ms`, or when `signal` aborts.
   */
  private listen(group: string | undefined): {
    wait(ms: number, signal: AbortSignal): Promise<void>;
    stop(): void;
  } {
    const key = group ?? '*';
    let fired = false;
    let wakeWaiter: (() => void) | undefined;
    const onEvent = () => {
      fired = true;
      wakeWaiter?.();
    };
    const set = this.waiters.get(key) ?? new Set();
    this.waiters.set(key, set);
    set.add(onEvent);
    const stop = () => this.waiters.get(key)?.delete(onEvent);
    return {
      stop,
      wait: (ms, signal) =>
        new Promise((resolve) => {
          if (fired || signal.aborted || this.closed) {
            stop();
            resolve();
            return;
          }
          const done = () => {
            clearTimeout(timer);
            signal.removeEventListener('abort', done);
            stop();
            resolve();
          };
          wakeWaiter = done;
          const timer = setTimeout(done, ms);
          signal.addEventListener('abort', done, { once: true });
        }),
    };
  }
}
