import { describe, expect, it } from 'vitest';
import { countFires, type Fire, instantsIn } from './fires.ts';

/** Every instant `phase + k·period` in [start, end) for schedule `i`, each handled once, 5 ms late. */
function grid(i: number, phase: number, periodMs: number, start: number, end: number): Fire[] {
  const fires: Fire[] = [];
  for (let t = Math.ceil((start - phase) / periodMs) * periodMs + phase; t < end; t += periodMs)
    fires.push([i, t, 5]);
  return fires;
}

describe('instantsIn', () => {
  it('counts the instants of a half-open window with fractional bounds exactly', () => {
    // The flaw of the old count: `to − 1` dropped the instant 60,000 of the window [0.5, 60,000.5).
    expect(instantsIn(0.5, 60_000.5, 1000, 0)).toBe(60);
    expect(instantsIn(0.5, 60_000.5, 1000, 999)).toBe(60);
    expect(instantsIn(1000, 61_000, 1000, 0)).toBe(60);
    expect(instantsIn(1000.25, 61_000.25, 60_000, 0)).toBe(1);
    expect(instantsIn(5, 5, 1000, 0)).toBe(0);
  });
});

describe('countFires', () => {
  const from = 1_700_000_000_123.75;
  const to = from + 60_000;

  it('BullMQ-like phases (each schedule keeps the millisecond it was created at): none missed', () => {
    // Phases around the window's fractional edges: 123 and 124 (the old count expected 59 for one).
    const fires = [0, 1, 2, 3].flatMap((i) => grid(i, [123, 124, 0, 999][i]!, 1000, from - 3000, to + 2000));
    const counted = countFires(fires, { count: 4, periodMs: 1000, from, to });
    expect(counted).toMatchObject({ expected: 240, fires: 240, missing: 0, duplicates: 0, offSchedule: 0 });
    expect(counted.lateness).toHaveLength(240);
  });

  it('counts a fire by its nominal instant, not by when its handler ran', () => {
    // The last instant of the window runs after the window closed; the one before the window does not count.
    const fires: Fire[] = [...grid(0, 0, 60_000, from, to), [0, Math.floor(from / 60_000) * 60_000, 30]];
    const late: Fire[] = fires.map(([i, t]) => [i, t, 12_000]);
    expect(countFires(late, { count: 1, periodMs: 60_000, from, to })).toMatchObject({
      expected: 1,
      fires: 1,
      missing: 0,
    });
  });

  it('a missed instant and a doubled one are counted per schedule, and never offset each other', () => {
    const fires = grid(0, 0, 1000, from, to);
    const dropped = fires.filter(([, t]) => t !== fires[10]![1]);
    const doubled: Fire[] = [...dropped, fires[20]!, fires[20]!];
    const counted = countFires(doubled, { count: 2, periodMs: 1000, from, to });
    // Schedule 1 never fired: its 60 instants are missing too.
    expect(counted).toMatchObject({ expected: 120, fires: 59, missing: 61, duplicates: 2, offSchedule: 0 });
  });

  it('a fire off its schedule’s period is reported apart, not as a fire that makes up for a missed one', () => {
    const fires = grid(0, 0, 1000, from, to);
    const shifted: Fire[] = [...fires.slice(1), [0, fires[0]![1] + 400, 3]];
    expect(countFires(shifted, { count: 1, periodMs: 1000, from, to })).toMatchObject({
      expected: 60,
      fires: 59,
      missing: 1,
      duplicates: 0,
      offSchedule: 1,
    });
  });

  it('ignores calls of schedules outside 0 … count − 1', () => {
    const fires = [...grid(0, 0, 1000, from, to), ...grid(7, 0, 1000, from, to)];
    expect(countFires(fires, { count: 1, periodMs: 1000, from, to })).toMatchObject({
      expected: 60,
      fires: 60,
      duplicates: 0,
    });
  });
});
