import { performance } from 'node:perf_hooks';

/**
 * What a worker can show of its lease, on its own monotonic clock. The node extends the lease to
 * `its now + leaseMs` when a heartbeat (or the registration) reaches the store, which is after the
 * worker sent it: counted from the send, the worker's view ends first. It trusts the lease for
 * `leaseMs − margin` after the send of the last acknowledged heartbeat; the margin, a beat or a
 * quarter of the lease (whichever is longer), leaves room for a run that starts at the edge.
 *
 * Once the lease cannot be shown, the node may have declared the worker lost and handed its runs
 * to another worker: a run held for its instant (fire ahead) must not start then.
 */
export class WorkerLease {
  #sentAt = Number.NEGATIVE_INFINITY;
  #trustMs = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** A monotonic instant, to pass to {@link renewed} for a request sent now. */
  mark(): number {
    return this.now();
  }

  /** The node acknowledged a heartbeat or a registration sent at `sentAt` ({@link mark}). */
  renewed(sentAt: number, leaseMs: number, heartbeatMs: number): void {
    this.#trustMs = leaseMs - Math.max(heartbeatMs, leaseMs / 4);
    if (sentAt > this.#sentAt) this.#sentAt = sentAt;
  }

  /** A new registration: the old lease is nobody's now. */
  reset(): void {
    this.#sentAt = Number.NEGATIVE_INFINITY;
  }

  /** Whether the worker can still show a live lease. */
  live(): boolean {
    return this.now() - this.#sentAt < this.#trustMs;
  }
}
