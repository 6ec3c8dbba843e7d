import { performance } from 'node:perf_hooks';
import type { Store } from '../store/store.ts';
import { type Clock, systemClock } from './clock.ts';

/**
 * A clock that tells the store's time: anchored to the database clock at each sync (with half the
 * round trip added) and advanced by the monotonic clock in between, so that a step of this
 * machine's wall clock (NTP, a VM resume) changes nothing, and every node judges "due" and
 * "alive" by one clock.
 */
export class StoreClock implements Clock {
  private anchorStore = Date.now();
  private anchorMonotonic = performance.now();
  private skew = 0;

  constructor(private readonly store: Store) {}

  now(): number {
    return Math.round(this.anchorStore + (performance.now() - this.anchorMonotonic));
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
    this.anchorStore = storeTime + (after - before) / 2;
    this.anchorMonotonic = after;
    this.skew = Date.now() - this.anchorStore;
  }
}
