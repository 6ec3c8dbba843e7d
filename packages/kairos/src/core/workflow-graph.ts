import type { StepFailure } from './workflow-failures.ts';

/**
 * The graph of a workflow and how an instance advances through it: which steps run, which are
 * skipped, and when the instance is over. Pure: the store applies {@link advance} in the same
 * transaction that ends a step run, so a step is enabled exactly once whatever node ends its parent.
 *
 * A step runs when its join is met by its incoming edges:
 * - an edge from a parent is **met** when the parent ended and its condition holds on how it ended
 *   (`success`, `failure`, `always`, or a predicate on the parent's result after a success);
 * - an edge is **dead** when the parent ended and the condition does not hold, or the parent was
 *   skipped;
 * - join `all`: the step runs once every edge is met; it is skipped as soon as one is dead;
 * - join `any`: the step runs as soon as one edge is met (once: later parents do not run it again);
 *   it is skipped when every edge is dead.
 * Steps without parents run when the instance starts. The instance is over when no step can run
 * any more; it failed when a step failed and no edge of that step handles the failure (`failure`
 * or `always`), and succeeded otherwise.
 */

/** How a parent's end enables an edge. */
export type EdgeCondition =
  | 'success'
  | 'failure'
  | 'always'
  /** After a success, when the value at `path` (dotted) of the parent's result equals `equals`. */
  | { path: string; equals: unknown };

export interface WorkflowEdge {
  /** The parent step's id. */
  from: string;
  on: EdgeCondition;
}

export interface WorkflowStep {
  id: string;
  /** Incoming edges; none for a step that runs when the instance starts. */
  after: WorkflowEdge[];
  join: 'all' | 'any';
}

/** What a finished step run says: how it ended and what it returned. */
export interface StepEnd {
  ok: boolean;
  result?: unknown;
  /** Why the step failed without a failed run of its own (core/workflow-failures.ts). */
  error?: StepFailure;
}

export type StepState = 'waiting' | 'ready' | 'succeeded' | 'failed' | 'skipped';

/** The states of one instance's steps, by step id. */
export type InstanceSteps = Map<string, { state: StepState; end?: StepEnd }>;

export interface GraphProblem {
  /** Which rule the graph breaks. */
  kind:
    | 'duplicate-step'
    | 'unknown-parent'
    | 'self-edge'
    | 'duplicate-edge'
    | 'cycle'
    | 'no-steps'
    | 'too-many-steps'
    | 'map-source'
    | 'map-source-unended';
  message: string;
  /** The field at fault, when one is (`steps[i].map.from`). */
  field?: string;
  /** The steps concerned; for a cycle, its path from a step back to it. */
  steps: string[];
}

/** What a graph must not exceed. */
export interface GraphLimits {
  maxSteps: number;
}

export const DEFAULT_GRAPH_LIMITS: GraphLimits = { maxSteps: 1000 };

/**
 * The problems of a graph, empty when it is valid: every parent exists, no step depends on itself
 * directly or through others (the first cycle found is named by its path), no step or edge twice.
 */
export function graphProblems(steps: readonly WorkflowStep[], limits = DEFAULT_GRAPH_LIMITS): GraphProblem[] {
  const problems: GraphProblem[] = [];
  if (steps.length === 0) problems.push({ kind: 'no-steps', message: 'a workflow needs a step', steps: [] });
  if (steps.length > limits.maxSteps)
    problems.push({
      kind: 'too-many-steps',
      message: `a workflow has at most ${limits.maxSteps} steps, this one ${steps.length}`,
      steps: [],
    });
  const byId = new Map<string, WorkflowStep>();
  for (const step of steps) {
    if (byId.has(step.id))
      problems.push({
        kind: 'duplicate-step',
        message: `step '${step.id}' is defined twice`,
        steps: [step.id],
      });
    else byId.set(step.id, step);
  }
  for (const step of byId.values()) {
    const parents = new Set<string>();
    for (const edge of step.after) {
      if (edge.from === step.id)
        problems.push({
          kind: 'self-edge',
          message: `step '${step.id}' runs after itself`,
          steps: [step.id],
        });
      else if (!byId.has(edge.from))
        problems.push({
          kind: 'unknown-parent',
          message: `step '${step.id}' runs after '${edge.from}', which is not a step of this workflow`,
          steps: [step.id, edge.from],
        });
      if (parents.has(edge.from))
        problems.push({
          kind: 'duplicate-edge',
          message: `step '${step.id}' names '${edge.from}' twice`,
          steps: [step.id, edge.from],
        });
      parents.add(edge.from);
    }
  }
  const cycle = findCycle(byId);
  if (cycle)
    problems.push({ kind: 'cycle', message: `the steps form a cycle: ${cycle.join(' → ')}`, steps: cycle });
  return problems;
}

