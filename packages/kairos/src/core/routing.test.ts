import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EMPTY_ROUTING_STATE,
  type RouteInput,
  type Routing,
  type RoutingState,
  type RoutingStrategy,
  route,
  shardTargets,
  type WorkerSnapshot,
} from './routing.ts';

const worker = (name: string, extra: Partial<WorkerSnapshot> = {}): WorkerSnapshot => ({
  id: `id-${name}`,
  name,
  handlers: ['h'],
  labels: {},
  capacity: 4,
  running: 0,
  runningOfJob: 0,
  ...extra,
});

// Deliberately out of order: every strategy orders by name itself.
const fleet = [
  worker('c', { running: 1, labels: { region: 'us' } }),
  worker('a', { running: 3, runningOfJob: 1, labels: { region: 'eu' } }),
  worker('b', { running: 4, labels: { region: 'eu' } }),
  worker('d', { running: 0, handlers: ['other'] }),
];

function input(strategy: RoutingStrategy, extra: Partial<RouteInput> = {}): RouteInput {
  return {
    routing: { strategy, key: null, selector: {} },
    handler: 'h',
    jobName: 'job',
    params: {},
    state: EMPTY_ROUTING_STATE,
    random: 0,
    ...extra,
  };
}

const pick = (strategy: RoutingStrategy, extra: Partial<RouteInput> = {}, workers = fleet) =>
  route(workers, input(strategy, extra)).workerId;

describe('routing strategies over a fixed snapshot', () => {
  it('first, last and any follow name order among workers that have the handler', () => {
    expect(pick('first')).toBe('id-a');
    expect(pick('any')).toBe('id-a');
    expect(pick('last')).toBe('id-c');
  });

  it('round-robin takes turns through the state, across calls', () => {
    let state: RoutingState = EMPTY_ROUTING_STATE;
    const chosen: Array<string | null> = [];
    for (let i = 0; i < 6; i++) {
      const decision = route(fleet, input('round-robin', { state }));
      chosen.push(decision.workerId);
      state = decision.state;
    }
    expect(chosen).toEqual(['id-a', 'id-b', 'id-c', 'id-a', 'id-b', 'id-c']);
    expect(state.turn).toBe(6);
  });

  it('random maps the given number onto the workers', () => {
    expect(pick('random', { random: 0 })).toBe('id-a');
    expect(pick('random', { random: 0.5 })).toBe('id-b');
    expect(pick('random', { random: 0.999 })).toBe('id-c');
  });

  it('least-recently-used prefers never-used workers, then the oldest use', () => {
    const state: RoutingState = { turn: 7, lastUsed: { a: 5, b: 7 }, uses: {} };
    expect(pick('least-recently-used', { state })).toBe('id-c');
    const used: RoutingState = { turn: 9, lastUsed: { a: 8, b: 6, c: 9 }, uses: {} };
    expect(pick('least-recently-used', { state: used })).toBe('id-b');
  });

  it('least-frequently-used prefers the fewest assignments', () => {
    const state: RoutingState = { turn: 9, lastUsed: {}, uses: { a: 4, b: 2, c: 3 } };
    expect(pick('least-frequently-used', { state })).toBe('id-b');
    expect(pick('least-frequently-used')).toBe('id-a');
  });

  it('least-loaded prefers the most free slots', () => {
    expect(pick('least-loaded')).toBe('id-c');
    expect(pick('least-loaded', {}, [worker('x', { capacity: 10, running: 5 }), worker('y')])).toBe('id-x');
  });

  it('least-loaded takes the most free slots, the least loaded host between equal ones', () => {
    const busy = { loadAverage: 6, cpus: 2, freeMemory: 1, totalMemory: 10 };
    const idle = { loadAverage: 0, cpus: 2, freeMemory: 9, totalMemory: 10 };
    // Same host, saturated: the slots decide (before, every score was 0 and the first worker won).
    expect(
      pick('least-loaded', {}, [worker('a', { running: 3, load: busy }), worker('b', { load: busy })]),
    ).toBe('id-b');
    // Equal free slots: the idle host. More free slots win whatever the load (workers of one host
    // report their load at different instants; weighing slots by it spread a burst unevenly).
    expect(pick('least-loaded', {}, [worker('a', { load: busy }), worker('b', { load: idle })])).toBe('id-b');
    expect(
      pick('least-loaded', {}, [worker('a', { load: busy }), worker('b', { running: 1, load: idle })]),
    ).toBe('id-a');
  });

  it('failover takes the first worker in order that has a free slot', () => {
    expect(pick('failover')).toBe('id-a');
    const full = [worker('a', { running: 4 }), worker('b', { running: 4 }), worker('c', { running: 2 })];
    expect(pick('failover', {}, full)).toBe('id-c');
    expect(pick('failover', {}, full.slice(0, 2))).toBeNull();
  });

  it('busy-over skips workers already running the job, and waits when all are', () => {
    expect(pick('busy-over')).toBe('id-b');
    expect(pick('busy-over', {}, [worker('a', { runningOfJob: 1 })])).toBeNull();
  });

  it('broadcast: one shard per eligible worker in name order; a shard placed again goes to the least loaded', () => {
    expect(shardTargets(fleet, 'h', {})).toEqual(['id-a', 'id-b', 'id-c']);
    expect(shardTargets(fleet, 'h', { region: 'eu' })).toEqual(['id-a', 'id-b']);
    expect(shardTargets(fleet, 'other', {})).toEqual(['id-d']);
    expect(pick('broadcast')).toBe('id-c');
  });

  it('a label selector keeps only matching workers', () => {
    const selector = { region: 'eu' };
    expect(pick('last', { routing: { strategy: 'last', key: null, selector } })).toBe('id-b');
    expect(
      pick('first', { routing: { strategy: 'first', key: null, selector: { region: 'ap' } } }),
    ).toBeNull();
  });

  it('no eligible worker: null, and the state is unchanged', () => {
    const decision = route([], input('round-robin'));
    expect(decision).toEqual({ workerId: null, state: EMPTY_ROUTING_STATE });
  });

  it('records uses and forgets workers that left', () => {
    const state: RoutingState = { turn: 1, lastUsed: { gone: 1 }, uses: { gone: 1 } };
    const decision = route(fleet, input('least-frequently-used', { state }));
    expect(decision.state).toEqual({ turn: 2, lastUsed: { a: 2 }, uses: { a: 1 } });
  });
});

