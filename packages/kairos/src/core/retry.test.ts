import { describe, expect, it } from 'vitest';
import { decideOutcome } from './outcome.ts';
import { compileRetry, decideRetry } from './retry.ts';

const failed = { kind: 'failed' as const, name: 'Error' };

describe('retry and backoff', () => {
  const policy = compileRetry({ maxAttempts: 5, delay: '1s', maxDelay: '5s', jitter: false });

  it('backs off exponentially up to the cap, then stops at maxAttempts', () => {
    const delays = [1, 2, 3, 4].map((attempt) => decideRetry(policy, attempt, failed, 0.5));
    expect(delays).toEqual([
      { retry: true, delayMs: 1000 },
      { retry: true, delayMs: 2000 },
      { retry: true, delayMs: 4000 },
      { retry: true, delayMs: 5000 },
    ]);
    expect(decideRetry(policy, 5, failed, 0.5)).toEqual({ retry: false });
  });

  it('jitter draws from [d/2, d]; fixed backoff keeps the delay', () => {
    const jittered = compileRetry({ maxAttempts: 3, delay: '4s', jitter: true });
    expect(decideRetry(jittered, 1, failed, 0)).toEqual({ retry: true, delayMs: 2000 });
    expect(decideRetry(jittered, 1, failed, 0.999)).toEqual({ retry: true, delayMs: 3998 });
    const fixed = compileRetry({ maxAttempts: 4, backoff: 'fixed', delay: '3s', jitter: false });
    expect(decideRetry(fixed, 3, failed, 0.3)).toEqual({ retry: true, delayMs: 3000 });
  });

  it('never retries a non-retryable error; retries a lost attempt at once; honours retry-after', () => {
    const named = compileRetry({ maxAttempts: 3, nonRetryable: ['ValidationError'] });
    expect(decideRetry(named, 1, { kind: 'failed', name: 'ValidationError' }, 0)).toEqual({ retry: false });
    expect(decideRetry(named, 1, { ...failed, retryable: false }, 0)).toEqual({ retry: false });
    expect(decideRetry(named, 1, { kind: 'lost', name: 'WorkerLost' }, 0.9)).toEqual({
      retry: true,
      delayMs: 0,
    });
    expect(decideRetry(named, 1, { ...failed, retryAfterMs: 42_000 }, 0.9)).toEqual({
      retry: true,
      delayMs: 42_000,
    });
  });

  it('rejects impossible policies', () => {
    expect(() => compileRetry({ maxAttempts: 0 })).toThrow(/maxAttempts/);
    expect(() => compileRetry({ delay: '10s', maxDelay: '1s' })).toThrow(/maxDelay/);
  });

  it('an ended attempt queues the run again or ends it for good', () => {
    const error = { name: 'Error', message: 'boom' };
    expect(decideOutcome(policy, 1, { ...failed, error }, 10_000, 0).run).toEqual({
      status: 'queued',
      availableAt: 11_000,
    });
    expect(decideOutcome(policy, 5, { ...failed, error }, 10_000, 0).run).toEqual({ status: 'failed' });
    expect(decideOutcome(policy, 5, { kind: 'timed_out', name: 'Timeout', error }, 0, 0).run).toEqual({
      status: 'timed_out',
    });
    expect(decideOutcome(policy, 1, { kind: 'succeeded', result: { ok: true } }, 0, 0)).toMatchObject({
      attemptStatus: 'succeeded',
      result: { ok: true },
      run: { status: 'succeeded' },
    });
  });
});
