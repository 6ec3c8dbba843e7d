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
 * the same way, to within its round trip. The answer with the shortest round trip of the last
 * {@link WINDOW_MS} or so (a heartbeat: a small answer, often well under a millisecond) bounds it
 * best; a run then starts at its instant mapped through that offset's upper bound, late by at most
 * that round trip (and the clocks' drift since). The answer's own bounds still hold: never later
 * than the upper bound, and an offset that would start a run before the lower bound (a clock
 * stepped since) is dropped.
 */
export class NodeClock {
  /** Per node URL, the best answers of the current window and of the one before (a windowed minimum). */
  readonly #nodes = new Map<string, { current: Sample; previous: Sample | null }>();

  /** An answer of node `url` that left at `askedAt`, arrived at `answeredAt` and carried `nodeTime`. */
  sample(url: string, askedAt: number, nodeTime: number | undefined, answeredAt: number): void {
    if (nodeTime === undefined || answeredAt < askedAt) return;
    const sample: Sample = { lead: nodeTime - answeredAt, roundTrip: answeredAt - askedAt, at: answeredAt };
    const best = this.#nodes.get(url);
    if (!best) {
      this.#nodes.set(url, { current: sample, previous: null });
      return;
    }
    if (answeredAt - best.current.at >= WINDOW_MS) {
      // A new window: the last one's best stays for one more, so that the estimate never rests on
      // the first answer of a window alone.
      best.previous = best.current;
      best.current = sample;
    } else if (sample.roundTrip <= best.current.roundTrip) {
      best.current = { ...sample, at: best.current.at };
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
    return previous.roundTrip < current.roundTrip ? previous : current;
  }
}

/** How long an answer's bound on the offset is used (one to two windows): clocks drift apart, slowly (at 100 ppm, 1 ms in 10 s). */
export const WINDOW_MS = 5000;

/** One answer's bound on a node's clock: `lead`, how far it is ahead of ours at least (its `nodeTime` minus the arrival). */
interface Sample {
  lead: number;
  roundTrip: number;
  /** When its window began (the arrival of the window's first answer). */
  at: number;
}
