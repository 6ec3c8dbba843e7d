import fc from 'fast-check';
import type { ReferenceCondition, ReferenceEnd, ReferenceStep } from './workflow-reference.ts';

/**
 * Random workflow instances for the property tests of core/workflow-graph.ts and of the store's
 * planner: a DAG of up to `maxSteps` steps (edges only to earlier steps, so acyclic by construction),
 * random conditions and joins, how each step ends when it runs, and a random order of ends.
 */
export interface ArbitraryInstance {
  steps: Array<ReferenceStep & { after: Array<{ from: string; on: ReferenceCondition }> }>;
  ends: Map<string, ReferenceEnd>;
  /** Indexes that pick the next ready step(s) to end, used in turn. */
  picks: number[];
}

/** Small values, so that predicates hold often enough to matter. */
const small = fc.oneof(
  fc.constantFrom<unknown>('a', 'b', 0, 1, 2, true, null),
  fc.constantFrom<unknown>({}, [], { kind: 'a' }, [0], [0, 1], { n: 1, kind: 'a' }),
);

/** Step results: objects, arrays and scalars, with members the paths below name (or not). */
const result = fc.oneof(
  fc.record(
    {
      kind: fc.constantFrom('a', 'b'),
      n: fc.integer({ min: 0, max: 2 }),
      list: fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 3 }),
      nested: fc.record({ kind: fc.constantFrom('a', 'b'), n: fc.integer({ min: 0, max: 2 }) }),
    },
    { requiredKeys: [] },
  ),
  fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 3 }),
  small,
);

/**
 * Dotted paths, including some that name no JSON member: an array's `length`, an object's
 * `__proto__` and `constructor`, an index with a leading zero.
 */
const PATHS = [
  'kind',
  'n',
  'list',
  'list.0',
  'list.1',
  'list.01',
  'list.length',
  'length',
  '0',
  'nested',
  'nested.kind',
  'nested.n',
  '__proto__',
  'constructor',
  'nested.toString',
  'missing',
];

const condition: fc.Arbitrary<ReferenceCondition> = fc.oneof(
  fc.constantFrom<ReferenceCondition>('success', 'failure', 'always'),
  fc.record({ path: fc.constantFrom(...PATHS), equals: small }),
);

export function arbitraryInstance(maxSteps = 200): fc.Arbitrary<ArbitraryInstance> {
  return fc.integer({ min: 1, max: maxSteps }).chain((n) =>
    fc
      .tuple(
        fc.array(
          fc.record({
            parents: fc.uniqueArray(fc.nat(), { maxLength: 4 }),
            conditions: fc.array(condition, { minLength: 4, maxLength: 4 }),
            join: fc.constantFrom<'all' | 'any'>('all', 'any'),
            ok: fc.boolean(),
            result,
          }),
          { minLength: n, maxLength: n },
        ),
        fc.array(fc.nat(), { minLength: 1, maxLength: 400 }),
      )
      .map(([specs, picks]) => {
        const steps = specs.map((spec, i) => {
          const parents = i === 0 ? [] : [...new Set(spec.parents.map((p) => p % i))];
          return {
            id: `s${i}`,
            after: parents.map((p, k) => ({ from: `s${p}`, on: spec.conditions[k]! })),
            join: spec.join,
          };
        });
        const ends = new Map(
          specs.map((spec, i) => [`s${i}`, spec.ok ? { ok: true, result: spec.result } : { ok: false }]),
        );
        return { steps, ends, picks };
      }),
  );
}
