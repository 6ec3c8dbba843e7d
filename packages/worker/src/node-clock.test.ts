import { describe, expect, it } from 'vitest';
import { NodeClock, WINDOW_MS } from './node-clock.ts';

const URL_A = 'http://a:8080';
const URL_B = 'http://b:8080';
/** The nodes' clocks run an hour ahead of the worker's: nothing assumes they agree. */
const AHEAD = 3_600_000;

describe('NodeClock', () => {
  it('without the node time, or before any answer, starts a run its delay after the answer arrived', () => {
    const clock = new NodeClock();
    expect(clock.startAt(URL_A, 500, undefined, 1000, 1040)).toBe(1540);
    expect(clock.startAt(URL_A, 500, 1020 + AHEAD, 1000, 1040)).toBe(1540);
  });

  it('maps the instant through the highest bound of the answers, not the late arrival of a slow one', () => {
    const clock = new NodeClock();
    // A heartbeat: left at 1000, the node read 1001 + AHEAD, arrived at 1002 (the node leads by AHEAD − 1 at least).
    clock.sample(URL_A, 1000, 1001 + AHEAD, 1002);
    // One with a longer round trip but a quicker way back: the node leads by AHEAD at least.
    clock.sample(URL_A, 1010, 1013 + AHEAD, 1013);
    // A slow answer (the node read its clock at 1100 + AHEAD, the answer arrived 31 ms later): its
    // run's instant is the node's 1100 + 500, here 1600 at most.
    clock.sample(URL_A, 1050, 1100 + AHEAD, 1131);
    expect(clock.startAt(URL_A, 500, 1100 + AHEAD, 1050, 1131)).toBe(1600);
  });

  it('never starts a run later than its answer alone allows', () => {
    const clock = new NodeClock();
    // The only sample says the node's clock leads by AHEAD − 80 at least …
    clock.sample(URL_A, 1000, 1000 + AHEAD - 40, 1040);
    // … and this answer arrived 5 ms after the node read its clock: the instant is at most 1505.
    expect(clock.startAt(URL_A, 500, 1000 + AHEAD, 990, 1005)).toBe(1505);
  });

  it('drops an offset that would start a run before its answer left (a clock stepped)', () => {
    const clock = new NodeClock();
    clock.sample(URL_A, 1000, 1001 + AHEAD, 1002);
    // The node's clock stepped back a minute: the old offset maps the instant a minute early.
    expect(clock.startAt(URL_A, 500, 2000 + AHEAD - 60_000, 1990, 2010)).toBe(2510);
    // Forgotten: the next answer alone decides, until new samples come.
    expect(clock.startAt(URL_A, 500, 2100 + AHEAD - 60_000, 2090, 2110)).toBe(2610);
  });

  it('keeps each node apart: their clocks differ', () => {
    const clock = new NodeClock();
    clock.sample(URL_A, 1000, 1001 + AHEAD, 1002);
    clock.sample(URL_B, 1000, 1001 - AHEAD, 1002);
    expect(clock.startAt(URL_A, 500, 1100 + AHEAD, 1050, 1131)).toBe(1601);
    expect(clock.startAt(URL_B, 500, 1100 - AHEAD, 1050, 1131)).toBe(1601);
  });

  it('forgets a bound after two windows: clocks drift apart', () => {
    const clock = new NodeClock();
    clock.sample(URL_A, 1000, 1001 + AHEAD, 1002);
    const later = 1002 + 2 * WINDOW_MS;
    clock.sample(URL_A, later - 30, later - 10 + AHEAD, later);
    // The quick answer of two windows ago no longer counts; the slow one of now does.
    expect(clock.startAt(URL_A, 500, later - 10 + AHEAD, later - 30, later)).toBe(later + 500);
  });

  it('keeps the best answer of the last window into the next one', () => {
    const clock = new NodeClock();
    clock.sample(URL_A, 1000, 1001 + AHEAD, 1002);
    const next = 1002 + WINDOW_MS;
    clock.sample(URL_A, next - 30, next - 10 + AHEAD, next);
    expect(clock.startAt(URL_A, 500, next - 10 + AHEAD, next - 30, next)).toBe(next - 10 + 500 + 1);
  });

  it('ignores answers without the node time', () => {
    const clock = new NodeClock();
    clock.sample(URL_A, 1000, undefined, 1002);
    expect(clock.startAt(URL_A, 500, 1100 + AHEAD, 1050, 1131)).toBe(1631);
  });
});
