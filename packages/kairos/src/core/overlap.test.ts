import { describe, expect, it } from 'vitest';
import { decideOverlap } from './overlap.ts';

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
