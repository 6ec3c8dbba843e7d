import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arbitraryInstance } from '../../test/workflow-arbitrary.ts';
import { referenceEvaluation } from '../../test/workflow-reference.ts';
import {
  conditionHolds,
  type EdgeCondition,
  graphProblems,
  type StepEnd,
  valueAt,
  WorkflowGraph,
  type WorkflowStep,
} from './workflow-graph.ts';

const step = (
  id: string,
  after: Array<[string, EdgeCondition]> = [],
  join: 'all' | 'any' = 'all',
): WorkflowStep => ({
  id,
  after: after.map(([from, on]) => ({ from, on })),
  join,
});

/** Runs an instance to its end, ending ready steps in the order `pick` chooses. */
function runInstance(
  graph: WorkflowGraph,
  ends: Map<string, StepEnd>,
  pick: (ready: string[]) => number = () => 0,
): { ran: string[]; skipped: string[]; states: Map<string, string>; outcome: string } {
  const { steps, ready } = graph.start();
  const pending = [...ready];
  const ran: string[] = [];
  const skipped: string[] = [];
  while (pending.length > 0) {
    const [id] = pending.splice(pick(pending) % pending.length, 1);
    ran.push(id!);
    const next = graph.advance(steps, id!, ends.get(id!)!);
    pending.push(...next.ready);
    skipped.push(...next.skipped);
  }
  return {
    ran,
    skipped,
    states: new Map([...steps].map(([id, s]) => [id, s.state])),
    outcome: graph.outcome(steps),
  };
}

