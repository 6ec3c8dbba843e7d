import type { ClaimedRun, Store } from '../store/store.ts';
import type { Clock } from './clock.ts';

export interface DispatcherOptions {
  store: Store;
  clock: Clock;
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
 * again, until its wait is over. A poll with `ahead` that finds no run ready takes up to that many
 * runs that become available within `fireAheadMs`, which the worker holds until their instant
 * (a worker with ready runs has no use for them yet: it polls again as soon as it has a free slot).
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
    /** The worker's number of this poll, kept with what it claims (see `Store.heartbeat`). */
    seq: number | null = null,
  ): Promise<ClaimedRun[]> {
    const { store, clock } = this.options;
    const aheadMs = this.options.fireAheadMs ?? 0;
    const random = this.options.random ?? Math.random;
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
        // Job dispatch policies (routing, limits, draining) apply here: see Store.dispatchRuns.
        const now = clock.now();
        const { runs, nextAvailableAt } = await store.dispatchForPoll(workerId, max, now, random(), seq);
        if (runs.length > 0) return runs;
        // Nothing ready: the runs that become available next (fired ahead, retries, jitter) raise
        // no event then, so the wait ends at the next of them, on whichever node made it; those
        // within the fire-ahead window go now to a poll that holds runs ahead.
        const next = nextAvailableAt ?? Number.POSITIVE_INFINITY;
        if (ahead > 0 && aheadMs > 0 && next <= now + aheadMs) {
          const held = await store.dispatchAhead(workerId, ahead, now + aheadMs, now, seq);
          if (held.length > 0) return held;
        }
        const remaining = deadline - clock.now();
        if (remaining <= 0 || signal.aborted || this.closed) return [];
        wakeInMs = Math.min(remaining, this.options.backstopMs ?? 2000, next - clock.now());
      } finally {
        if (wakeInMs === undefined) listening.stop();
      }
      await listening.wait(wakeInMs, signal);
    }
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
