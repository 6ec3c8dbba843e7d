import { setTimeout as delay } from 'node:timers/promises';

/**
 * Time as the scheduler sees it. `now()` is wall time in epoch ms (in cluster mode it follows the
 * store's clock); `sleep()` waits on the monotonic timer and ends early, without throwing, when
 * `signal` aborts.
 */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  async sleep(ms, signal) {
    if (signal?.aborted) return;
    await delay(Math.max(0, ms), undefined, { signal }).catch(() => undefined);
  },
};

/** A clock that moves only when a test says so. Sleepers wake in time order as it advances. */
export class FakeClock implements Clock {
  private sleepers: Array<{ at: number; wake: () => void }> = [];

  constructor(private current = Date.UTC(2026, 0, 1)) {}

  now(): number {
    return this.current;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const sleeper = {
        at: this.current + Math.max(0, ms),
        wake: () => {
          this.sleepers = this.sleepers.filter((s) => s !== sleeper);
          signal?.removeEventListener('abort', sleeper.wake);
          resolve();
        },
      };
      this.sleepers.push(sleeper);
      signal?.addEventListener('abort', sleeper.wake, { once: true });
    });
  }

  /** Moves time to `at`, waking every sleeper due by then, oldest first. */
  async setTime(at: number): Promise<void> {
    for (;;) {
      const next = this.sleepers.filter((s) => s.at <= at).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.current = Math.max(this.current, next.at);
      next.wake();
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.current = at;
  }

  advance(ms: number): Promise<void> {
    return this.setTime(this.current + ms);
  }

  /**
   * Moves time by `ms` at once, as a process sees it after it stood still (SIGSTOP, a VM freeze):
   * every sleeper due meanwhile wakes late, at the new time, oldest first.
   */
  async jump(ms: number): Promise<void> {
    this.current += ms;
    await this.setTime(this.current);
  }
}

/**
 * Lets the event loop serve I/O (HTTP requests, probes, timers) before going on. A loop over store
 * calls must call it between transactions: better-sqlite3 answers synchronously, so `await` on its
 * promises alone never leaves the microtask queue, and a storm of fires starved every request.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
