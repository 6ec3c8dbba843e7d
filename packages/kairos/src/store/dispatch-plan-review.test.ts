import { describe, expect, it } from 'vitest';
import { DEFAULT_DISPATCH } from '../core/dispatch-policy.ts';
import type { WorkerSnapshot } from '../core/routing.ts';
import { type DispatchCandidate, planDispatch } from './dispatch-plan.ts';

const four: WorkerSnapshot = {
  id: 'four',
  name: 'four',
  handlers: ['h'],
  labels: {},
  capacity: 16,
  running: 2,
  runningOfJob: 0,
  resources: { cpu: 4 },
  used: { cpu: 2 },
};

// `priority` is what RESOURCE_WAITERS and the candidates are ordered by (priority DESC, then age);
// DispatchCandidate does not carry it, so planDispatch compares only availableAt.
const run = (runId: number, cpu: number, availableAt: number, priority: number) =>
  ({
    runId,
    jobId: runId,
    jobName: `j${runId}`,
    handler: 'h',
    params: {},
    targetWorkerId: null,
    policy: DEFAULT_DISPATCH,
    task: null,
    resources: { cpu },
    availableAt,
    priority,
  }) as DispatchCandidate;

describe('planDispatch: reservations and priority', () => {
  it('a lower-priority waiting run (read unlocked, PostgreSQL) does not hold back a higher-priority candidate', () => {
    // docs/workers.md: "a run of higher priority is never held back by a lower one's reservation".
    // The waiting run is older than the candidate but of lower priority: it reserves 4 cores on
    // `four` ahead of the priority-10 candidate, which then fits nothing.
    const plan = planDispatch({
      workerId: 'four',
      max: 10,
      candidates: [run(2, 1, 99_500, 10)],
      waiting: [run(1, 4, 0, 0)],
      live: [four],
      loadOfJob: new Map(),
      runningOfJob: new Map(),
      groupRunning: 0,
      group: { namespace: 'default', name: 'default', maxConcurrency: null, rateLimit: null },
      buckets: new Map(),
      now: 100_000,
      states: new Map(),
      random: 0,
      reserveAfterMs: 1000,
    });
    expect(plan.claim).toEqual([2]);
  });

  const base = {
    workerId: 'four',
    max: 10,
    live: [four],
    loadOfJob: new Map(),
    runningOfJob: new Map(),
    groupRunning: 0,
    group: { namespace: 'default', name: 'default', maxConcurrency: null, rateLimit: null },
    buckets: new Map(),
    now: 100_000,
    states: new Map(),
    random: 0,
    reserveAfterMs: 1000,
  };

  it('a higher-priority waiting run another claim holds reserves ahead of lower-priority candidates, even older ones', () => {
    const plan = planDispatch({ ...base, candidates: [run(2, 1, 0, 0)], waiting: [run(1, 4, 50_000, 10)] });
    expect(plan.claim).toEqual([]);
  });

  it('a run that is both waiting and a candidate is looked at once, at its place among the candidates', () => {
    // Run 1 (priority 5) comes after run 2 (priority 10): run 2 is claimed before run 1 reserves.
    const plan = planDispatch({
      ...base,
      candidates: [run(2, 1, 90_000, 10), run(1, 4, 0, 5), run(3, 1, 95_000, 0)],
      waiting: [run(1, 4, 0, 5)],
    });
    expect(plan.claim).toEqual([2]);
  });
});