describe('workers that share a name', () => {
  it('still count as distinct workers', () => {
    const twins = [worker('r', { id: 'x' }), worker('r', { id: 'y' })];
    const hashing: Routing = { strategy: 'consistent-hash', key: 'k', selector: {} };
    const owners = new Set<string | null>();
    for (let k = 0; k < 40; k++)
      owners.add(route(twins, input('consistent-hash', { routing: hashing, params: { k } })).workerId);
    expect(owners).toEqual(new Set(['x', 'y']));
    let state: RoutingState = EMPTY_ROUTING_STATE;
    const chosen: Array<string | null> = [];
    for (let i = 0; i < 4; i++) {
      const decision = route(twins, input('least-frequently-used', { state }));
      chosen.push(decision.workerId);
      state = decision.state;
    }
    expect(chosen).toEqual(['x', 'y', 'x', 'y']);
  });
});

describe('consistent-hash', () => {
  const hashing: Routing = { strategy: 'consistent-hash', key: 'customer', selector: {} };
  const owner = (workers: WorkerSnapshot[], customer: number) =>
    route(workers, input('consistent-hash', { routing: hashing, params: { customer } })).workerId;

  it('sends one key to one worker, whatever the order of the snapshot or its load', () => {
    const names = ['w1', 'w2', 'w3', 'w4'].map((n) => worker(n));
    const shuffled = [names[2]!, names[0]!, names[3]!, names[1]!].map((w) => ({ ...w, running: 3 }));
    for (let key = 0; key < 50; key++) expect(owner(shuffled, key)).toBe(owner(names, key));
  });

  it('spreads keys over every worker', () => {
    const names = ['w1', 'w2', 'w3', 'w4'].map((n) => worker(n));
    const counts = new Map<string | null, number>();
    for (let key = 0; key < 4000; key++)
      counts.set(owner(names, key), (counts.get(owner(names, key)) ?? 0) + 1);
    expect(counts.size).toBe(4);
    // Each worker owns roughly a quarter (expected 1000; the bound is loose and deterministic).
    for (const n of counts.values()) expect(n).toBeGreaterThan(800);
  });

  it('without a key field, a job sticks to one worker', () => {
    const names = ['w1', 'w2', 'w3'].map((n) => worker(n));
    const byJob = { ...hashing, key: null };
    const first = route(names, input('consistent-hash', { routing: byJob, params: { customer: 1 } }));
    const second = route(names, input('consistent-hash', { routing: byJob, params: { customer: 2 } }));
    expect(first.workerId).toBe(second.workerId);
  });

  it('when a worker leaves, only its keys move; when one joins, keys move only to it', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,12}$/), { minLength: 2, maxLength: 8 }),
        fc.nat(),
        fc.array(fc.integer(), { minLength: 1, maxLength: 40 }),
        (names, leaverIndex, keys) => {
          const workers = names.map((n) => worker(n));
          const leaver = workers[leaverIndex % workers.length]!;
          const rest = workers.filter((w) => w !== leaver);
          for (const key of keys) {
            const before = owner(workers, key);
            const after = owner(rest, key);
            if (before !== leaver.id) expect(after).toBe(before);
            // Joining is leaving backwards: a key moves only to the newcomer.
            if (after !== before) expect(before).toBe(leaver.id);
          }
        },
      ),
    );
  });
});
