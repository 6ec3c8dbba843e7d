/**
 * When, on this process's monotonic clock, a held run starts: the node says its instant as a delay
 * (`startInMs`) from its clock's `time` (`nodeClock` of the poll answer), and the worker maps that
 * to its own clock.
 *
 * The answer alone bounds the instant: the node read its clock after the request left and before
 * its answer arrived, so the instant lies between `askedAt + startInMs` and `answeredAt + startInMs`.
 * The upper bound never starts a run early, but it is late by the answer's whole way back (the node
 * writing a large answer, the network, the worker's event loop), which on a busy machine was 2–19
 * ms for an answer of 500 runs, and different for each answer: the halves of one instant's runs
 * started apart.
 *
 * Every answer that carries the node's clock (polls, heartbeats) bounds the offset between the two
 * clocks the same way: the node's clock leads ours by at least `time − answeredAt` and at most
 * `time − askedAt`. The highest lower bound of the last {@link WINDOW_MS} or so is the tightest; a
 * run then starts at its instant mapped through it, late by at most the way back of the answer
 * that gave it. Both clocks are monotonic (they never step), so the offset moves only as fast as
 * the clocks' rates differ: a bound loses {@link DRIFT} of its age, and a run of its wait. A start
 * moves at most {@link MAX_AHEAD_OF_ARRIVAL_MS} ahead of the answer's own bound. If the highest lower bound
 * passes the lowest upper bound, they came from clocks that moved apart: the bounds start afresh
 * from the newest answer. Clocks are told apart by the node's `id` (one per node process), not by
 * URL: behind a load balancer one URL reaches several.
 */
export class NodeClock {
  /** Per node clock id, the tightest bounds of the current window and of the one before. */
  readonly #clocks = new Map<string, { current: Window; previous: Window | null }>();

  /** An answer that left at `askedAt`, arrived at `answeredAt` (this process's monotonic clock) and carried `clock`. */
  sample(askedAt: number, clock: NodeClockReading | null | undefined, answeredAt: number): void {
    if (!isReading(clock) || !(answeredAt >= askedAt)) return;
    const window: Window = {
      start: answeredAt,
      lower: { value: clock.time - answeredAt, at: answeredAt },
      upper: { value: clock.time - askedAt, at: answeredAt },
    };
    const known = this.#clocks.get(clock.id);
    if (!known) {
      // A node process not seen before: forget those whose bounds have all expired (restarted nodes).
      for (const [id, old] of this.#clocks)
        if (answeredAt - old.current.start >= 2 * WINDOW_MS) this.#clocks.delete(id);
      this.#clocks.set(clock.id, { current: window, previous: null });
      return;
    }
    if (answeredAt - known.current.start >= WINDOW_MS) {
      // A new window: the last one's bounds stay for one more, so that the estimate never rests on
      // the first answer of a window alone.
      known.previous = known.current;
      known.current = window;
    } else {
      if (aged(window.lower, -1, answeredAt) >= aged(known.current.lower, -1, answeredAt))
        known.current.lower = window.lower;
      if (aged(window.upper, 1, answeredAt) <= aged(known.current.upper, 1, answeredAt))
        known.current.upper = window.upper;
    }
    if (bound(known, -1, answeredAt) > bound(known, 1, answeredAt)) {
      // The bounds no longer meet: a clock was not what it seemed. The newest answer alone decides.
      this.#clocks.set(clock.id, { current: window, previous: null });
    }
  }

  /**
   * This process's monotonic instant for a run that starts `startInMs` after `clock`, in an answer
   * that left at `askedAt` and arrived at `answeredAt` (given to {@link sample} first).
   */
  startAt(
    startInMs: number,
    clock: NodeClockReading | null | undefined,
    askedAt: number,
    answeredAt: number,
  ): number {
    // Even counted from the answer's arrival, a wait may run short by the drift over it.
    const wait = startInMs * (1 + DRIFT);
    const latest = answeredAt + wait;
    if (!isReading(clock)) return latest;
    const known = this.#clocks.get(clock.id);
    if (!known) return latest;
    const mapped = clock.time + wait - bound(known, -1, answeredAt);
    // Not before the answer's own lower bound (its bounds were checked against the others in sample).
    if (!(mapped >= askedAt + wait)) return latest;
    // However wrong a model of the clocks may be, it moves a start at most this far ahead.
    return Math.max(Math.min(mapped, latest), latest - MAX_AHEAD_OF_ARRIVAL_MS);
  }
}
/** A node's clock as an answer carries it (`nodeClock`). */
export interface NodeClockReading {
  id: string;
  time: number;
}

/** How long an answer's bounds are used (one to two windows). */
export const WINDOW_MS = 5000;

/**
 * How fast the two monotonic clocks are assumed to move apart at most: 1,000 ppm, two clocks each
 * slewed by ntpd's limit of 500 ppm in opposite directions. A bound loses that much of its age (1 ms
 * after a second), and a held run that much of its wait. A daemon that slews faster (chrony, after a
 * VM pause) breaks the assumption; {@link MAX_AHEAD_OF_ARRIVAL_MS} bounds what that costs.
 */
export const DRIFT = 0.001;

/**
 * The most the mapping starts a run ahead of its answer's arrival plus `startInMs`, whatever the
 * bounds say: what a wrong model of the clocks can cost. The way back of an answer of 500 runs on a
 * busy machine measured 2–19 ms; a slow network adds its latency.
 */
export const MAX_AHEAD_OF_ARRIVAL_MS = 250;

/** A bound on the offset as it was at `at`. */
interface Bound {
  value: number;
  at: number;
}

/** The tightest bounds of one window, which began at `start`. */
interface Window {
  start: number;
  lower: Bound;
  upper: Bound;
}

/**
 * How far the node's clock leads ours at `now`: at least (`side` −1, −∞ when no bound is recent
 * enough) or at most (+1, +∞), over the recent windows.
 */
function bound(known: { current: Window; previous: Window | null }, side: -1 | 1, now: number): number {
  let tightest = side * Number.POSITIVE_INFINITY;
  for (const window of [known.current, known.previous]) {
    if (!window || now - window.start >= 2 * WINDOW_MS) continue;
    const value = aged(side === -1 ? window.lower : window.upper, side, now);
    tightest = side === -1 ? Math.max(tightest, value) : Math.min(tightest, value);
  }
  return tightest;
}

/** A bound at `now`, widened by the drift since it was taken: `side` −1 for a lower bound, +1 for an upper. */
function aged(bound: Bound, side: -1 | 1, now: number): number {
  return bound.value + side * DRIFT * Math.max(0, now - bound.at);
}

/** A reading to use: from a node that sent one in the shape this worker knows. */
function isReading(clock: NodeClockReading | null | undefined): clock is NodeClockReading {
  return (
    typeof clock === 'object' && clock !== null && typeof clock.id === 'string' && Number.isFinite(clock.time)
  );
}
