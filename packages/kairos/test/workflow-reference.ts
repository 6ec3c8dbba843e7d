/**
 * A reference evaluation of a workflow instance, written from the rules of docs/workflows.md alone
 * (it shares no code with core/workflow-graph.ts): given how every step that runs ends, which steps
 * run, which are skipped, and how the instance ends. The property test of the core and the
 * workflow chaos test compare what Kairos did with it.
 *
 * It decides each step once, in a topological order, from its parents' final states:
 * - an edge is met when its parent ran and its condition holds on how the parent ended
 *   (`success`: succeeded; `failure`: failed; `always`; `{ path, equals }`: succeeded and its result
 *   holds `equals` at the dotted `path`, compared as JSON); otherwise (the parent skipped, or the
 *   condition false) it is dead;
 * - a step without edges runs; `join: all` runs when every edge is met, `join: any` when one is;
 * - the instance failed when a step that ran failed and no edge from it is `failure` or `always`.
 */

export type ReferenceCondition = 'success' | 'failure' | 'always' | { path: string; equals: unknown };

export interface ReferenceStep {
  id: string;
  after: ReadonlyArray<{ from: string; on: ReferenceCondition }>;
  join: 'all' | 'any';
}

export interface ReferenceEnd {
  ok: boolean;
  result?: unknown;
}

export interface ReferenceEvaluation {
  /** The steps that run, in a topological order. */
  ran: string[];
  skipped: string[];
  outcome: 'succeeded' | 'failed';
}

/**
 * Evaluates an instance: `endOf(step)` says how a step that runs ends (asked once per such step, in
 * a topological order, so an outcome may be drawn as the evaluation goes).
 */
export function referenceEvaluation(
  steps: readonly ReferenceStep[],
  endOf: (step: string) => ReferenceEnd,
): ReferenceEvaluation {
  const ends = new Map<string, ReferenceEnd>();
  const skipped = new Set<string>();
  const ran: string[] = [];
  for (const step of topologicalOrder(steps)) {
    const met = step.after.map((edge) => {
      const end = ends.get(edge.from);
      return end !== undefined && holds(edge.on, end);
    });
    const runs = step.after.length === 0 || (step.join === 'all' ? !met.includes(false) : met.includes(true));
    if (runs) {
      ends.set(step.id, endOf(step.id));
      ran.push(step.id);
    } else skipped.add(step.id);
  }
  const handled = new Set<string>();
  for (const step of steps)
    for (const edge of step.after) if (edge.on === 'failure' || edge.on === 'always') handled.add(edge.from);
  const failed = ran.some((id) => !ends.get(id)!.ok && !handled.has(id));
  return {
    ran,
    skipped: steps.filter((s) => skipped.has(s.id)).map((s) => s.id),
    outcome: failed ? 'failed' : 'succeeded',
  };
}

function holds(on: ReferenceCondition, end: ReferenceEnd): boolean {
  switch (on) {
    case 'success':
      return end.ok;
    case 'failure':
      return !end.ok;
    case 'always':
      return true;
    default: {
      if (!end.ok) return false;
      const found = member(end.result, on.path);
      return found.found && jsonEqual(found.value, on.equals);
    }
  }
}

/** Kahn's algorithm; throws on a cycle (the generators never make one). */
function topologicalOrder(steps: readonly ReferenceStep[]): ReferenceStep[] {
  const waiting = new Map(steps.map((s) => [s.id, new Set(s.after.map((e) => e.from))]));
  const byId = new Map(steps.map((s) => [s.id, s]));
  const order: ReferenceStep[] = [];
  let next = steps.filter((s) => s.after.length === 0);
  while (next.length > 0) {
    order.push(...next);
    const done = new Set(next.map((s) => s.id));
    next = [];
    for (const [id, parents] of waiting) {
      const before = parents.size;
      for (const parent of done) parents.delete(parent);
      if (parents.size === 0 && before > 0) next.push(byId.get(id)!);
    }
  }
  if (order.length !== steps.length) throw new Error('the reference evaluation needs an acyclic graph');
  return order;
}

/**
 * The JSON member at a dotted path: each segment names an object's own member, or an array's
 * element by its index (`0`, `12`: no sign, no leading zero). Nothing else is a member of a JSON
 * value (an array's `length`, an object's `__proto__` or `constructor` are not).
 */
function member(value: unknown, path: string): { found: true; value: unknown } | { found: false } {
  let current = value;
  for (const segment of path.split('.')) {
    if (Array.isArray(current)) {
      if (!/^(0|[1-9][0-9]*)$/.test(segment) || Number(segment) >= current.length) return { found: false };
      current = current[Number(segment)];
    } else if (current !== null && typeof current === 'object') {
      if (!Object.hasOwn(current, segment)) return { found: false };
      current = (current as Record<string, unknown>)[segment];
    } else return { found: false };
  }
  return { found: true, value: current };
}

/** Equal as JSON values: an object's members in any order, an array's elements in order. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    return ka.every(
      (k) =>
        Object.hasOwn(b, k) &&
        jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    );
  }
  return a === b;
}
