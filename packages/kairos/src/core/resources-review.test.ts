import { describe, expect, it } from 'vitest';
import { addResources, compileResources, distance, fits, shortfall } from './resources.ts';
import { eligible, type WorkerSnapshot } from './routing.ts';

describe('resources: a custom name that is a member of Object.prototype', () => {
  it('`constructor` is a valid name, so a request of it must fit only a worker that advertises enough of it', () => {
    // RESOURCE_NAME_PATTERN admits `constructor`; fits() reads `available[name] ?? 0`, which on a
    // plain object is Object itself: `Object < 1` is false, so the request "fits" every worker.
    const request = compileResources({ constructor: 1 }, 'resources')!;
    expect(request).toEqual({ constructor: 1 });
    const worker = compileResources({ cpu: 4 }, 'resources', { zero: true })!;
    expect(fits(request, JSON.parse(JSON.stringify(worker)))).toBe(false);
    expect(shortfall(request, JSON.parse(JSON.stringify(worker)))).toEqual({ constructor: 1 });
    const snapshot: WorkerSnapshot = {
      id: 'w',
      name: 'w',
      handlers: ['h'],
      labels: {},
      capacity: 1,
      running: 0,
      runningOfJob: 0,
      resources: JSON.parse(JSON.stringify(worker)),
    };
    expect(eligible(snapshot, 'h', {}, request)).toBe(false);
  });
});

describe('resources: a worker that advertises a custom resource named like an Object.prototype member', () => {
  it('counts what it advertises and what its runs hold of it', () => {
    const capacity = JSON.parse(JSON.stringify(compileResources({ constructor: 2, cpu: 1 }, 'resources')));
    const request = compileResources({ constructor: 2 }, 'resources')!;
    expect(fits(request, capacity)).toBe(true);
    const used = addResources({}, { constructor: 1 });
    expect(used).toEqual({ constructor: 1 });
    const free = addResources(capacity, used, -1);
    expect(free).toEqual({ constructor: 1, cpu: 1000 });
    expect(fits(request, free)).toBe(false);
    expect(shortfall(request, free)).toEqual({ constructor: 1 });
    expect(distance(request, free, capacity)).toBe(0.5);
  });
});
