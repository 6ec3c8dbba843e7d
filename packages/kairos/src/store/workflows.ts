import type { Json, JsonObject, WorkflowInstanceState, WorkflowStepState } from '@kairos/client';
import type { Trigger } from '../core/trigger.ts';
import type { CompiledStep, WorkflowDefinition } from '../core/workflow.ts';
import { writeContext } from '../core/workflow-context.ts';
import { type StepFailure, stepFailure } from '../core/workflow-failures.ts';
import { type InstanceSteps, type StepEnd, WorkflowGraph } from '../core/workflow-graph.ts';
import { CONTEXT_SOURCE, itemFields, mapItems } from '../core/workflow-map.ts';

/**
 * The workflow part of the Store contract (docs/workflows.md): definitions, instances, and the
 * advance of an instance when one of its step runs ends.
 *
 * A step runs as an ordinary run (cause `workflow`), tied to its instance by
 * `runs.workflow_instance_id` and `runs.workflow_step`. Whatever ends a step run for good (a report
 * after the last attempt, a timeout, a lost worker, a cancel) advances the instance in the same
 * transaction: the instance row is locked, the steps' states read, core/workflow-graph.ts decides
 * which steps become ready and which are skipped, their runs are queued, and the instance ends when
 * no step can run any more. A node that dies before the commit leaves nothing; one after it leaves
 * everything; two ends racing on one instance queue each step once (the lock orders them, and each
 * step run has the idempotency key `workflow:<instance>:<step>` on top).
 *
 * The same transaction merges a succeeded step's `$context` into the instance context
 * (core/workflow-context.ts). A map step (core/workflow-map.ts) writes its items when it becomes
 * ready and queues the first `maxParallel`; each item run's end, under the same lock, ends its item
 * and queues the next (store/{sqlite,postgres}/workflow-maps.ts); the last item's end ends the step.
 *
 * Instance states: running → succeeded | failed | cancelled. Step states: waiting → ready (its run
 * queued) → succeeded | failed; waiting → skipped; waiting | ready → cancelled (instance cancelled).
 */
export interface WorkflowStore {
  /**
   * Creates or replaces a workflow of a namespace (a replace bumps its version). A create adds the
   * workflow's own job: `quota` (the namespace's maxJobs) judges it with the namespace's jobs in the
   * transaction (PostgreSQL: the namespace locked first), and a refusal writes nothing.
   */
  put(
    definition: WorkflowDefinition,
    namespace: string,
    now: number,
    quota?: (triggers: readonly Trigger[]) => void,
  ): Promise<{ workflow: WorkflowRecord; created: boolean }>;
  get(namespace: string, name: string): Promise<WorkflowRecord | null>;
  /** Workflows ordered by name; `after` is the last name of the previous page. */
  list(filter: {
    namespace?: string | undefined;
    after?: string | undefined;
    limit: number;
  }): Promise<WorkflowRecord[]>;
  /**
   * Deletes a workflow with its instances and its handler steps' runs (as deleting a job does);
   * runs of `job` steps stay, ending without advancing anything. False when there is none.
   */
  delete(namespace: string, name: string): Promise<boolean>;
  /**
   * Starts an instance in one transaction: the instance, its steps, and the runs of its root steps.
   * With an idempotency key already used for this workflow, answers that instance and writes
   * nothing. Null when the workflow does not exist. With `maxQueuedRuns` (the namespace's quota,
   * docs/tenancy.md#quotas), the root steps' runs are judged in the transaction (PostgreSQL: the
   * namespace locked first) and a refusal (QUOTA_EXCEEDED, 429) writes nothing.
   */
  start(
    namespace: string,
    name: string,
    request: { context: JsonObject; idempotencyKey?: string | undefined },
    now: number,
    maxQueuedRuns?: number | null,
  ): Promise<WorkflowInstanceRecord | null>;
  getInstance(id: number): Promise<WorkflowInstanceRecord | null>;
  /** A workflow's instances, newest first; `before` is the last id of the previous page. */
  listInstances(
    workflowId: number,
    before: number | undefined,
    limit: number,
  ): Promise<WorkflowInstanceRecord[]>;
  /**
   * Cancels a running instance in one transaction: its queued and running step runs are cancelled,
   * its waiting and ready steps become `cancelled`, and it ends `cancelled`. Throws
   * WORKFLOW_INSTANCE_FINISHED when it already ended; null when there is none.
   */
  cancelInstance(id: number, now: number): Promise<WorkflowInstanceRecord | null>;
}

export interface WorkflowRecord extends WorkflowDefinition {
  id: number;
  namespace: string;
  version: number;
  /** The workflow's own job: its handler steps' runs belong to it (hidden from job lists). */
  jobId: number;
  createdAt: number;
  updatedAt: number;
}

