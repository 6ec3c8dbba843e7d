import { describe, expect, it } from 'vitest';
import { decideOverlap, decideWorkflowOverlap, startsHeldFire } from './overlap.ts';
import { compileWorkflow } from './workflow.ts';

const idle = { inFlight: 0, buffered: 0 };
const busy = { inFlight: 1, buffered: 0 };

describe('decideOverlap', () => {
  it('allow: every fire runs', () => {
    expect(decideOverlap('allow', 3, busy).fires).toEqual(['run', 'run', 'run']);
  });

  it('skip: the first fire runs only when nothing is active', () => {
    expect(decideOverlap('skip', 2, idle).fires).toEqual(['run', 'skip']);
    expect(decideOverlap('skip', 2, busy).fires).toEqual(['skip', 'skip']);
    expect(decideOverlap('skip', 1, { inFlight: 0, buffered: 1 }).fires).toEqual(['skip']);
  });

  it('buffer-one: one waiting run at most', () => {
    expect(decideOverlap('buffer-one', 3, idle).fires).toEqual(['run', 'buffer', 'skip']);
    expect(decideOverlap('buffer-one', 2, busy).fires).toEqual(['buffer', 'skip']);
    expect(decideOverlap('buffer-one', 1, { inFlight: 1, buffered: 1 }).fires).toEqual(['skip']);
  });

  it('buffer-all: a serial queue', () => {
    expect(decideOverlap('buffer-all', 3, idle).fires).toEqual(['run', 'buffer', 'buffer']);
    expect(decideOverlap('buffer-all', 2, { inFlight: 1, buffered: 4 }).fires).toEqual(['buffer', 'buffer']);
  });

  it('buffers release a stranded waiting run first when nothing is in flight', () => {
    expect(decideOverlap('buffer-one', 1, { inFlight: 0, buffered: 1 })).toEqual({
      fires: ['buffer'],
      cancelActive: false,
      promoteOldest: true,
    });
  });

  it('cancel-previous: cancels what is active and runs the newest fire', () => {
    expect(decideOverlap('cancel-previous', 3, busy)).toEqual({
      fires: ['skip', 'skip', 'run'],
      cancelActive: true,
      promoteOldest: false,
    });
    expect(decideOverlap('cancel-previous', 1, idle).cancelActive).toBe(false);
  });
});

describe('decideWorkflowOverlap: unfinished instances in flight, held fires buffered', () => {
  const running = { unfinished: 1, held: 0 };
  it('buffer-one holds one fire behind an unfinished instance; the next ones are skipped', () => {
    expect(decideWorkflowOverlap('buffer-one', 1, running).fires).toEqual(['buffer']);
    expect(decideWorkflowOverlap('buffer-one', 2, { unfinished: 1, held: 1 }).fires).toEqual([
      'skip',
      'skip',
    ]);
    expect(decideWorkflowOverlap('buffer-one', 3, { unfinished: 0, held: 0 }).fires).toEqual([
      'run',
      'buffer',
      'skip',
    ]);
  });

  it('buffer-all holds every fire, behind those held before', () => {
    expect(decideWorkflowOverlap('buffer-all', 3, { unfinished: 2, held: 5 }).fires).toEqual([
      'buffer',
      'buffer',
      'buffer',
    ]);
  });

  it('starts the oldest held fire first when nothing is unfinished (an end that did not start it)', () => {
    const decision = decideWorkflowOverlap('buffer-all', 1, { unfinished: 0, held: 2 });
    expect(decision).toEqual({ fires: ['buffer'], cancelActive: false, promoteOldest: true });
    expect(decideWorkflowOverlap('buffer-one', 1, { unfinished: 0, held: 1 })).toEqual({
      fires: ['buffer'],
      cancelActive: false,
      promoteOldest: true,
    });
  });

  it('cancel-previous cancels the unfinished instances (and drops held fires); the newest fire starts', () => {
    expect(decideWorkflowOverlap('cancel-previous', 2, running)).toEqual({
      fires: ['skip', 'run'],
      cancelActive: true,
      promoteOldest: false,
    });
    expect(decideWorkflowOverlap('cancel-previous', 1, { unfinished: 0, held: 1 }).cancelActive).toBe(true);
    expect(decideWorkflowOverlap('cancel-previous', 1, { unfinished: 0, held: 0 }).cancelActive).toBe(false);
  });

  it('skip counts held fires as busy', () => {
    expect(decideWorkflowOverlap('skip', 1, { unfinished: 0, held: 1 }).fires).toEqual(['skip']);
  });
});

describe('startsHeldFire', () => {
  it('only when fires are held and no instance is unfinished any more', () => {
    expect(startsHeldFire({ unfinished: 0, held: 1 })).toBe(true);
    expect(startsHeldFire({ unfinished: 1, held: 3 })).toBe(false);
    expect(startsHeldFire({ unfinished: 0, held: 0 })).toBe(false);
  });
});

describe('a workflow schedule', () => {
  it('takes every overlap policy a job takes', () => {
    for (const overlap of ['allow', 'skip', 'buffer-one', 'buffer-all', 'cancel-previous'] as const) {
      const workflow = compileWorkflow({
        name: 'w',
        steps: [{ id: 'a', handler: 'h' }],
        trigger: { kind: 'every', every: '1m' },
        schedule: { overlap },
      });
      expect(workflow.schedule.overlap).toBe(overlap);
    }
    expect(() =>
      compileWorkflow({
        name: 'w',
        steps: [{ id: 'a', handler: 'h' }],
        schedule: { overlap: 'sometimes' as 'skip' },
      }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_SCHEDULE', details: { field: 'schedule.overlap' } }));
  });
});