/** A path `a → b → … → a` along parent edges, or null when there is none (iterative DFS). */
function findCycle(byId: Map<string, WorkflowStep>): string[] | null {
  const done = new Set<string>();
  for (const start of byId.keys()) {
    if (done.has(start)) continue;
    const path: string[] = [];
    const onPath = new Set<string>();
    const stack: Array<{ id: string; next: number }> = [{ id: start, next: 0 }];
    path.push(start);
    onPath.add(start);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const parents = byId.get(top.id)?.after ?? [];
      if (top.next < parents.length) {
        const parent = parents[top.next++]!.from;
        if (parent === top.id || !byId.has(parent) || done.has(parent)) continue;
        if (onPath.has(parent)) return [...path.slice(path.indexOf(parent)), parent].reverse();
        stack.push({ id: parent, next: 0 });
        path.push(parent);
        onPath.add(parent);
      } else {
        stack.pop();
        path.pop();
        onPath.delete(top.id);
        done.add(top.id);
      }
    }
  }
  return null;
}

/**
 * The value at a dotted path of a result (`a.b.0`), or undefined. Each segment names a JSON member:
 * an object's own key, or an array's index (digits, no leading zero); never a property that
 * JavaScript adds (an array's `length`, an object's `__proto__` or `constructor`).
 */
export function valueAt(result: unknown, path: string): unknown {
  let value = result;
  for (const key of path.split('.')) {
    if (Array.isArray(value)) {
      if (!/^(0|[1-9][0-9]*)$/.test(key)) return undefined;
      value = value[Number(key)];
    } else if (value !== null && typeof value === 'object' && Object.hasOwn(value, key))
      value = (value as Record<string, unknown>)[key];
    else return undefined;
  }
  return value;
}

/** Whether an edge's condition holds on how its parent ended. */
export function conditionHolds(on: EdgeCondition, end: StepEnd): boolean {
  if (on === 'always') return true;
  if (on === 'success') return end.ok;
  if (on === 'failure') return !end.ok;
  return end.ok && sameJson(valueAt(end.result, on.path), on.equals);
}

/** Equal as JSON values: an object's keys in any order (PostgreSQL's jsonb keeps its own order). */
function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a, sortedKeys) === JSON.stringify(b, sortedKeys);
}

/** A JSON.stringify replacer that writes every object's keys in sorted order. */
function sortedKeys(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const object = value as Record<string, unknown>;
  return Object.fromEntries(
    Object.keys(object)
      .sort()
      .map((key) => [key, object[key]]),
  );
}

/** An edge's state given its parent's. */
function edgeState(edge: WorkflowEdge, steps: InstanceSteps): 'met' | 'dead' | 'open' {
  const parent = steps.get(edge.from);
  if (!parent) return 'dead';
  if (parent.state === 'skipped') return 'dead';
  if (parent.state !== 'succeeded' && parent.state !== 'failed') return 'open';
  return conditionHolds(edge.on, parent.end ?? { ok: parent.state === 'succeeded' }) ? 'met' : 'dead';
}

/** What a waiting step becomes given its edges: ready, skipped, or still waiting. */
function decide(step: WorkflowStep, steps: InstanceSteps): 'ready' | 'skipped' | 'waiting' {
  if (step.after.length === 0) return 'ready';
  let met = 0;
  let dead = 0;
  for (const edge of step.after) {
    const state = edgeState(edge, steps);
    if (state === 'met') met++;
    else if (state === 'dead') dead++;
  }
  if (step.join === 'all') {
    if (dead > 0) return 'skipped';
    return met === step.after.length ? 'ready' : 'waiting';
  }
  if (met > 0) return 'ready';
  return dead === step.after.length ? 'skipped' : 'waiting';
}

/** The graph with each step's children, for {@link advance}. */
export class WorkflowGraph {
  readonly steps: ReadonlyMap<string, WorkflowStep>;
  readonly #children = new Map<string, string[]>();
  /** The steps with every parent before its children (for {@link settle}). */
  readonly #order: string[] = [];