export interface WorkflowInstanceRecord {
  id: number;
  workflowId: number;
  workflow: string;
  namespace: string;
  /** The workflow's version when it started; its steps are that version's. */
  version: number;
  state: WorkflowInstanceState;
  context: JsonObject;
  createdAt: number;
  startedAt: number;
  finishedAt: number | null;
  steps: Array<{ id: string; state: WorkflowStepState; runId: number | null; error: StepFailure | null }>;
}

/** The name of a workflow's own job: `/` is not allowed in job names, so no job can take it. */
export function workflowJobName(namespace: string, name: string): string {
  return `workflow/${namespace}/${name}`;
}

/** An instance's step as the store keeps it, with its run's end when it has one. */
export interface StepRow {
  step_id: string;
  state: WorkflowStepState;
  run_id: number | null;
  run_status: string | null;
  /** The run's result, JSON text. */
  run_result: string | null;
  /** The result kept on the step's row when it ended (its run may be gone since), JSON text. */
  result?: string | null;
}

/** A step run that this transaction ended. */
export interface EndedStepRun {
  runId: number;
  instanceId: number;
  step: string;
}

/** What the runs of `job` steps are made from: the job as it is when the step is queued. */
export interface StepJob {
  id: number;
  name: string;
  group: string;
  handler: string;
  params: JsonObject;
  retry: string;
  maxAttempts: number;
  timeoutMs: number;
  priority: number;
}

/** One run to queue for a step. */
export interface StepRunToQueue {
  step: string;
  jobId: number;
  group: string;
  handler: string;
  params: JsonObject;
  priority: number;
  maxAttempts: number;
  /** The retry policy, JSON text. */
  retry: string;
  timeoutMs: number;
  idempotencyKey: string;
  /** A map step's item: its index (the run's key ends with it). */
  index?: number;
}

/** What one transaction writes for one instance. */
export interface InstancePlan {
  /** Steps whose state changes (queued steps included, as `ready`). */
  states: Map<string, WorkflowStepState>;
  /** The results of the steps that ended with one here, JSON text: kept on their rows. */
  results: Map<string, string>;
  runs: StepRunToQueue[];
  /** The instance's end, or null while it runs. */
  outcome: 'succeeded' | 'failed' | null;
  /**
   * Map steps that became ready with items: every item is written, the first ones `ready` with
   * their runs (those of `runs` with the step and an `index`), the others `waiting`.
   */
  maps: Array<{ step: string; items: Json[] }>;
  /** Why steps failed without a failed run of their own: kept on their rows. */
  errors: Map<string, StepFailure>;
  /** The instance context after the context writes of the steps that ended here; null: unchanged. */
  context: JsonObject | null;
}

/** The most the parents' results handed to one step run may weigh, in bytes of JSON. */
export const PARENTS_LIMIT_BYTES = 1024 * 1024;

/** How a run status ends a step: only a success is `ok`; a cancel counts as a failure. */
export function endOf(status: string, result: string | null): StepEnd {
  return status === 'succeeded'
    ? { ok: true, result: result === null ? null : JSON.parse(result) }
    : { ok: false };
}

function stepsFrom(rows: readonly StepRow[]): InstanceSteps {
  const steps: InstanceSteps = new Map();
  for (const row of rows) {
    const state = row.state === 'cancelled' ? 'failed' : row.state;
    const ended = state === 'succeeded' || state === 'failed';
    // The step's row keeps its result; a row from before it did reads the run's (when not pruned).
    const end =
      row.result != null
        ? { ok: state === 'succeeded', result: JSON.parse(row.result) }
        : row.run_status
          ? endOf(row.run_status, row.run_result)
          : { ok: state === 'succeeded', result: null };
    steps.set(row.step_id, { state, ...(ended ? { end } : {}) });
  }
  return steps;
}

/**
 * Decides what an instance does next: its steps as stored (`rows`; empty for a new instance), the
 * step runs that just ended (`ended`, with how), and the jobs its `job` steps name (a missing one
 * fails its step at once, without a run). Pure: the dialects read, call this, and write.
 */
