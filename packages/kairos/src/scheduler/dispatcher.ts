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
 * it waits for a store event of its group (runs queued, retries due) or the backstop, then claims
 * again, until its wait is over. A poll with `ahead` also takes up to that many runs that become
 * available within `fireAheadMs` (runs fired ahead, retries due soon), which the worker holds
 * until their instant; they are asked for only when the ready runs did not fill `max`.
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
    const { store, clock, workerLeaseMs } = this.options;
    const aheadMs = this.options.fireAheadMs ?? 0;
    const wait = Math.min(Math.max(0, waitMs), this.options.pollWaitMs);
    const deadline = clock.now() + wait;
    for (;;) {
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
      const remaining = deadline - clock.now();
      if (runs.length > 0 || remaining <= 0 || signal.aborted || this.closed) return runs;
      await this.waitForRuns(
        this.groups.get(workerId),
        Math.min(remaining, this.options.backstopMs ?? 2000),
        signal,
      );
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

  private waitForRuns(group: string | undefined, ms: number, signal: AbortSignal): Promise<void> {
    const key = group ?? '*';
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.waiters.get(key)?.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      const set = this.waiters.get(key) ?? new Set();
      this.waiters.set(key, set);
      set.add(done);
    });
  }
}
