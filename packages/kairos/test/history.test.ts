import { describe, expect, it } from 'vitest';
import { checkHistory, type RunHistory } from './history.ts';

const run = (id: number, job: string, fireTime: number, extra: Partial<RunHistory> = {}): RunHistory => ({
  id,
  job,
  fireTime,
  status: 'queued',
  createdAt: fireTime + 5,
  attempts: [],
  ...extra,
});
const window = { from: 1000, to: 3000, expected: () => [1000, 2000, 3000], stuckBefore: 10_000 };

describe('the history checker', () => {
  it('passes a clean history and reports the largest lateness', () => {
    const report = checkHistory(
      [run(1, 'a', 1000), run(2, 'a', 2000), run(3, 'a', 3000, { createdAt: 3900 })],
      window,
    );
    expect(report).toEqual({
      duplicates: [],
      gaps: [],
      stuck: [],
      unexplainedReruns: [],
      maxLatenessMs: 900,
    });
  });

  it('finds duplicates, gaps, stuck runs and re-runs without a fenced-out attempt', () => {
    const attempt = (n: number, status: string) => ({
      attempt: n,
      workerId: 'w',
      status,
      startedAt: 100,
      finishedAt: null,
    });
    const report = checkHistory(
      [
        run(1, 'a', 1000),
        run(2, 'a', 1000),
        run(3, 'a', 3000, { status: 'running', attempts: [attempt(1, 'running')] }),
        run(4, 'b', 1000, { attempts: [attempt(1, 'succeeded'), attempt(2, 'succeeded')] }),
        run(5, 'b', 2000, { attempts: [attempt(1, 'lost'), attempt(2, 'succeeded')] }),
        run(6, 'b', 3000),
      ],
      window,
    );
    expect(report.duplicates).toEqual([{ job: 'a', fireTime: 1000, runs: 2 }]);
    expect(report.gaps).toEqual([{ job: 'a', fireTime: 2000 }]);
    expect(report.stuck).toEqual([3]);
    expect(report.unexplainedReruns).toEqual([4]);
  });
});