export function planInstance(input: {
  instanceId: number;
  steps: readonly CompiledStep[];
  context: JsonObject;
  rows: readonly StepRow[];
  ended: ReadonlyArray<{ step: string; end: StepEnd }>;
  jobs: ReadonlyMap<string, StepJob>;
  carrier: { jobId: number };
}): InstancePlan {
  const graph = new WorkflowGraph(input.steps);
  const fresh = input.rows.length === 0;
  let steps: InstanceSteps;
  const ready: string[] = [];
  if (fresh) {
    const started = graph.start();
    steps = started.steps;
    ready.push(...started.ready);
  } else steps = stepsFrom(input.rows);
  const before = new Map([...steps].map(([id, s]) => [id, s.state]));
  let context = input.context;
  let contextWritten = false;
  // Context writes first, in the order given: a write that fails fails its step instead.
  const pending = input.ended.map(({ step, end }) => {
    if (!end.ok) return { step, end };
    const written = writeContext(context, end.result);
    if ('error' in written) return { step, end: { ok: false, error: written.error } };
    if ('context' in written) {
      context = written.context;
      contextWritten = true;
    }
    return { step, end };
  });
  const ends: Array<{ step: string; end: StepEnd }> = [];
  const runs: StepRunToQueue[] = [];
  const maps: InstancePlan['maps'] = [];
  const byId = new Map(input.steps.map((s) => [s.id, s]));
  const withRows = { ...input, context, rowsById: new Map(input.rows.map((r) => [r.step_id, r])) };
  for (;;) {
    for (const ended of pending.splice(0)) {
      ends.push(ended);
      ready.push(...graph.advance(steps, ended.step, ended.end).ready);
    }
    if (ready.length === 0) break;
    for (const id of ready.splice(0)) {
      const step = byId.get(id)!;
      if (step.map) {
        const started = startMap(withRows, step, steps);
        if ('end' in started) pending.push({ step: id, end: started.end });
        else {
          maps.push({ step: id, items: started.items });
          runs.push(...started.runs);
        }
        continue;
      }
      const run = stepRun(withRows, step, steps);
      // A `job` step whose job is gone fails at once, without a run; so does one given too much.
      if ('run' in run) runs.push(run.run);
      else pending.push({ step: id, end: { ok: false, error: run.error } });
    }
  }
  const states = new Map<string, WorkflowStepState>();
  for (const [id, { state }] of steps) {
    if (fresh || before.get(id) !== state) states.set(id, state);
  }
  const results = new Map<string, string>();
  const errors = new Map<string, StepFailure>();
  for (const { step, end } of ends) {
    if (end.ok && end.result !== undefined && end.result !== null)
      results.set(step, JSON.stringify(end.result));
    if (!end.ok && end.error) errors.set(step, end.error);
  }
  const outcome = graph.outcome(steps);
  return {
    states,
    runs,
    results,
    outcome: outcome === 'running' ? null : outcome,
    maps,
    errors,
    context: contextWritten ? context : null,
  };
}

/** What queuing a map step's next items needs: the instance as planInstance reads it. */
export type MapInput = Omit<Parameters<typeof planInstance>[0], 'ended'>;

type PlanInput = Parameters<typeof planInstance>[0] & { rowsById: ReadonlyMap<string, StepRow> };

/**
 * A map step that became ready: its items and the runs of the first `maxParallel` of them, or its
 * end when it ends at once (an empty list succeeds with `[]`; a list that is not one, too wide, or
 * whose item runs cannot be made fails it).
 */
function startMap(
  input: PlanInput,
  step: CompiledStep,
  steps: InstanceSteps,
): { end: StepEnd } | { items: Json[]; runs: StepRunToQueue[] } {
  const map = step.map!;
  const source = map.from === CONTEXT_SOURCE ? input.context : steps.get(map.from)?.end?.result;
  const listed = mapItems(map, source ?? null);
  if ('error' in listed) return { end: { ok: false, error: listed.error } };
  if (listed.items.length === 0) return { end: { ok: true, result: [] } };
  const runs: StepRunToQueue[] = [];
  for (let index = 0; index < Math.min(map.maxParallel, listed.items.length); index++) {
    const run = stepRun(input, step, steps, { item: listed.items[index]!, index });
    if ('error' in run) return { end: { ok: false, error: run.error } };
    runs.push(run.run);
  }
  return { items: listed.items, runs };
}

/**
 * The runs of a map step's next items, queued when earlier items end (store/workflow-maps.ts):
 * built as the step's first item runs were, with the context as it is now. Null when the step's
 * job is gone (its items then fail without runs).
 */
export function itemRuns(
  input: MapInput,
  step: CompiledStep,
  items: ReadonlyArray<{ index: number; item: Json }>,
): StepRunToQueue[] | null {
  const withRows = { ...input, ended: [], rowsById: new Map(input.rows.map((r) => [r.step_id, r])) };
  const steps = stepsFrom(input.rows);
  const runs: StepRunToQueue[] = [];
  for (const { index, item } of items) {
    const run = stepRun(withRows, step, steps, { item, index });
    if ('error' in run) return null;
    runs.push(run.run);
  }
  return runs;
}

/**
 * The run of a ready step (of one item of a map step), or why it has none: its job does not exist
 * (any more), or its parents' results weigh more than {@link PARENTS_LIMIT_BYTES}. An item run's
 * `parents` leave out the result its list came from (it holds every item): its item is `item`.
 */
