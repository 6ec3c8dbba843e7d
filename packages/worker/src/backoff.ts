/**
 * Exponential backoff between retries of a failing call: 100 ms doubling up to 5 s. Each delay is
 * drawn from [d/2, d] so that workers cut off by the same outage do not all come back at once.
 */
export class Backoff {
  #next: number;

  constructor(
    private readonly minMs = 100,
    private readonly maxMs = 5000,
    private readonly random: () => number = Math.random,
  ) {
    this.#next = minMs;
  }

  /** The delay before the next retry; each call doubles the following one. */
  next(): number {
    const delay = this.#next;
    this.#next = Math.min(delay * 2, this.maxMs);
    return Math.round(delay / 2 + (delay / 2) * this.random());
  }

  /** After a success: the next failure starts again from the shortest delay. */
  reset(): void {
    this.#next = this.minMs;
  }
}
