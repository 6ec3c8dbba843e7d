import pg from 'pg';
import type { ReferenceCondition, ReferenceStep } from '../workflow-reference.ts';
import { rng } from './nemesis.ts';
import { ADMIN_TOKEN, type System, sleep } from './system.ts';

// The workflow and the store reads of the workflow chaos test (workflows-chaos.test.ts).

type Edge = string | { step: string; on: ReferenceCondition };

export interface ChaosStepSpec {
  id: string;
  handler: 'wf-step';
  after?: Edge[];
  join?: 'all' | 'any';
  /** `odd`: the step fails in instances of an odd variant; `always`: in every instance. */
  params: { fail: 'never' | 'odd' | 'always' };
  retry: { maxAttempts: number; backoff: 'fixed'; delay: string; jitter: false };
}

/**
 * A workflow of `count` steps drawn from the seed, with every kind of edge: the first steps are
 * fixed (a predicate edge on each parity, a step failing in odd instances with a `failure` edge,
 * a step failing always with an `always` edge, joins `any` and `all`, a step failing in odd
 * instances that nothing handles, so that they fail), the rest draw 1–3 earlier
 * parents, mostly recent ones, with `success` edges and now and then a predicate or an `always`.
 */
export function chaosWorkflow(seed: number, count: number): ChaosStepSpec[] {
  const random = rng(seed);
  const id = (i: number) => `s${String(i).padStart(2, '0')}`;
  const step = (
    i: number,
    after: Edge[] = [],
    join: 'all' | 'any' = 'all',
    fail: 'never' | 'odd' | 'always' = 'never',
  ): ChaosStepSpec => ({
    id: id(i),
    handler: 'wf-step',
    ...(after.length > 0 ? { after, join } : {}),
    params: { fail },
    // Planned failures retry once; other steps have 3 attempts, for the attempts that kills lose.
    retry: { maxAttempts: fail === 'never' ? 3 : 2, backoff: 'fixed', delay: '200ms', jitter: false },
  });
  const steps = [
    step(0),
    step(1, [{ step: id(0), on: { path: 'kind', equals: 'odd' } }]),
    step(2, [{ step: id(0), on: { path: 'kind', equals: 'even' } }]),
    step(3, [id(0)], 'all', 'odd'),
    step(4, [{ step: id(3), on: 'failure' }]),
    step(5, [id(1), id(2)], 'any'),
    step(6, [id(3), id(5)], 'all'),
    step(7, [id(5)], 'all', 'always'),
    step(8, [{ step: id(7), on: 'always' }, id(4)], 'any'),
    // Fails in odd instances and no edge handles it (no later step takes it as a parent): they fail.
    step(9, [id(0)], 'all', 'odd'),
  ];
  for (let i = steps.length; i < count; i++) {
    const parents = new Set<number>();
    const n = 1 + Math.floor(random() * 3);
    for (let k = 0; k < n; k++) {
      const p = Math.max(0, i - 1 - Math.floor(random() * random() * i));
      parents.add(p === 9 ? 8 : p);
    }
    const after = [...parents].map((p): Edge => {
      const r = random();
      if (r < 0.1) return { step: id(p), on: { path: 'kind', equals: random() < 0.5 ? 'odd' : 'even' } };
      if (r < 0.18) return { step: id(p), on: 'always' };
      return id(p);
    });
    steps.push(step(i, after, random() < 0.5 ? 'all' : 'any', random() < 0.1 ? 'odd' : 'never'));
  }
  return steps;
}

/** The steps as the reference evaluation reads them. */
export function referenceSteps(steps: readonly ChaosStepSpec[]): ReferenceStep[] {
  return steps.map((s) => ({
    id: s.id,
    after: (s.after ?? []).map((e) =>
      typeof e === 'string' ? { from: e, on: 'success' } : { from: e.step, on: e.on },
    ),
    join: s.join ?? 'all',
  }));
}

/** A request to the cluster's API through a node that is up, tried on the next one when it fails. */
export async function request<T>(system: System, method: string, path: string, body?: unknown): Promise<T> {
  let last: unknown;
  for (let i = 0; i < 600; i++) {
    const slots = system.nodeSlots();
    const url = system.url(slots[i % slots.length]!);
    try {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await response.text();
      if (response.ok) return JSON.parse(text) as T;
      last = `${response.status} ${text}`;
      // A refusal is an answer; only a node that is down or unavailable is tried again.
      if (response.status < 500) break;
    } catch (error) {
      last = error;
    }
    await sleep(200);
  }
  throw new Error(`${method} ${path}: ${String(last)}`);
}

export interface WorkflowSnapshot {
  instances: Array<{ id: number; state: string; variant: number }>;
  steps: Array<{ instanceId: number; step: string; state: string; runId: number | null }>;
  runs: Array<{
    id: number;
    instanceId: number;
    step: string;
    status: string;
    attempt: number;
    maxAttempts: number;
    result: unknown;
    /** Rows of the run's ended attempts (an attempt that succeeded has none: its run is it). */
    attempts: number;
    /** Its attempts that a killed worker lost. */
    lost: number;
  }>;
}

/** The workflow's instances, steps and step runs, read from the store in one snapshot. */
export async function readWorkflowSnapshot(url: string, schema: string): Promise<WorkflowSnapshot> {
  const client = new pg.Client({ connectionString: url, options: `-c search_path="${schema}"` });
  await client.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    const instances = await client.query(
      `SELECT id, state, (context->>'variant')::int AS variant FROM workflow_instances ORDER BY id`,
    );
    const steps = await client.query('SELECT instance_id, step_id, state, run_id FROM workflow_steps');
    const runs = await client.query(
      `SELECT r.id, r.workflow_instance_id, r.workflow_step, r.status, r.attempt, r.max_attempts, r.result,
         (SELECT count(*) FROM attempts a WHERE a.run_id = r.id) AS attempts,
         (SELECT count(*) FROM attempts a WHERE a.run_id = r.id AND a.status = 'lost') AS lost
       FROM runs r WHERE r.workflow_instance_id IS NOT NULL ORDER BY r.id`,
    );
    await client.query('COMMIT');
    return {
      instances: instances.rows.map((r) => ({
        id: Number(r.id),
        state: r.state,
        variant: Number(r.variant),
      })),
      steps: steps.rows.map((r) => ({
        instanceId: Number(r.instance_id),
        step: r.step_id,
        state: r.state,
        runId: r.run_id === null ? null : Number(r.run_id),
      })),
      runs: runs.rows.map((r) => ({
        id: Number(r.id),
        instanceId: Number(r.workflow_instance_id),
        step: r.workflow_step,
        status: r.status,
        attempt: Number(r.attempt),
        maxAttempts: Number(r.max_attempts),
        result: typeof r.result === 'string' ? JSON.parse(r.result) : r.result,
        attempts: Number(r.attempts),
        lost: Number(r.lost),
      })),
    };
  } finally {
    await client.end();
  }
}