function stepRun(
  input: PlanInput,
  step: CompiledStep,
  steps: InstanceSteps,
  item?: { item: Json; index: number },
): { run: StepRunToQueue } | { error: StepFailure } {
  const parents: Record<string, Json> = {};
  for (const edge of step.after) {
    const row = input.rowsById.get(edge.from);
    const parent = steps.get(edge.from);
    const listed = item !== undefined && step.map?.from === edge.from;
    parents[edge.from] = {
      runId: row?.run_id ?? null,
      state: parent?.state ?? 'waiting',
      result: listed ? null : ((parent?.end?.result ?? null) as Json),
    };
  }
  const size = step.after.length === 0 ? 0 : Buffer.byteLength(JSON.stringify(parents));
  if (size > PARENTS_LIMIT_BYTES) {
    return {
      error: stepFailure(
        'PARENTS_TOO_LARGE',
        `its parents' results weigh ${size} bytes, over the ${PARENTS_LIMIT_BYTES} a step run receives`,
      ),
    };
  }
  const workflow = {
    instanceId: input.instanceId,
    step: step.id,
    context: input.context,
    parents,
    ...(item ? itemFields(item.item, item.index) : {}),
  };
  const key = `workflow:${input.instanceId}:${step.id}${item ? `:${item.index}` : ''}`;
  const index = item ? { index: item.index } : {};
  if (step.run.kind === 'job') {
    const job = input.jobs.get(step.run.job);
    if (!job) return { error: stepFailure('STEP_JOB_MISSING', `its job '${step.run.job}' does not exist`) };
    const run: StepRunToQueue = {
      step: step.id,
      jobId: job.id,
      group: job.group,
      handler: job.handler,
      params: { ...job.params, ...step.run.params, $workflow: workflow },
      priority: job.priority,
      maxAttempts: job.maxAttempts,
      retry: job.retry,
      timeoutMs: job.timeoutMs,
      idempotencyKey: key,
      ...index,
    };
    return { run };
  }
  const run: StepRunToQueue = {
    step: step.id,
    jobId: input.carrier.jobId,
    group: step.run.group,
    handler: step.run.handler,
    params: { ...step.run.params, $workflow: workflow },
    priority: step.run.priority,
    maxAttempts: step.run.retry.maxAttempts,
    retry: JSON.stringify(step.run.retry),
    timeoutMs: step.run.timeoutMs,
    idempotencyKey: key,
    ...index,
  };
  return { run };
}

/** The job names an instance's `job` steps refer to. */
export function stepJobNames(steps: readonly CompiledStep[]): string[] {
  return [...new Set(steps.flatMap((s) => (s.run.kind === 'job' ? [s.run.job] : [])))];
}

export interface WorkflowRow {
  id: number;
  namespace: string;
  name: string;
  description: string;
  version: number;
  steps: string;
  job_id: number;
  created_at: number;
  updated_at: number;
}

export function workflowFromRow(row: WorkflowRow): WorkflowRecord {
  return {
    id: row.id,
    namespace: row.namespace,
    name: row.name,
    description: row.description,
    version: row.version,
    steps: JSON.parse(row.steps) as CompiledStep[],
    jobId: row.job_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export interface InstanceRow {
  id: number;
  workflow_id: number;
  workflow_name: string;
  namespace: string;
  workflow_version: number;
  steps: string;
  state: WorkflowInstanceState;
  context: string;
  created_at: number;
  started_at: number;
  finished_at: number | null;
}

/** A step's row as an instance answer reads it; `error` is JSON text. */
export interface InstanceStepRow {
  step_id: string;
  state: WorkflowStepState;
  run_id: number | null;
  error: string | null;
}

export function instanceFromRow(row: InstanceRow, steps: readonly InstanceStepRow[]): WorkflowInstanceRecord {
  const order = (JSON.parse(row.steps) as CompiledStep[]).map((s) => s.id);
  const byId = new Map(steps.map((s) => [s.step_id, s]));
  return {
    id: row.id,
    workflowId: row.workflow_id,
    workflow: row.workflow_name,
    namespace: row.namespace,
    version: row.workflow_version,
    state: row.state,
    context: JSON.parse(row.context) as JsonObject,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    steps: order.map((id) => ({
      id,
      state: byId.get(id)?.state ?? 'waiting',
      runId: byId.get(id)?.run_id ?? null,
      error: parseError(byId.get(id)?.error ?? null),
    })),
  };
}

/** The error a cancelled step run carries. */
export const CANCELLED_WITH_INSTANCE = JSON.stringify({
  name: 'Cancelled',
  message: 'cancelled with its workflow instance',
});

/** The error a step run carries when the job it ran was deleted. */
export const JOB_DELETED = JSON.stringify({ name: 'Cancelled', message: 'its job was deleted' });

function parseError(text: string | null): StepFailure | null {
  return text === null ? null : (JSON.parse(text) as StepFailure);
}
