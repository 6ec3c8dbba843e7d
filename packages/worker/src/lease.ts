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
  /** After a lapse, the lease counts again only from a heartbeat sent after this instant. */
  #lapsedUntil = Number.NEGATIVE_INFINITY;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** A monotonic instant, to pass to {@link renewed} for a request sent now. */
  mark(): number {
    return this.now();
  }

  /**
   * The node acknowledged a heartbeat sent at `sentAt` ({@link mark}). After a lapse, that answer
   * does not make the lease live yet: the reaper may have been ending the worker's attempts while
   * the lapsed lease was renewed, after the answer was written. The answer to the next heartbeat,
   * sent after this one came back, names them (to cancel), and makes the lease live again.
   */
  renewed(sentAt: number, leaseMs: number, heartbeatMs: number): void {
    const lapsed = this.#sentAt !== Number.NEGATIVE_INFINITY && this.now() - this.#sentAt >= this.#trustMs;
    this.#trustMs = leaseMs - Math.max(heartbeatMs, leaseMs / 4);
    if (sentAt > this.#sentAt) this.#sentAt = sentAt;
    if (lapsed) this.#lapsedUntil = this.now();
  }

  /** A new registration (acknowledged at once): its lease is fresh, and the old one nobody's. */
  registered(sentAt: number, leaseMs: number, heartbeatMs: number): void {
    this.#lapsedUntil = Number.NEGATIVE_INFINITY;
    this.#sentAt = Number.NEGATIVE_INFINITY;
    this.renewed(sentAt, leaseMs, heartbeatMs);
  }

  /** The node forgot this worker: whatever it held is nobody's until it registers again. */
  reset(): void {
    this.#sentAt = Number.NEGATIVE_INFINITY;
  }

  /** Whether the worker can show a live lease. */
  live(): boolean {
    return this.#sentAt > this.#lapsedUntil && this.now() - this.#sentAt < this.#trustMs;
  }
}
