import type { Assignment } from '@kairos/client';
import { describe, expect, it } from 'vitest';
import { HeldRuns } from './held-runs.ts';
import { monotonicNow } from './timing.ts';

function assignment(runId: number): Assignment {
  return {
    runId,
    attempt: 1,
    jobName: 'j',
    handler: 'h',
    params: {},
    fireTime: null,
    timeout: 1000,
    maxAttempts: 1,
  };
}

describe('HeldRuns', () => {
  it('keeps runs in start order and hands out only those whose instant came', () => {
    const held = new HeldRuns(() => {});
    const now = monotonicNow();
    held.add(assignment(3), now + 60_000);
    held.add(assignment(1), now - 10);
    held.add(assignment(2), now + 30_000);
    held.add(assignment(4), now - 5);
    expect(held.size).toBe(4);
    expect(held.dueCount(now)).toBe(2);
    expect(held.nextStart(now)).toBe(now + 30_000);
    expect(held.takeDue(now, 1).map((run) => run.runId)).toEqual([1]);
    expect(held.takeDue(now, 5).map((run) => run.runId)).toEqual([4]);
    expect(held.takeDue(now, 5)).toEqual([]);
    expect(held.refs()).toEqual([
      { runId: 2, attempt: 1 },
      { runId: 3, attempt: 1 },
    ]);
    expect(held.remove({ runId: 2, attempt: 2 })).toBe(false);
    expect(held.remove({ runId: 2, attempt: 1 })).toBe(true);
    expect(held.drain().map((run) => run.assignment.runId)).toEqual([3]);
    expect(held.size).toBe(0);
  });

  it('calls back at the earliest instant, not before, and tells when it is empty', async () => {
    const due: number[] = [];
    let held: HeldRuns;
    const called = new Promise<void>((resolve) => {
      held = new HeldRuns(() => {
        const now = monotonicNow();
        due.push(now);
        if (held.takeDue(now, 1).length > 0) resolve();
      });
    });
    const startAt = monotonicNow() + 40;
    held!.add(assignment(1), startAt);
    const empty = held!.whenEmpty(new AbortController().signal);
    await called;
    // A timer that fired early finds nothing due and is set again: the run came out at its instant.
    expect(due[due.length - 1]).toBeGreaterThanOrEqual(startAt);
    await empty;
    expect(held!.size).toBe(0);
  });

  it('calls back again for a run whose instant came while it was calling back early', async () => {
    // A clock of the test's: 0 until the owner, called back early, is busy past the instant.
    let now = 0;
    const calls: number[] = [];
    let held: HeldRuns;
    const taken = new Promise<void>((resolve) => {
      held = new HeldRuns(
        () => {
          calls.push(now);
          if (calls.length === 1) {
            now = 5;
            return;
          }
          if (held.takeDue(now, 1).length > 0) resolve();
        },
        () => now,
      );
    });
    // Due in 1 ms: checked on the next turn of the event loop, at 0, before its instant.
    held!.add(assignment(1), 1);
    await taken;
    expect(calls).toEqual([0, 5]);
    expect(held!.size).toBe(0);
  });
});
