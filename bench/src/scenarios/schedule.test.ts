import { describe, expect, it } from 'vitest';
import { suitsWindow, waitToSuit, windowStart } from './schedule.ts';

const MINUTE = 60_000;
const T = 1_700_000_020_000; // 40 s past a minute (28,333,333 minutes and 40 s since the epoch)

describe('windowStart', () => {
  it('opens a per-second window at once', () => {
    expect(windowStart(T + 0.5, 1000, 60_000)).toBe(T + 0.5);
  });

  it.each([30_000, 60_000])(
    'holds the minute between 1 s after opening and 15 s before closing (%i ms)',
    (windowMs) => {
      for (let at = T; at < T + MINUTE; at += 700) {
        const from = windowStart(at, MINUTE, windowMs);
        const minute = Math.ceil(from / MINUTE) * MINUTE;
        expect(from).toBeGreaterThanOrEqual(at);
        expect(minute - from).toBeGreaterThanOrEqual(1000);
        expect(from + windowMs - minute).toBeGreaterThanOrEqual(15_000);
      }
    },
  );
});

describe('suitsWindow', () => {
  const minute = Math.ceil(T / MINUTE) * MINUTE; // 20 s after T

  it('is true where the window opens at once whatever the error, false where it waits for its minute', () => {
    // The minute 20 s ahead: the window opens at once, even 3 s earlier or later.
    expect(suitsWindow(minute - 20_000, MINUTE, 60_000, { maxWaitMs: 5000, errorMs: 3000 })).toBe(true);
    // The minute 2 s ahead: 3 s later it has passed, and the window waits for the next one.
    expect(suitsWindow(minute - 2000, MINUTE, 60_000, { maxWaitMs: 5000, errorMs: 3000 })).toBe(false);
    // The minute 55 s ahead: the window (opening 45 s before it) waits 10 s.
    expect(suitsWindow(minute - 55_000, MINUTE, 60_000, { maxWaitMs: 5000, errorMs: 3000 })).toBe(false);
  });

  it('asks for room after the minute: the minute early in the window', () => {
    const options = { maxWaitMs: 5000, errorMs: 3000, roomMs: 47_000 };
    // The window opens at once, its minute 8 s in: 52 s after it (± 3 s).
    expect(suitsWindow(minute - 8000, MINUTE, 60_000, options)).toBe(true);
    // The minute 20 s in: 40 s after it.
    expect(suitsWindow(minute - 20_000, MINUTE, 60_000, options)).toBe(false);
  });

  it('finds instants that suit a window of 30 s, 13 s of every minute', () => {
    let suiting = 0;
    for (let at = T; at < T + MINUTE; at += 250)
      if (suitsWindow(at, MINUTE, 30_000, { maxWaitMs: 5000, errorMs: 3000 })) suiting += 250;
    expect(suiting).toBe(13_250);
  });

  it('agrees with windowStart at every instant of a minute', () => {
    for (let at = T; at < T + MINUTE; at += 250) {
      const soon = suitsWindow(at, MINUTE, 60_000, { maxWaitMs: 5000, errorMs: 0 });
      expect(soon).toBe(windowStart(at, MINUTE, 60_000) - at <= 5000);
    }
  });
});

describe('waitToSuit', () => {
  const minute = Math.ceil(T / MINUTE) * MINUTE; // 20 s after T
  const options = { maxWaitMs: 5000, errorMs: 3000 };

  it('is 0 when the instant suits, the wait to the next that suits within the limit, else null', () => {
    // A window opening 20 s before its minute suits (above); 2 s before it does not.
    expect(waitToSuit(minute - 20_000, 0, MINUTE, 60_000, options, 15_000)).toBe(0);
    const wait = waitToSuit(minute - 2000, 0, MINUTE, 30_000, options, 60_000);
    expect(wait).not.toBeNull();
    expect(suitsWindow(minute - 2000 + wait!, MINUTE, 30_000, options)).toBe(true);
    expect(suitsWindow(minute - 2000 + wait! - 250, MINUTE, 30_000, options)).toBe(false);
    expect(waitToSuit(minute - 2000, 0, MINUTE, 30_000, options, wait! - 250)).toBeNull();
  });
});
