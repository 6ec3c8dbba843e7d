import { describe, expect, it } from 'vitest';
import type { StoreRun, StoreSnapshot } from './checker.ts';
import type { HistoryEvent } from './history-log.ts';
import { formatLatency, latencyByFault } from './latency.ts';

const T0 = Date.UTC(2026, 0, 1);

function run(id: number, fireTime: number | null, attempt = 1): StoreRun {
  return {
    id,
    job: fireTime === null ? 'manual' : 'tick',
    fireTime,
    status: 'succeeded',
    attempt,
    workerId: 'w',
    startedAt: null,
    createdAt: T0,
    result: null,
    attempts: [],
  };
}

function exec(runId: number, attempt: number, at: number, ok = true): HistoryEvent[] {
  return [
    { t: 'exec', runId, attempt, job: 'tick', fireTime: null, worker: 'w1', at },
    { t: 'end', runId, attempt, worker: 'w1', at: at + 5, ok },
  ];
}

describe('latency by fault', () => {
  it('reads each run against the faults its wait overlaps, and the rest as the baseline', () => {
    const store: StoreSnapshot = {
      takenAt: T0 + 60_000,
      // 1, 2: on time, no fault. 3: due during a node kill, started 4 s late. 4: started on time on a
      // worker that was killed 1 s later; re-run as attempt 2, 6 s after it was due. 5: an enqueue.
      // 6: due long after every fault. 7: due before the window.
      runs: [
        run(1, T0 + 1000),
        run(2, T0 + 2000),
        run(3, T0 + 10_000),
        run(4, T0 + 20_000, 2),
        run(5, null),
        run(6, T0 + 50_000),
        run(7, T0 - 5000),
      ],
      skipped: [],
      workerNames: {},
    };
    const events: HistoryEvent[] = [
      ...exec(1, 1, T0 + 1010),
      ...exec(2, 1, T0 + 2020),
      ...exec(3, 1, T0 + 14_000),
      { t: 'exec', runId: 4, attempt: 1, job: 'tick', fireTime: T0 + 20_000, worker: 'w1', at: T0 + 20_000 },
      ...exec(4, 2, T0 + 26_000),
      { t: 'ack', runId: 5, job: 'manual', at: T0 + 30_000 },
      ...exec(5, 1, T0 + 30_050),
      ...exec(6, 1, T0 + 50_030),
      ...exec(7, 1, T0 - 5000),
      { t: 'fault', kind: 'node-kill', targets: ['node:n1'], start: T0 + 9000, end: T0 + 12_000 },
      { t: 'fault', kind: 'worker-kill', targets: ['worker:w1'], start: T0 + 21_000, end: T0 + 22_000 },
      { t: 'fault', kind: 'node-stop', targets: ['node:n2'], start: T0 + 25_000, end: T0 + 28_000 },
    ];
    const rows = latencyByFault(events, store, { afterMs: 5000, from: T0, to: T0 + 55_000 });
    expect(rows).toEqual([
      {
        fault: 'none',
        samples: 3,
        start: { p50: 20, p99: 30, max: 30 },
        counted: { p50: 20, p99: 30, max: 30 },
      },
      {
        fault: 'node-kill',
        samples: 1,
        start: { p50: 4000, p99: 4000, max: 4000 },
        counted: { p50: 4000, p99: 4000, max: 4000 },
      },
      // Run 4 waited through the node stop too; the enqueue at 30 s is within 5 s of its heal.
      {
        fault: 'node-stop',
        samples: 2,
        start: { p50: 0, p99: 50, max: 50 },
        counted: { p50: 50, p99: 6000, max: 6000 },
      },
      {
        fault: 'worker-kill',
        samples: 1,
        start: { p50: 0, p99: 0, max: 0 },
        counted: { p50: 6000, p99: 6000, max: 6000 },
      },
    ]);
    expect(formatLatency(rows).split('\n')).toHaveLength(6);
  });

  it('leaves out runs that did not succeed and executions that do not count', () => {
    const failed = { ...run(1, T0 + 1000), status: 'failed' };
    const store: StoreSnapshot = { takenAt: T0 + 10_000, runs: [failed], skipped: [], workerNames: {} };
    expect(
      latencyByFault(exec(1, 1, T0 + 1000, false), store, { afterMs: 0, from: T0, to: T0 + 9000 }),
    ).toEqual([]);
  });
});