  /** Fails on a graph with problems ({@link graphProblems}): check it first. */
  constructor(steps: readonly WorkflowStep[], limits = DEFAULT_GRAPH_LIMITS) {
    const problems = graphProblems(steps, limits);
    if (problems.length > 0) throw new Error(problems.map((p) => p.message).join('; '));
    this.steps = new Map(steps.map((s) => [s.id, s]));
    for (const step of steps) {
      this.#children.set(step.id, this.#children.get(step.id) ?? []);
      for (const edge of step.after) {
        const list = this.#children.get(edge.from) ?? [];
        list.push(step.id);
        this.#children.set(edge.from, list);
      }
    }
    const parents = new Map(steps.map((s) => [s.id, s.after.length]));
    const next = steps.filter((s) => s.after.length === 0).map((s) => s.id);
    while (next.length > 0) {
      const id = next.shift()!;
      this.#order.push(id);
      for (const child of this.#children.get(id) ?? []) {
        const left = parents.get(child)! - 1;
        parents.set(child, left);
        if (left === 0) next.push(child);
      }
    }
  }

  /** A new instance: roots ready, every other step waiting. */
  start(): { steps: InstanceSteps; ready: string[] } {
    const steps: InstanceSteps = new Map();
    const ready: string[] = [];
    for (const step of this.steps.values()) {
      const state = step.after.length === 0 ? 'ready' : 'waiting';
      steps.set(step.id, { state });
      if (state === 'ready') ready.push(step.id);
    }
    return { steps, ready };
  }

  /**
   * A ready step ended: records it and decides its descendants, transitively through skips.
   * Returns the steps that became ready (to enqueue) and those skipped, in the order decided.
   * Ending a step that is not ready changes nothing (a second report of the same end).
   */
  advance(steps: InstanceSteps, stepId: string, end: StepEnd): { ready: string[]; skipped: string[] } {
    const ready: string[] = [];
    const skipped: string[] = [];
    if (steps.get(stepId)?.state !== 'ready') return { ready, skipped };
    return this.end(steps, stepId, end);
  }

  /**
   * Ends a step whatever its state (a repair: a step skipped by hand ends as a success) and decides
   * its waiting descendants, as {@link advance} does.
   */
  end(steps: InstanceSteps, stepId: string, end: StepEnd): { ready: string[]; skipped: string[] } {
    const ready: string[] = [];
    const skipped: string[] = [];
    steps.set(stepId, { state: end.ok ? 'succeeded' : 'failed', end });
    const queue = [...(this.#children.get(stepId) ?? [])];
    while (queue.length > 0) {
      const id = queue.shift()!;
      if (steps.get(id)?.state !== 'waiting') continue;
      const decision = decide(this.steps.get(id)!, steps);
      if (decision === 'waiting') continue;
      steps.set(id, { state: decision });
      if (decision === 'ready') ready.push(id);
      else {
        skipped.push(id);
        queue.push(...(this.#children.get(id) ?? []));
      }
    }
    return { ready, skipped };
  }

  /**
   * Decides every waiting step from its edges, parents first (a repair put steps back to waiting,
   * or a paused instance held the steps that became ready): the steps that become ready, and those
   * skipped, transitively.
   */
  settle(steps: InstanceSteps): { ready: string[]; skipped: string[] } {
    const ready: string[] = [];
    const skipped: string[] = [];
    for (const id of this.#order) {
      if (steps.get(id)?.state !== 'waiting') continue;
      const decision = decide(this.steps.get(id)!, steps);
      if (decision === 'waiting') continue;
      steps.set(id, { state: decision });
      (decision === 'ready' ? ready : skipped).push(id);
    }
    return { ready, skipped };
  }

  /** The steps downstream of a step (its children, theirs, …), without it. */
  descendants(stepId: string): Set<string> {
    const found = new Set<string>();
    const queue = [...(this.#children.get(stepId) ?? [])];
    while (queue.length > 0) {
      const id = queue.shift()!;
      if (found.has(id)) continue;
      found.add(id);
      queue.push(...(this.#children.get(id) ?? []));
    }
    return found;
  }

  /** A step's children. */
  children(stepId: string): readonly string[] {
    return this.#children.get(stepId) ?? [];
  }

  /**
   * Whether the instance is over (no step ready or waiting) and how: failed when a step failed
   * without an edge that handles its failure (`failure` or `always` from it).
   */
  outcome(steps: InstanceSteps): 'running' | 'succeeded' | 'failed' {
    let failed = false;
    for (const [id, { state }] of steps) {
      if (state === 'ready' || state === 'waiting') return 'running';
      if (state === 'failed' && !this.#handlesFailure(id)) failed = true;
    }
    return failed ? 'failed' : 'succeeded';
  }

  #handlesFailure(id: string): boolean {
    return (this.#children.get(id) ?? []).some((child) =>
      this.steps.get(child)!.after.some((e) => e.from === id && (e.on === 'failure' || e.on === 'always')),
    );
  }
}
