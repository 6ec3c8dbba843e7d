import { describe, expect, it } from 'vitest';
import { DRIFT, MAX_AHEAD_OF_ARRIVAL_MS, NodeClock, type NodeClockReading, WINDOW_MS } from './node-clock.ts';

/** The nodes' clocks run an hour ahead of the worker's: nothing assumes they agree. */
const AHEAD = 3_600_000;

function on(time: number, id = 'a'): NodeClockReading {
  return { id, time };
}

describe('NodeClock', () => {
  it('without the node clock, or before any answer of it, starts a run its delay after the answer arrived', () => {
    const clock = new NodeClock();
    expect(clock.startAt(500, undefined, 1000, 1040)).toBe(1540 + DRIFT * 500);
    expect(clock.startAt(500, on(1020 + AHEAD), 1000, 1040)).toBe(1540 + DRIFT * 500);
  });

  it('maps the instant through the highest bound of the answers, not the late arrival of a slow one', () => {
    const clock = new NodeClock();
    // A heartbeat: left at 1000, the node read 1001 + AHEAD, arrived at 1002 (the node leads by AHEAD − 1 at least).
    clock.sample(1000, on(1001 + AHEAD), 1002);
    // One with a longer round trip but a quicker way back: the node leads by AHEAD at least.
    clock.sample(1010, on(1013 + AHEAD), 1013);
    // A slow answer (the node read its clock at 1100 + AHEAD, the answer arrived 20 ms later): its
    // run's instant is the node's 1100 + 500, here 1600 and the drift since the bound and over the wait.
    clock.sample(1050, on(1100 + AHEAD), 1120);
    expect(clock.startAt(500, on(1100 + AHEAD), 1050, 1120)).toBeCloseTo(
      1600 + DRIFT * (1120 - 1013) + DRIFT * 500,
      9,
    );
  });

  it('moves a start at most MAX_AHEAD_OF_ARRIVAL_MS ahead of its answer alone', () => {
    const clock = new NodeClock();
    clock.sample(1000, on(1001 + AHEAD), 1002);
    // An answer 400 ms on its way back: mapped, its run would start 399 ms before arrival + delay.
    clock.sample(1050, on(1100 + AHEAD), 1500);
    expect(clock.startAt(500, on(1100 + AHEAD), 1050, 1500)).toBe(
      2000 + DRIFT * 500 - MAX_AHEAD_OF_ARRIVAL_MS,
    );
  });

  it('never starts a run later than its answer alone allows', () => {
    const clock = new NodeClock();
    clock.sample(1000, on(1000 + AHEAD - 40), 1040);
    // This answer arrived 5 ms after the node read its clock: the instant is 1505 at most, and the drift over the wait.
    clock.sample(990, on(1000 + AHEAD), 1005);
    expect(clock.startAt(500, on(1000 + AHEAD), 990, 1005)).toBe(1505 + DRIFT * 500);
  });

  it('starts afresh from the newest answer when the bounds no longer meet', () => {
    const clock = new NodeClock();
    clock.sample(1000, on(1001 + AHEAD), 1002);
    // The node's clock now reads 800 ms less than the first answer implies (not a monotonic clock
    // after all): this answer's upper bound is below the first's lower bound.
    clock.sample(2000, on(2001 + AHEAD - 800), 2002);
    // A long poll that waited since 0 cannot tell by itself; the bounds of the heartbeat after the
    // step do: the run starts at the node's 2100 − 800 + 500, not 800 ms before.
    clock.sample(0, on(2100 + AHEAD - 800), 2101);
    expect(clock.startAt(500, on(2100 + AHEAD - 800), 0, 2101)).toBeCloseTo(2601 + DRIFT * 500, 9);
  });

  it('keeps the clocks of node processes apart, whatever URL reached them', () => {
    const clock = new NodeClock();
    clock.sample(1000, on(1001 + AHEAD, 'a'), 1002);
    clock.sample(1000, on(1001 - AHEAD, 'b'), 1002);
    const mapped = 1601 + DRIFT * (1120 - 1002) + DRIFT * 500;
    expect(clock.startAt(500, on(1100 + AHEAD, 'a'), 1050, 1120)).toBeCloseTo(mapped, 9);
    expect(clock.startAt(500, on(1100 - AHEAD, 'b'), 1050, 1120)).toBeCloseTo(mapped, 9);
    // A process that restarted has another id: its answers alone count until it has bounds.
    expect(clock.startAt(500, on(1100 + AHEAD, 'c'), 1050, 1120)).toBe(1620 + DRIFT * 500);
  });

  it('widens a bound by the drift the clocks may have had since it was taken', () => {
    const clock = new NodeClock();
    clock.sample(1000, on(1001 + AHEAD), 1002);
    const later = 1002 + WINDOW_MS - 2;
    clock.sample(later - 40, on(later - 31 + AHEAD), later);
    // The heartbeat's bound, AHEAD − 1, is worth AHEAD − 1 − DRIFT × its age now.
    const lead = AHEAD - 1 - DRIFT * (later - 1002);
    expect(clock.startAt(500, on(later - 31 + AHEAD), later - 40, later)).toBeCloseTo(
      later - 31 + AHEAD + 500 - lead + DRIFT * 500,
      9,
    );
  });

  it('forgets bounds after two windows', () => {
    const clock = new NodeClock();
    clock.sample(1000, on(1001 + AHEAD), 1002);
    const later = 1002 + 2 * WINDOW_MS;
    clock.sample(later - 30, on(later - 10 + AHEAD), later);
    // The quick answer of two windows ago no longer counts; the slow one of now does.
    expect(clock.startAt(500, on(later - 10 + AHEAD), later - 30, later)).toBe(later + 500 + DRIFT * 500);
  });

  it("keeps the last window's bound into the next one", () => {
    const clock = new NodeClock();
    clock.sample(1000, on(1001 + AHEAD), 1002);
    const next = 1002 + WINDOW_MS;
    clock.sample(next - 30, on(next - 10 + AHEAD), next);
    const lead = AHEAD - 1 - DRIFT * WINDOW_MS;
    expect(clock.startAt(500, on(next - 10 + AHEAD), next - 30, next)).toBeCloseTo(
      next - 10 + AHEAD + 500 - lead + DRIFT * 500,
      9,
    );
  });

  it('ignores readings it cannot use', () => {
    const clock = new NodeClock();
    clock.sample(1000, on(Number.NaN), 1002);
    clock.sample(1000, { time: 1001 + AHEAD } as NodeClockReading, 1002);
    expect(clock.startAt(500, on(1100 + AHEAD), 1050, 1131)).toBe(1631 + DRIFT * 500);
    expect(clock.startAt(500, on(Number.POSITIVE_INFINITY), 1050, 1131)).toBe(1631 + DRIFT * 500);
    clock.sample(1000, null, 1002);
    expect(clock.startAt(500, null, 1050, 1131)).toBe(1631 + DRIFT * 500);
  });
});
