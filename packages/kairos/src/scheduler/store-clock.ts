import { performance } from 'node:perf_hooks';
import type { Store } from '../store/store.ts';
import { type Clock, systemClock } from './clock.ts';

/**
 * A clock that tells the store's time: anchored to the database clock at each sync and advanced by
 * the monotonic clock in between, so that a step of this machine's wall clock (NTP, a VM resume)
 * changes nothing, and every node judges "due" and "alive" by one clock.
 *
 * A sync only tells that the store's time, when its answer came, lay between the time it read and
 * that plus the round trip. The first sync takes the middle; later ones keep the running estimate
 * when it lies in that range and otherwise move it to the nearer end, never further. A sync whose
 * query hung (the node's link to the database cut for seconds, then healed) so moves the clock by
 * nothing: taking the middle of a 9 s round trip put the clock up to 4.5 s ahead, and the reaper
 * then judged live workers' leases ended.
 */
export class StoreClock implements Clock {
  private anchorStore = Date.now();
  private anchorMonotonic = performance.now();
  private synced = false;
  private skew = 0;

  constructor(private readonly store: Store) {}

  /** Whole milliseconds, truncated as `Date.now()` is: a delay counted from it is never short. */
  now(): number {
    return Math.floor(this.anchorStore + (performance.now() - this.anchorMonotonic));
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return systemClock.sleep(ms, signal);
  }

  /** This machine's wall clock minus the store's, in ms, as of the last sync. */
  get skewMs(): number {
    return this.skew;
  }

  async sync(): Promise<void> {
    const before = performance.now();
    const storeTime = await this.store.databaseTime();
    const after = performance.now();
    const roundTrip = after - before;
    const estimate = this.anchorStore + (after - this.anchorMonotonic);
    this.anchorStore = this.synced
      ? Math.min(Math.max(estimate, storeTime), storeTime + roundTrip)
      : storeTime + roundTrip / 2;
    this.anchorMonotonic = after;
    this.synced = true;
    this.skew = Date.now() - this.anchorStore;
  }
}