describe('workflow graph', () => {
  it('finds what is wrong with a graph', () => {
    expect(graphProblems([])).toMatchObject([{ kind: 'no-steps' }]);
    expect(graphProblems([step('a'), step('a')])).toMatchObject([{ kind: 'duplicate-step', steps: ['a'] }]);
    expect(graphProblems([step('a', [['b', 'success']])])).toMatchObject([{ kind: 'unknown-parent' }]);
    expect(graphProblems([step('a', [['a', 'success']])])).toMatchObject([{ kind: 'self-edge' }]);
    expect(
      graphProblems([
        step('a'),
        step('b', [
          ['a', 'success'],
          ['a', 'failure'],
        ]),
      ]),
    ).toMatchObject([{ kind: 'duplicate-edge' }]);
    const cycle = graphProblems([
      step('a'),
      step('b', [
        ['a', 'success'],
        ['d', 'always'],
      ]),
      step('c', [['b', 'success']]),
      step('d', [['c', 'success']]),
    ]);
    expect(cycle).toHaveLength(1);
    expect(cycle[0]!.kind).toBe('cycle');
    expect(new Set(cycle[0]!.steps)).toEqual(new Set(['b', 'c', 'd']));
    expect(graphProblems([step('a')], { maxSteps: 0 })).toMatchObject([{ kind: 'too-many-steps' }]);
  });

  it('names a cycle by a path along its edges, in random graphs with a back edge', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 60 }), fc.nat(), fc.nat(), (n, a, b) => {
        // A chain s0 ← s1 ← … ← s(n-1), then an edge that makes an earlier step run after a later one.
        const steps = Array.from({ length: n }, (_, i) =>
          step(`s${i}`, i === 0 ? [] : [[`s${i - 1}`, 'success']]),
        );
        const from = (a % (n - 1)) + 1;
        const to = b % from;
        steps[to]!.after.push({ from: `s${from}`, on: 'always' });
        const problems = graphProblems(steps);
        expect(problems.map((p) => p.kind)).toEqual(['cycle']);
        const path = problems[0]!.steps;
        expect(path[0]).toBe(path[path.length - 1]);
        // Each step of the path is a parent of the one before it.
        for (let i = 0; i + 1 < path.length; i++) {
          const child = steps.find((s) => s.id === path[i + 1])!;
          expect(child.after.some((e) => e.from === path[i])).toBe(true);
        }
      }),
    );
  });

  it('runs a diamond with a failure branch and an any-join', () => {
    const graph = new WorkflowGraph([
      step('extract'),
      step('load', [['extract', 'success']]),
      step('alert', [['extract', 'failure']]),
      step('report', [['load', 'success']]),
      step(
        'done',
        [
          ['report', 'always'],
          ['alert', 'always'],
        ],
        'any',
      ),
    ]);
    const ok = runInstance(
      graph,
      new Map(['extract', 'load', 'alert', 'report', 'done'].map((s) => [s, { ok: true }])),
    );
    expect(ok.ran).toEqual(['extract', 'load', 'report', 'done']);
    expect(ok.skipped).toEqual(['alert']);
    expect(ok.outcome).toBe('succeeded');
    const failed = runInstance(
      graph,
      new Map([
        ['extract', { ok: false }],
        ['alert', { ok: true }],
        ['done', { ok: true }],
      ]),
    );
    expect(failed.ran).toEqual(['extract', 'alert', 'done']);
    expect(failed.skipped).toEqual(['load', 'report']);
    // The failure of extract is handled by its failure edge.
    expect(failed.outcome).toBe('succeeded');
  });

  it('branches on a predicate over the parent’s result and fails an unhandled failure', () => {
    const graph = new WorkflowGraph([
      step('check'),
      step('big', [['check', { path: 'size.kind', equals: 'big' }]]),
      step('small', [['check', { path: 'size.kind', equals: 'small' }]]),
    ]);
    const run = runInstance(
      graph,
      new Map([
        ['check', { ok: true, result: { size: { kind: 'small' } } }],
        ['small', { ok: false }],
      ]),
    );
    expect(run.ran).toEqual(['check', 'small']);
    expect(run.skipped).toEqual(['big']);
    expect(run.outcome).toBe('failed');
    expect(conditionHolds({ path: 'x', equals: 1 }, { ok: false, result: { x: 1 } })).toBe(false);
  });

  it("compares a predicate as JSON: the order of an object's keys does not matter", () => {
    // PostgreSQL's jsonb answers a stored result with its keys in its own order.
    const end = { ok: true, result: { target: { region: 'eu', tier: 2 } } };
    expect(conditionHolds({ path: 'target', equals: { tier: 2, region: 'eu' } }, end)).toBe(true);
    expect(conditionHolds({ path: 'target', equals: { tier: 3, region: 'eu' } }, end)).toBe(false);
    expect(conditionHolds({ path: 'target', equals: [{ region: 'eu', tier: 2 }] }, end)).toBe(false);
  });

  it('settles waiting steps parents first: ready where edges are met, skips carried down; lists descendants', () => {
    const graph = new WorkflowGraph([
      step('d', [['b', 'success']]),
      step('b', [['a', 'success']]),
      step('a'),
      step('c', [['a', 'failure']]),
      step('e', [['c', 'success']]),
    ]);
    const { steps } = graph.start();
    graph.advance(steps, 'a', { ok: true, result: 1 });
    // A repair puts every step but a back to waiting: settle decides them again, in order.
    for (const id of ['b', 'c', 'd', 'e']) steps.set(id, { state: 'waiting' });
    expect(graph.settle(steps)).toEqual({ ready: ['b'], skipped: ['c', 'e'] });
    expect(graph.settle(steps)).toEqual({ ready: [], skipped: [] });
    expect([...graph.descendants('a')].sort()).toEqual(['b', 'c', 'd', 'e']);
    expect([...graph.descendants('d')]).toEqual([]);
    // end() ends a step whatever its state (a skip by hand): its children are decided.
    expect(graph.end(steps, 'b', { ok: true, result: null })).toEqual({ ready: ['d'], skipped: [] });
  });

  it("reads a predicate's path through JSON members only", () => {
    // The property test below found these: a path that names a property of a JavaScript object
    // that is no member of the JSON value (an array's length, an object's prototype) held.
    const end = { ok: true, result: { list: [1, 2], empty: [], object: {} } };
    expect(conditionHolds({ path: 'list.length', equals: 2 }, end)).toBe(false);
    expect(conditionHolds({ path: 'empty.__proto__', equals: [] }, end)).toBe(false);
    expect(conditionHolds({ path: 'object.__proto__', equals: {} }, end)).toBe(false);
    expect(conditionHolds({ path: '__proto__', equals: {} }, end)).toBe(false);
    expect(valueAt(end.result, 'object.constructor')).toBeUndefined();
    expect(valueAt(end.result, 'list.01')).toBeUndefined();
    expect(valueAt(end.result, 'list.1')).toBe(2);
    expect(valueAt({ __proto__: 1 }, '__proto__')).toBeUndefined();
    expect(valueAt(JSON.parse('{"__proto__": 1}'), '__proto__')).toBe(1);
    expect(conditionHolds({ path: 'list.0', equals: 1 }, end)).toBe(true);
  });

  it('ignores a second end of a step', () => {
    const graph = new WorkflowGraph([step('a'), step('b', [['a', 'success']])]);
    const { steps } = graph.start();
    expect(graph.advance(steps, 'a', { ok: true })).toEqual({ ready: ['b'], skipped: [] });
    expect(graph.advance(steps, 'a', { ok: false })).toEqual({ ready: [], skipped: [] });
    expect(steps.get('a')!.state).toBe('succeeded');
  });

  /**
   * For random DAGs (up to 200 steps, random conditions and joins), random step outcomes and a
   * random order of ending ready steps, the steps that run, those skipped and the instance's outcome
   * are those of an independent reference evaluation of docs/workflows.md's rules
   * (test/workflow-reference.ts, which shares no code with the core); each step runs once.
   */
  it('agrees with a reference evaluation of the documented rules, in any order of ends', () => {
    fc.assert(
      fc.property(arbitraryInstance(200), ({ steps, ends, picks }) => {
        const graph = new WorkflowGraph(steps);
        const { steps: states, ready } = graph.start();
        const pending = [...ready];
        const ran: string[] = [];
        const skipped: string[] = [];
        let turn = 0;
        while (pending.length > 0) {
          expect(graph.outcome(states)).toBe('running');
          const [id] = pending.splice(picks[turn++ % picks.length]! % pending.length, 1);
          ran.push(id!);
          const next = graph.advance(states, id!, ends.get(id!)!);
          pending.push(...next.ready);
          skipped.push(...next.skipped);
        }
        const reference = referenceEvaluation(steps, (id) => ends.get(id)!);
        expect(new Set(ran).size).toBe(ran.length);
        expect(new Set(skipped).size).toBe(skipped.length);
        expect([...ran].sort()).toEqual([...reference.ran].sort());
        expect([...skipped].sort()).toEqual([...reference.skipped].sort());
        for (const [id, { state }] of states) {
          const end = ends.get(id)!;
          expect(state).toBe(reference.skipped.includes(id) ? 'skipped' : end.ok ? 'succeeded' : 'failed');
        }
        expect(graph.outcome(states)).toBe(reference.outcome);
      }),
      { numRuns: 300 },
    );
  }, 120_000);
});
