import { describe, expect, it } from 'vitest';
import { DEFAULT_DISPATCH } from '../core/dispatch-policy.ts';
import type { WorkerSnapshot } from '../core/routing.ts';
import { type DispatchCandidate, type DispatchInput, planDispatch } from './dispatch-plan.ts';

const worker = (id: string, cpu: number, used: number): WorkerSnapshot => ({
  id,
  name: id,
  handlers: ['h'],
  labels: {},
  capacity: 16,
  running: used,
  runningOfJob: 0,
  resources: { cpu },
  used: { cpu: used },
});

const run = (runId: number, cpu: number, availableAt: number): DispatchCandidate => ({
  runId,
  jobId: cpu,
  jobName: `needs-${cpu}`,
  handler: 'h',
  params: {},
  targetWorkerId: null,
  policy: DEFAULT_DISPATCH,
  task: null,
  resources: { cpu },
  availableAt,
  priority: 0,
});

const input = (candidates: DispatchCandidate[], waiting: DispatchCandidate[] = []): DispatchInput => ({
  workerId: 'four',
  max: 10,
  candidates,
  waiting,
  live: [worker('four', 4, 2)],
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

describe('planDispatch: resource reservations', () => {
  it('reserves for an old big run it sees: small runs no longer take the cores it waits for', () => {
    expect(planDispatch(input([run(1, 4, 0), run(2, 1, 99_000)])).claim).toEqual([]);
    expect(planDispatch(input([run(2, 1, 99_000)])).claim).toEqual([2]);
  });

  it('reserves for an old big run another claim holds locked (read unlocked, never claimed here)', () => {
    // On PostgreSQL the candidates skip rows another node's claim has locked: the big run is then
    // not among them, and without `waiting` the small run would take a core it waits for.
    const plan = planDispatch(input([run(2, 1, 99_000)], [run(1, 4, 0)]));
    expect(plan.claim).toEqual([]);
  });

  it('a waiting run newer than the candidates reserves nothing ahead of them', () => {
    // The old big run is a candidate; small runs behind it (beyond the candidates' window) must not
    // reserve the cores it waits for before it does.
    const plan = planDispatch({
      ...input([run(1, 4, 0)], [run(1, 4, 0), run(3, 1, 50)]),
      live: [worker('four', 4, 0)],
    });
    expect(plan.claim).toEqual([1]);
  });
});
