/**
 * When, on this process's clock, a held run starts: the node says its instant as a delay
 * (`startInMs`) from its own clock's `nodeTime`, and the worker maps that to its clock.
 *
 * The answer alone bounds the instant: the node read `nodeTime` after the request left and before
 * its answer arrived, so the instant lies between `askedAt + startInMs` and `answeredAt + startInMs`.
 * The upper bound never starts a run early, but it is late by the answer's whole way back (the node
 * writing a large answer, the network, the worker's event loop), which on a busy machine was 2–19
 * ms for an answer of 500 runs, and different for each answer: the halves of one instant's runs
 * started apart.
 *
 * Every answer that carries `nodeTime` (polls, heartbeats) bounds the offset between the two clocks
 * the same way: the node's clock leads ours by at least `nodeTime` minus the answer's arrival. The
 * highest such bound of the last {@link WINDOW_MS} or so is the tightest; a run then starts at its
 * instant mapped through it, late by at most the way back of the answer that gave it (and the
 * clocks' drift since). The answer's own bounds still hold: never later than the upper bound, and
 * an offset that would start a run before the lower bound (a clock stepped) is dropped.
 */
export class NodeClock {
  /** Per node URL, the highest bound of the current window and of the one before (a windowed maximum). */
  readonly #nodes = new Map<string, { current: Sample; previous: Sample | null }>();

  /** An answer of node `url` that left at `askedAt`, arrived at `answeredAt` and carried `nodeTime`. */
  sample(url: string, askedAt: number, nodeTime: number | undefined, answeredAt: number): void {
    if (nodeTime === undefined || answeredAt < askedAt) return;
    const lead = nodeTime - answeredAt;
    const best = this.#nodes.get(url);
    if (!best) {
      this.#nodes.set(url, { current: { lead, at: answeredAt }, previous: null });
      return;
    }
    if (answeredAt - best.current.at >= WINDOW_MS) {
      // A new window: the last one's bound stays for one more, so that the estimate never rests on
      // the first answer of a window alone.
      best.previous = best.current;
      best.current = { lead, at: answeredAt };
    } else if (lead > best.current.lead) {
      best.current.lead = lead;
    }
  }

  /**
   * This clock's instant for a run that starts `startInMs` after `nodeTime` on the clock of node
   * `url`, in an answer to a request that left at `askedAt` and arrived at `answeredAt`.
   */
  startAt(
    url: string,
    startInMs: number,
    nodeTime: number | undefined,
    askedAt: number,
    answeredAt: number,
  ): number {
    const latest = answeredAt + startInMs;
    const best = this.#best(url, answeredAt);
    if (nodeTime === undefined || best === null) return latest;
    const mapped = nodeTime + startInMs - best.lead;
    if (mapped < askedAt + startInMs) {
      // Not possible with the offset of that answer: a clock moved since. Start afresh.
      this.#nodes.delete(url);
      return latest;
    }
    return Math.min(mapped, latest);
  }

  #best(url: string, now: number): Sample | null {
    const best = this.#nodes.get(url);
    if (!best) return null;
    const { current, previous } = best;
    if (now - current.at >= 2 * WINDOW_MS) return null;
    if (previous === null || now - previous.at >= 2 * WINDOW_MS) return current;
    return previous.lead > current.lead ? previous : current;
  }
}

/** How long an answer's bound on the offset is used (one to two windows): clocks drift apart, slowly (at 100 ppm, 1 ms in 10 s). */
export const WINDOW_MS = 5000;

/** The bound of a window: how far the node's clock leads ours at least (an answer's `nodeTime` minus its arrival). */
interface Sample {
  lead: number;
  /** When its window began (the arrival of the window's first answer). */
  at: number;
}
