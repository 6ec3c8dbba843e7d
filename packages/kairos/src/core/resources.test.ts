import { describe, expect, it } from 'vitest';
import { whyQueued } from './queue-wait.ts';
import { compileResources, distance, fits, parseMemory, resourceSpecOf, shortfall } from './resources.ts';
import { route, type WorkerSnapshot } from './routing.ts';
import { compileWorkflow, workflowSpecOf } from './workflow.ts';

describe('resources', () => {
  it('compiles cores to millicores and sizes to bytes, and back', () => {
    const r = compileResources({ cpu: 1.5, memory: '512Mi', gpu: 2 }, 'resources');
    expect(r).toEqual({ cpu: 1500, memory: 512 * 2 ** 20, gpu: 2 });
    expect(resourceSpecOf(r!)).toEqual({ cpu: 1.5, memory: 512 * 2 ** 20, gpu: 2 });
    expect(parseMemory('2Gi', 'm')).toBe(2 * 2 ** 30);
    expect(parseMemory('1.5G', 'm')).toBe(1.5e9);
    expect(parseMemory(4096, 'm')).toBe(4096);
    expect(compileResources({}, 'resources')).toBeNull();
    expect(compileResources(undefined, 'resources')).toBeNull();
    // A worker may advertise 0 of something.
    expect(compileResources({ gpu: 0 }, 'resources', { zero: true })).toEqual({ gpu: 0 });
  });

  it.each([
    [{ cpu: -1 }, 'resources.cpu'],
    [{ cpu: 'two' }, 'resources.cpu'],
    [{ cpu: 5000 }, 'resources.cpu'],
    [{ memory: '1 lot' }, 'resources.memory'],
    [{ memory: 2 ** 51 }, 'resources.memory'],
    [{ 'Bad Name': 1 }, 'resources.Bad Name'],
    [{ gpu: 0.5 }, 'resources.gpu'],
    [{ gpu: 0 }, 'resources.gpu'],
    [Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`r${i}`, 1])), 'resources'],
  ])('refuses %j with INVALID_RESOURCES naming %s', (spec, field) => {
    expect(() => compileResources(spec as never, 'resources')).toThrow(
      expect.objectContaining({ code: 'INVALID_RESOURCES', details: { field } }),
    );
  });

  it('fits, shortfall and distance', () => {
    expect(fits({ cpu: 1000 }, { cpu: 1000, memory: 5 })).toBe(true);
    expect(fits({ gpu: 1 }, { cpu: 1000 })).toBe(false);
    expect(shortfall({ cpu: 3000, gpu: 1 }, { cpu: 1000 })).toEqual({ cpu: 2000, gpu: 1 });
    expect(distance({ cpu: 3000 }, { cpu: 1000 }, { cpu: 4000 })).toBe(0.5);
  });
});

describe('why a run that requests resources waits', () => {
  const worker = (id: string, resources: Record<string, number>) => ({
    id,
    namespace: 'default',
    group: 'g',
    handlers: ['h'],
    status: 'active',
    capacity: 4,
    running: 0,
    leaseExpiresAt: 10_000,
    resources,
  });
  const run = {
    namespace: 'default',
    group: 'g',
    handler: 'h',
    availableAt: 0,
    assignedWorkerId: null,
    resources: { cpu: 8000, gpu: 1 },
  };

  it('no live worker has that much in all: unplaceable, with what is missing', () => {
    expect(whyQueued(run, [worker('a', { cpu: 4000, gpu: 1 }), worker('b', { cpu: 2000 })], 1)).toEqual({
      reason: 'no_worker_with_resources',
      message: expect.stringContaining('cpu 8, gpu 1'),
      resources: { request: { cpu: 8, gpu: 1 }, missing: { cpu: 4 } },
    });
  });

  it('a worker that has it in all: waits like any run', () => {
    expect(whyQueued(run, [worker('a', { cpu: 8000, gpu: 1 })], 1).reason).toBe('next_poll');
  });
});

describe('least-loaded with real load', () => {
  const w = (id: string, extra: Partial<WorkerSnapshot>): WorkerSnapshot => ({
    id,
    name: id,
    handlers: ['h'],
    labels: {},
    capacity: 8,
    running: 0,
    runningOfJob: 0,
    ...extra,
  });
  const pick = (workers: WorkerSnapshot[], resources: Record<string, number> | null = null) =>
    route(workers, {
      routing: { strategy: 'least-loaded', key: null, selector: {} },
      handler: 'h',
      jobName: 'j',
      params: {},
      state: { turn: 0, lastUsed: {}, uses: {} },
      random: 0,
      resources,
    }).workerId;

  it('takes the most free slots; the load a host reports only breaks ties', () => {
    expect(pick([w('a', { running: 2 }), w('b', { running: 4 })])).toBe('a');
    const busy = { loadAverage: 3.8, cpus: 4, freeMemory: 1, totalMemory: 10 };
    const idle = { loadAverage: 0.2, cpus: 4, freeMemory: 9, totalMemory: 10 };
    expect(pick([w('a', { running: 2, load: busy }), w('b', { running: 4, load: idle })])).toBe('a');
    expect(pick([w('a', { running: 3, load: busy }), w('b', { running: 3, load: idle })])).toBe('b');
    expect(pick([w('a', { running: 3, load: idle }), w('b', { running: 3, load: busy })])).toBe('a');
  });

  it('routes only to workers whose whole capacity fits the request', () => {
    expect(
      pick([w('a', { resources: { cpu: 1000 } }), w('b', { running: 6, resources: { cpu: 4000 } })], {
        cpu: 2000,
      }),
    ).toBe('b');
    expect(pick([w('a', { resources: { cpu: 1000 } })], { cpu: 2000 })).toBeNull();
  });
});

describe('a workflow handler step requests resources of its own', () => {
  it('compiles them, answers them back, and refuses them on a job step', () => {
    const workflow = compileWorkflow({
      name: 'wf',
      steps: [{ id: 'train', handler: 'train', resources: { cpu: 2, gpu: 1 } }],
    });
    const [step] = workflow.steps;
    expect(step!.run).toMatchObject({ kind: 'handler', resources: { cpu: 2000, gpu: 1 } });
    expect(workflowSpecOf(workflow).steps[0]).toMatchObject({ resources: { cpu: 2, gpu: 1 } });
    expect(() =>
      compileWorkflow({ name: 'wf', steps: [{ id: 'a', handler: 'h', resources: { gpu: -1 } }] }),
    ).toThrow(
      expect.objectContaining({ code: 'INVALID_RESOURCES', details: { field: 'steps[0].resources.gpu' } }),
    );
    expect(() =>
      compileWorkflow({ name: 'wf', steps: [{ id: 'a', job: 'j', resources: { gpu: 1 } }] }),
    ).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED', details: { field: 'steps[0].resources' } }),
    );
  });
});
