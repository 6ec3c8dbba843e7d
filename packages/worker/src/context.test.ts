import type { Assignment } from '@kairos/client';
import { describe, expect, it } from 'vitest';
import { createRunContext, LazyAbort } from './context.ts';

describe('LazyAbort', () => {
  it('gives a live signal that aborts later with the reason', () => {
    const abort = new LazyAbort();
    const signal = abort.signal;
    expect(signal.aborted).toBe(false);
    let seen: unknown;
    signal.addEventListener('abort', () => {
      seen = signal.reason;
    });
    abort.abort('stop');
    expect(seen).toBe('stop');
    expect(abort.signal).toBe(signal);
  });

  it('gives an aborted signal when aborted before it was read, with the first reason', () => {
    const abort = new LazyAbort();
    abort.abort('first');
    abort.abort('second');
    expect(abort.signal.aborted).toBe(true);
    expect(abort.signal.reason).toBe('first');
  });

  it('keeps the first reason once the signal exists', () => {
    const abort = new LazyAbort();
    const { signal } = abort;
    abort.abort('first');
    abort.abort('second');
    expect(signal.reason).toBe('first');
  });
});

describe('createRunContext', () => {
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  const assignment: Assignment = {
    runId: 7,
    attempt: 2,
    jobName: 'j',
    handler: 'h',
    params: { a: 1 },
    fireTime: '2026-11-25T12:00:01.000Z',
    timeout: 30_000,
    maxAttempts: 3,
  };

  it('gives the attempt, its dates made once, and a frozen context whose progress works on its own', () => {
    const progress: unknown[] = [];
    const abort = new LazyAbort();
    const ctx = createRunContext(assignment, abort, 1000, quiet, {
      log() {},
      progress: (p) => progress.push(p),
    });
    expect(ctx).toMatchObject({
      runId: 7,
      attempt: 2,
      maxAttempts: 3,
      jobName: 'j',
      handler: 'h',
      params: { a: 1 },
    });
    expect(ctx.fireTime?.toISOString()).toBe('2026-11-25T12:00:01.000Z');
    expect(ctx.fireTime).toBe(ctx.fireTime);
    expect(ctx.deadline.getTime()).toBe(31_000);
    expect(ctx.signal).toBe(abort.signal);
    expect(ctx.task).toBeNull();
    expect(ctx.shard).toBeNull();
    expect(() => {
      (ctx as { runId: number }).runId = 8;
    }).toThrow(TypeError);
    const { progress: report } = ctx;
    report(2, 'done');
    expect(progress).toEqual([{ runId: 7, attempt: 2, value: 1, message: 'done' }]);
    expect(() => report(Number.NaN)).toThrow(TypeError);
    const other = createRunContext({ ...assignment, fireTime: '2026-11-25T12:00:02.000Z' }, abort, 0, quiet);
    expect(other.fireTime?.toISOString()).toBe('2026-11-25T12:00:02.000Z');
    expect(createRunContext({ ...assignment, fireTime: null }, abort, 0, quiet).fireTime).toBeNull();
  });
});
