import { clearTimeout, setTimeout } from 'node:timers';

/** Resolves after `ms`, or as soon as `signal` aborts. Never rejects: loops check their signal. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Resolves true when `promise` settles within `ms`, false otherwise; leaves no timer behind. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const stop = new AbortController();
  let settled = false;
  const watched = promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await Promise.race([watched, sleep(ms, stop.signal)]);
  stop.abort();
  return settled;
}

/** A wake-up call: `wait` resolves at the next `notify`, or when `signal` aborts. */
export class Wakeup {
  #waiters = new Set<() => void>();

  wait(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        this.#waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  notify(): void {
    if (this.#waiters.size === 0) return;
    for (const done of [...this.#waiters]) done();
  }
}

/**
 * Milliseconds on this process's monotonic clock, counted from its wall-clock start: a clock that
 * never steps (NTP, a changed system time). Held runs' instants and the offsets of nodes' clocks
 * are kept on it.
 */
export function monotonicNow(): number {
  return performance.timeOrigin + performance.now();
}
