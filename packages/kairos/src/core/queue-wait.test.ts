import { describe, expect, it } from 'vitest';
import { BUFFERED_AT, HELD_WHILE_PAUSED_AT } from './overlap.ts';
import { unplaceable, type WaitingRun, type WaitWorker, whyQueued } from './queue-wait.ts';

const NOW = Date.UTC(2026, 0, 1);
const run: WaitingRun = {
  namespace: 'default',
  group: 'g',
  handler: 'h',
  availableAt: NOW - 1000,
  assignedWorkerId: null,
};
const worker = (extra: Partial<WaitWorker> = {}): WaitWorker => ({
  id: 'w1',
  namespace: 'default',
  group: 'g',
  handlers: ['h'],
  status: 'active',
  capacity: 2,
  running: 0,
  leaseExpiresAt: NOW + 5000,
  ...extra,
});

describe('why a queued run waits', () => {
  it('its time has not come', () => {
    expect(whyQueued({ ...run, availableAt: NOW + 60_000 }, [worker()], NOW)).toEqual({
      reason: 'not_yet_available',
      message: expect.stringContaining('2026-01-01T00:01:00.000Z'),
    });
  });

  it("a run the job's overlap policy buffers waits for the job's previous run, not for a date", () => {
    const waiting = whyQueued({ ...run, availableAt: BUFFERED_AT }, [worker()], NOW);
    expect(waiting.reason).toBe('not_yet_available');
    expect(waiting.message).toMatch(/previous run/);
    expect(waiting.message).not.toMatch(/275760/);
  });

  it('a workflow step run of a paused job waits for the job to be resumed, not for a date', () => {
    const waiting = whyQueued({ ...run, availableAt: HELD_WHILE_PAUSED_AT }, [worker()], NOW);
    expect(waiting).toEqual({
      reason: 'not_yet_available',
      message: "a workflow step's run of a paused job: it becomes available when the job is resumed",
    });
  });

  it('no live worker in its group: none, another group, another namespace, lease ended, draining or stopped', () => {
    for (const workers of [
      [],
      [worker({ group: 'other' })],
      // The same group name in another namespace: its workers never claim this run.
      [worker({ namespace: 'team-b' })],
      [worker({ leaseExpiresAt: NOW })],
      [worker({ status: 'draining' })],
      [worker({ status: 'lost' })],
    ])
      expect(whyQueued(run, workers, NOW)).toEqual({
        reason: 'no_live_worker_in_group',
        message: 'no live worker in group g',
      });
  });

  it('live workers in its group, none declares its handler', () => {
    expect(whyQueued(run, [worker({ handlers: ['x'] })], NOW)).toEqual({
      reason: 'no_live_worker_for_handler',
      message: 'no live worker in group g declares handler h',
    });
  });

  it('every slot of the workers that could take it is busy', () => {
    const busy = [worker({ running: 2 }), worker({ id: 'w2', capacity: 1, running: 1 })];
    expect(whyQueued(run, busy, NOW)).toEqual({
      reason: 'all_slots_busy',
      message: 'all 3 slots of the 2 live workers declaring handler h are busy',
    });
    // A free slot on a worker without the handler does not count.
    expect(whyQueued(run, [...busy, worker({ id: 'w3', handlers: ['x'] })], NOW).reason).toBe(
      'all_slots_busy',
    );
  });

  it('a free slot: the next poll takes it; a routed run waits for its worker', () => {
    expect(whyQueued(run, [worker({ running: 1 })], NOW).reason).toBe('next_poll');
    expect(whyQueued({ ...run, assignedWorkerId: 'w1' }, [worker()], NOW)).toMatchObject({
      reason: 'assigned_worker',
      message: expect.stringContaining('w1'),
    });
  });
});

describe('unplaceable: whether no live worker can take a queued run', () => {
  it('null when a live worker can, busy or not; else the first reason, as whyQueued answers it', () => {
    const step = { ...run, resources: { cpu: 2000, gpu: 1 } };
    const big = worker({ running: 2, resources: { cpu: 4000, gpu: 1 } });
    expect(unplaceable(step, [big], NOW)).toBeNull();
    const small = worker({ resources: { cpu: 1000, gpu: 1 } });
    const why = unplaceable(step, [small], NOW);
    expect(why).toEqual({
      reason: 'no_worker_with_resources',
      message: expect.stringContaining('short of the largest: cpu 1'),
      resources: { request: { cpu: 2, gpu: 1 }, missing: { cpu: 1 } },
    });
    expect(whyQueued(step, [small], NOW)).toEqual(why);
    // A worker whose lease ended, or of another namespace, is not live.
    expect(unplaceable(step, [{ ...big, leaseExpiresAt: NOW }], NOW)?.reason).toBe('no_live_worker_in_group');
    expect(unplaceable(step, [{ ...big, namespace: 'blue' }], NOW)?.reason).toBe('no_live_worker_in_group');
    expect(unplaceable(step, [{ ...big, handlers: ['x'] }], NOW)?.reason).toBe('no_live_worker_for_handler');
  });
});
