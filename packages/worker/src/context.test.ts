import { describe, expect, it } from 'vitest';
import { LazyAbort } from './context.ts';

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
