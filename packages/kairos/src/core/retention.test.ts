import { describe, expect, it } from 'vitest';
import {
  compileRetention,
  instancePrunable,
  MIN_RUN_AGE_MS,
  type PruneCandidate,
  prunable,
  retentionColumn,
  retentionFromColumn,
  retentionSpecOf,
} from './retention.ts';

const HOUR = 3_600_000;
const DEFAULTS = { finishedMs: 10 * HOUR, failedMs: 20 * HOUR };
const NOW = 100 * HOUR;

const run = (extra: Partial<PruneCandidate> = {}): PruneCandidate => ({
  id: 1,
  jobId: 1,
  status: 'succeeded',
  createdAt: 0,
  finishedAt: NOW - 11 * HOUR,
  retention: { finishedMs: null, failedMs: null, keepLast: null },
  superseded: true,
  ...extra,
});

describe('retention decisions', () => {
  it('deletes a finished run past its age, failed runs by the longer age', () => {
    expect(prunable(run(), DEFAULTS, NOW)).toBe(true);
    expect(prunable(run({ status: 'cancelled' }), DEFAULTS, NOW)).toBe(true);
    expect(prunable(run({ status: 'failed' }), DEFAULTS, NOW)).toBe(false);
    expect(prunable(run({ status: 'timed_out', finishedAt: NOW - 21 * HOUR }), DEFAULTS, NOW)).toBe(true);
    expect(prunable(run({ finishedAt: NOW - 9 * HOUR }), DEFAULTS, NOW)).toBe(false);
  });

  it('never deletes a run that is not finished, nor the newest of its job, nor one that just ended', () => {
    expect(prunable(run({ status: 'queued' }), DEFAULTS, NOW)).toBe(false);
    expect(prunable(run({ status: 'running' }), DEFAULTS, NOW)).toBe(false);
    expect(prunable(run({ finishedAt: null }), DEFAULTS, NOW)).toBe(false);
    expect(prunable(run({ superseded: false }), DEFAULTS, NOW, true)).toBe(false);
    expect(prunable(run({ finishedAt: NOW - MIN_RUN_AGE_MS + 1 }), DEFAULTS, NOW, true)).toBe(false);
  });

  it('a job’s own ages win over the defaults; beyond keepLast takes succeeded runs, not failed ones', () => {
    const own = { finishedMs: HOUR, failedMs: 50 * HOUR, keepLast: 3 };
    expect(prunable(run({ retention: own, finishedAt: NOW - 2 * HOUR }), DEFAULTS, NOW)).toBe(true);
    expect(prunable(run({ retention: own, status: 'failed' }), DEFAULTS, NOW)).toBe(false);
    const young = run({ retention: own, finishedAt: NOW - 2 * MIN_RUN_AGE_MS });
    expect(prunable(young, DEFAULTS, NOW)).toBe(false);
    expect(prunable(young, DEFAULTS, NOW, true)).toBe(true);
    expect(prunable({ ...young, status: 'failed' }, DEFAULTS, NOW, true)).toBe(false);
  });

  it('compiles a job’s retention, round-trips it, and refuses what is out of range', () => {
    const compiled = compileRetention({ finished: '2d', keepLast: 10 });
    expect(compiled).toEqual({ finishedMs: 48 * HOUR, failedMs: null, keepLast: 10 });
    expect(compileRetention(retentionSpecOf(compiled))).toEqual(compiled);
    expect(retentionFromColumn(retentionColumn(compiled))).toEqual(compiled);
    expect(retentionColumn(compileRetention(undefined))).toBe('{}');
    expect(compileRetention({ finished: null, keepLast: null })).toEqual(compileRetention(undefined));
    expect(() => compileRetention({ finished: '59s' })).toThrow(
      expect.objectContaining({ code: 'INVALID_DURATION' }),
    );
    for (const keepLast of [0, -1, 1.5, 1_000_001])
      expect(() => compileRetention({ keepLast })).toThrow(
        expect.objectContaining({ code: 'VALIDATION_FAILED' }),
      );
  });
});

describe('workflow instance retention', () => {
  const instance = (extra: Partial<Parameters<typeof instancePrunable>[0]> = {}) => ({
    id: 1,
    state: 'succeeded' as const,
    finishedAt: NOW - 11 * HOUR,
    steps: 3,
    ...extra,
  });

  it('deletes an ended instance past the age of its state, a failed one by the longer age', () => {
    expect(instancePrunable(instance(), DEFAULTS, NOW)).toBe(true);
    expect(instancePrunable(instance({ state: 'cancelled' }), DEFAULTS, NOW)).toBe(true);
    expect(instancePrunable(instance({ state: 'failed' }), DEFAULTS, NOW)).toBe(false);
    expect(instancePrunable(instance({ state: 'failed', finishedAt: NOW - 21 * HOUR }), DEFAULTS, NOW)).toBe(
      true,
    );
    expect(instancePrunable(instance({ finishedAt: NOW - 9 * HOUR }), DEFAULTS, NOW)).toBe(false);
  });

  it('never deletes a running or paused instance, nor one ended less than a minute ago', () => {
    expect(instancePrunable(instance({ state: 'running', finishedAt: null }), DEFAULTS, NOW)).toBe(false);
    expect(instancePrunable(instance({ state: 'paused' }), DEFAULTS, NOW)).toBe(false);
    const short = { finishedMs: 1, failedMs: 1 };
    expect(instancePrunable(instance({ finishedAt: NOW - MIN_RUN_AGE_MS + 1 }), short, NOW)).toBe(false);
  });
});
