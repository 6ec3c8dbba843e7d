import type { Json, JsonObject, WorkflowInstanceState, WorkflowStepState } from '@kairos/client';
import type { SkippedRange } from '../core/fire-plan.ts';
import { DEFAULT_SCHEDULE, type SchedulePolicy } from '../core/schedule-policy.ts';
import { taskHandler } from '../core/task.ts';
import type { Trigger } from '../core/trigger.ts';
import type { CompiledStep, WorkflowDefinition } from '../core/workflow.ts';
import { writeContext } from '../core/workflow-context.ts';
import { type StepFailure, stepFailure } from '../core/workflow-failures.ts';
import { type InstanceSteps, type StepEnd, WorkflowGraph } from '../core/workflow-graph.ts';
import { CONTEXT_SOURCE, itemFields, mapItems } from '../core/workflow-map.ts';
import { KairosError } from '../errors.ts';
import type { AuditEntry } from './access.ts';

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
 * Instance states: running ⇄ paused; running | paused → succeeded | failed | cancelled; a repair
 * (retry, re-run, skip) brings an ended instance back to running. Step states: waiting → ready (its
 * run queued) → succeeded | failed; waiting → skipped; waiting | ready → cancelled (instance
 * cancelled); a repair puts ended steps back to waiting, or ends one as succeeded (skipped by hand).
 * While an instance is paused, the steps whose edges are met stay waiting (held) until it resumes.
 *
 * The same transaction merges a succeeded step's `$context` into the instance context
 * (core/workflow-context.ts). A map step (core/workflow-map.ts) writes its items when it becomes
 * ready and queues the first `maxParallel`; each item run's end, under the same lock, ends its item
 * and queues the next (store/{sqlite,postgres}/workflow-maps.ts); the last item's end ends the step.
 * While the instance is paused its waiting items stay waiting; the resume queues them. A re-run or
 * retry of a map step replaces its items (new run keys, `…:<n>:<index>`); a skip cancels them.
 */
export interface WorkflowStore {
  /**
   * Creates or replaces a workflow of a namespace (a replace bumps its version). A create adds the
   * workflow's own job: `quota` (the namespace's maxJobs) judges it with the namespace's jobs in the
   * transaction (PostgreSQL: the namespace locked first), and a refusal writes nothing.
   *
   * The workflow's trigger and schedule are its job's (docs/workflows.md#triggers): the trigger
   * loop fires that job, and a fire starts an instance. `next` is the first fire of the trigger and
   * schedule from now; a replace that keeps both keeps the job's next fire (and a pause).
   * `rateQuota` judges a replace that changes the trigger with the namespace's other jobs.
   */
  put(
    definition: WorkflowDefinition,
    namespace: string,
    now: number,
    quota?: (triggers: readonly Trigger[]) => void,
    schedule?: { next: number | null; rateQuota?: (triggers: readonly Trigger[]) => void },
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
   * runs of `job` steps stay, detached ({@link detachJobStepRuns}), ending without advancing
   * anything. False when there is none.
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
  /**
   * Repairs an instance in one transaction, its row locked ({@link planRepair} says what each action
   * does): the steps it puts back to waiting, the runs it replaces (cancelled: a late report of one
   * changes nothing), the runs it queues, the instance's new state. Throws the action's refusal
   * (WORKFLOW_INSTANCE_FINISHED, WORKFLOW_INSTANCE_NOT_RETRYABLE, WORKFLOW_STEP_NOT_FOUND,
   * WORKFLOW_STEP_NOT_ENDED, WORKFLOW_STEP_NOT_SKIPPABLE) having written nothing; null when there is
   * no such instance. Answers the instance as it is after (unchanged for a pause of a paused one).
   * With `maxQueuedRuns` (the namespace's quota, docs/tenancy.md#quotas), the runs the repair queues
   * are judged in its transaction (PostgreSQL: the namespace locked first) and a refusal
   * (QUOTA_EXCEEDED, 429) writes nothing; a repair that queues no run (a pause) is never refused.
   */
  repairInstance(
    id: number,
    action: WorkflowRepair,
    now: number,
    maxQueuedRuns?: number | null,
  ): Promise<WorkflowInstanceRecord | null>;
  /**
   * The items of a map step of an instance (docs/workflows.md#the-items-of-a-map-step): in index
   * order from index `from`, at most `limit`, only those in `state` when it is given; each with its
   * run's id, attempts and error (read from the run: none once retention deleted it) and its result
   * as kept on the item. `counts` is the step's items by state, all of them. Null when there is no
   * such instance; throws WORKFLOW_STEP_NOT_FOUND for a step its version does not have and
   * WORKFLOW_STEP_NOT_MAP for a step that is not a map step. One read: no lock.
   */
  mapItems(
    instanceId: number,
    step: string,
    filter: { from: number; limit: number; state?: MapItemState | undefined },
  ): Promise<MapItemsPage | null>;
}

/** A map step's item: waiting → ready (its run queued) → succeeded | failed; skipped; cancelled. */
export type MapItemState = 'waiting' | 'ready' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';

export const MAP_ITEM_STATES: readonly MapItemState[] = [
  'waiting',
  'ready',
  'succeeded',
  'failed',
  'skipped',
  'cancelled',
];

/** One item of a map step as read (see {@link WorkflowStore.mapItems}). */
export interface MapItemRecord {
  index: number;
  state: MapItemState;
  /** Its run (the current fan-out's); null while waiting, and for an item skipped or cancelled before it ran. */
  runId: number | null;
  /** Attempts its run started: 0 before the first, and once the run is gone. */
  attempts: number;
  /** Its result, JSON text, once it succeeded (null otherwise). */
  result: string | null;
  /** Why its run failed (the run's error), null otherwise and once the run is gone. */
  error: { name: string; message: string } | null;
}

export interface MapItemsPage {
  items: MapItemRecord[];
  counts: Record<MapItemState, number>;
}

/** An item row as both dialects read it: the item with its run's attempt and error (JSON text). */
export interface MapItemRow {
  idx: number;
  state: MapItemState;
  run_id: number | null;
  run_attempt: number | null;
  result: string | null;
  run_error: string | null;
}

export function mapItemFromRow(row: MapItemRow): MapItemRecord {
  const error =
    row.run_error === null ? null : (JSON.parse(row.run_error) as { name?: string; message?: string });
  return {
    index: Number(row.idx),
    state: row.state,
    runId: row.run_id === null ? null : Number(row.run_id),
    attempts: row.run_attempt === null ? 0 : Number(row.run_attempt),
    result: row.result,
    error:
      error === null || row.state !== 'failed'
        ? null
        : { name: String(error.name ?? 'Error'), message: String(error.message ?? '') },
  };
}

/** The step's item counts from rows of (state, n); every state present, 0 when it has none. */
export function mapItemCounts(
  rows: ReadonlyArray<{ state: string; n: number | string }>,
): Record<MapItemState, number> {
  const counts = Object.fromEntries(MAP_ITEM_STATES.map((state) => [state, 0])) as Record<
    MapItemState,
    number
  >;
  for (const row of rows) if (row.state in counts) counts[row.state as MapItemState] = Number(row.n);
  return counts;
}

/**
 * Checks that `step` is a map step of an instance's version (its `steps` column, JSON text):
 * WORKFLOW_STEP_NOT_FOUND or WORKFLOW_STEP_NOT_MAP otherwise.
 */
export function checkMapStep(instanceId: number, steps: string | CompiledStep[], step: string): void {
  const compiled = typeof steps === 'string' ? (JSON.parse(steps) as CompiledStep[]) : steps;
  const found = compiled.find((s) => s.id === step);
  if (!found) {
    throw new KairosError(
      'WORKFLOW_STEP_NOT_FOUND',
      `workflow instance ${instanceId} has no step ${JSON.stringify(step)}`,
    );
  }
  if (!found.map) {
    throw new KairosError(
      'WORKFLOW_STEP_NOT_MAP',
      `step ${JSON.stringify(step)} of workflow instance ${instanceId} is not a map step: it has no items`,
    );
  }
}

/** A repair of an instance (docs/workflows.md#repair). */
export type WorkflowRepair =
  | { kind: 'pause' }
  | { kind: 'resume' }
  | { kind: 'retry' }
  | { kind: 'rerun'; step: string }
  | { kind: 'skip'; step: string };

export interface WorkflowRecord extends WorkflowDefinition {
  id: number;
  namespace: string;
  version: number;
  /** The workflow's own job: its handler and task steps' runs belong to it (hidden from job lists). */
  jobId: number;
  /** Its job's: a paused workflow's trigger does not fire. */
  paused: boolean;
  /** Its job's next fire time (kept while paused). */
  nextFireAt: number | null;
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
  /** What started it: the API (`manual`) or a fire of the workflow's trigger (`schedule`). */
  cause: WorkflowInstanceCause;
  /** The fire time of a `schedule` start; null for a manual one. */
  scheduledFor: number | null;
  createdAt: number;
  startedAt: number;
  finishedAt: number | null;
  steps: WorkflowStepRecord[];
}

/** A step of an instance as read: its state, and its run's times and attempts (null, 0: no run, or gone). */
export interface WorkflowStepRecord {
  id: string;
  state: WorkflowStepState;
  runId: number | null;
  /** When its run's first attempt started. */
  startedAt: number | null;
  /** When its run ended for good (null while it may run again). */
  finishedAt: number | null;
  attempts: number;
  /** Skipped by hand: it counts as succeeded with a null result. */
  skipped?: boolean;
  /** Why it failed without a failed run of its own (docs/errors.md#workflow-step-failures). */
  error: StepFailure | null;
}

export type WorkflowInstanceCause = 'manual' | 'schedule';

/** How an instance is started: by the API, or by a fire of its workflow's trigger. */
export interface InstanceStart {
  context: JsonObject;
  idempotencyKey: string | null;
  cause: WorkflowInstanceCause;
  /** The fire time (a `schedule` start): one instance per fire time, by a unique key. */
  scheduledFor: number | null;
  /** When the root steps' runs become available: the fire time plus its jitter; default now. */
  availableAt?: number | undefined;
}

/**
 * How a fire of the workflow's trigger starts an instance: cause `schedule`, the fire time (one
 * instance per fire time, by a unique key), and the context a step reads it from,
 * `$workflow.context.scheduledFor`. `availableAt`: when its root steps' runs become available (the
 * fire time plus its jitter; a held fire's, the instant it starts).
 */
export function scheduledStart(fireTime: number, availableAt: number): InstanceStart {
  return {
    context: { scheduledFor: new Date(fireTime).toISOString() },
    idempotencyKey: null,
    cause: 'schedule',
    scheduledFor: fireTime,
    availableAt,
  };
}

/**
 * The audit entry of an instance that a newer fire cancelled (overlap `cancel-previous`), written
 * in the fire's transaction: the actor is the schedule, as the API's cancel is its caller's.
 */
export function cancelledByFire(
  namespace: string,
  instanceId: number,
  workflow: string,
  fireTime: number,
  now: number,
): AuditEntry {
  return {
    namespace,
    at: now,
    actor: 'schedule',
    action: 'workflow-instances.cancel',
    target: `workflow-instances:${instanceId}`,
    details: { reason: 'overlap', workflow, scheduledFor: new Date(fireTime).toISOString() },
  };
}

/** The held fires that a `cancel-previous` fire dropped, as one ledger range (reason `overlap`). */
export function heldRange(fireTimes: readonly number[]): SkippedRange | null {
  if (fireTimes.length === 0) return null;
  const sorted = [...fireTimes].sort((a, b) => a - b);
  return { reason: 'overlap', first: sorted[0]!, last: sorted[sorted.length - 1]!, count: sorted.length };
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
  /** How many runs the step had queued (its next run's key counts on from it). */
  run_count?: number;
  /** Ended by hand as a success (a skip): its run, if any, was cancelled. */
  hand_skipped?: boolean | number;
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
  /** A paused job's step run is queued held, until the job is resumed (docs/workflows.md). */
  paused: boolean;
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
  /** Queued held (HELD_WHILE_PAUSED_AT): its job is paused. */
  held: boolean;
  /**
   * A handler step's own request (core/resources.ts), JSON text, kept on the run (`runs.resources`);
   * null for none and for `job` steps, whose job's request applies.
   */
  resources: string | null;
  /**
   * A `task` step's built-in task (core/task.ts), JSON text, kept on the run (`runs.task`) and
   * delivered with each claim as a job's task is; null for the others (a `job` step's run takes
   * its job's task at the claim).
   */
  task: string | null;
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
    // Its state says how it ended: a step whose run succeeded may have failed after (its context
    // write refused). The step's row keeps its result; a row from before it did reads its run's (when
    // not pruned), and only when the step succeeded. A step skipped by hand succeeded with no result,
    // whatever its cancelled run says.
    const ok = Boolean(row.hand_skipped) || state === 'succeeded';
    const result =
      !ok || row.hand_skipped
        ? null
        : row.result != null
          ? JSON.parse(row.result)
          : row.run_status === 'succeeded' && row.run_result !== null
            ? JSON.parse(row.run_result)
            : null;
    const end = ok ? { ok: true, result } : { ok: false };
    steps.set(row.step_id, { state, ...(ended ? { end } : {}) });
  }
  return steps;
}

/**
 * Decides what an instance does next: its steps as stored (`rows`; empty for a new instance), the
 * step runs that just ended (`ended`, with how), and the jobs its `job` steps name (a missing one
 * fails its step at once, without a run). A repair adds what it does ({@link planRepair}). Pure:
 * the dialects read, call this, and write.
 */
export function planInstance(input: {
  instanceId: number;
  steps: readonly CompiledStep[];
  context: JsonObject;
  rows: readonly StepRow[];
  ended: ReadonlyArray<{ step: string; end: StepEnd }>;
  jobs: ReadonlyMap<string, StepJob>;
  carrier: { jobId: number };
  /** The instance is paused: the steps whose edges are met stay waiting (held), without a run. */
  paused?: boolean;
  /** A step skipped by hand: it ends as a success with result null, whatever its state. */
  skip?: string | undefined;
  /** Steps queued whatever their edges (a re-run). */
  force?: readonly string[];
  /** Decide every waiting step from its edges (a repair put steps back, or a resume). */
  settle?: boolean;
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
  if (input.skip !== undefined) ready.push(...graph.end(steps, input.skip, { ok: true, result: null }).ready);
  for (const id of input.force ?? []) {
    steps.set(id, { state: 'ready' });
    ready.push(id);
  }
  if (input.settle) ready.push(...graph.settle(steps).ready);
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
    if (input.paused) {
      // Held: still waiting; the resume decides them again (WorkflowGraph.settle) and queues them.
      for (const id of ready.splice(0)) steps.set(id, { state: 'waiting' });
      break;
    }
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

/** What a repair writes, in this order, in one transaction with the instance's row locked. */
export interface RepairPlan {
  /** Steps back to waiting: no run, no result, not skipped; `run_count` as given (their runs so far). */
  reset: ReadonlyArray<{ step: string; runCount: number }>;
  /** The steps' states, the runs to queue (the instance's end is {@link state}). */
  plan: InstancePlan;
  /** The step ended by hand (a skip). */
  handSkipped: string | null;
  /**
   * Runs of the steps put back or skipped that may still be queued or running: cancelled, with the
   * other shards of a broadcast whose first shard one is (a `job` step of a broadcast job).
   */
  cancel: number[];
  state: WorkflowInstanceState;
  /** The instance ended with this repair (finishedAt = now), or runs again (finishedAt = null). */
  ended: boolean;
}

const ENDED_STEP: ReadonlySet<WorkflowStepState> = new Set(['succeeded', 'failed', 'skipped', 'cancelled']);

/**
 * Decides a repair of an instance (docs/workflows.md#repair); null when it changes nothing (pausing a
 * paused instance, resuming a running one). Throws the action's refusal. Pure, as {@link planInstance}:
 * - pause: a running instance becomes paused; its queued and running step runs go on, and their ends
 *   still advance it, but the steps that become ready then stay waiting (held);
 * - resume: a paused instance runs again: its held steps are decided again and queued;
 * - retry: a failed or cancelled instance runs again: its failed and cancelled steps, and the steps
 *   skipped because of them, go back to waiting and are decided again; succeeded steps keep their
 *   results;
 * - rerun: an ended step and every step downstream of it go back to waiting (their queued or running
 *   runs cancelled), the step is queued at once, the instance runs;
 * - skip: a waiting, ready (its run cancelled) or failed step ends as a success with result null,
 *   the steps skipped because of its failure go back to waiting, and the instance advances.
 */
export function planRepair(input: {
  instanceId: number;
  state: WorkflowInstanceState;
  steps: readonly CompiledStep[];
  context: JsonObject;
  rows: readonly StepRow[];
  jobs: ReadonlyMap<string, StepJob>;
  carrier: { jobId: number };
  action: WorkflowRepair;
}): RepairPlan | null {
  const { action, state, instanceId } = input;
  const over = state === 'succeeded' || state === 'failed' || state === 'cancelled';
  const finished = () =>
    new KairosError('WORKFLOW_INSTANCE_FINISHED', `workflow instance ${instanceId} already ended (${state})`);
  const noChange = {
    states: new Map(),
    results: new Map(),
    runs: [],
    outcome: null,
    maps: [],
    errors: new Map(),
    context: null,
  } satisfies InstancePlan;
  const base = { reset: [], plan: noChange, handSkipped: null, cancel: [], ended: false };
  if (action.kind === 'pause') {
    if (over) throw finished();
    return state === 'paused' ? null : { ...base, state: 'paused' };
  }
  const graph = new WorkflowGraph(input.steps);
  const rowsById = new Map(input.rows.map((r) => [r.step_id, r]));
  const reset = new Set<string>();
  /** The steps skipped below `id` (through skipped steps only): skipped because of it. */
  const skippedBelow = (id: string) => {
    const queue = [...graph.children(id)];
    while (queue.length > 0) {
      const child = queue.shift()!;
      if (reset.has(child) || rowsById.get(child)?.state !== 'skipped') continue;
      reset.add(child);
      queue.push(...graph.children(child));
    }
  };
  let force: string[] = [];
  let skip: string | undefined;
  let paused = false;
  if (action.kind === 'resume') {
    if (over) throw finished();
    if (state === 'running') return null;
  } else if (action.kind === 'retry') {
    if (state !== 'failed' && state !== 'cancelled') {
      throw new KairosError(
        'WORKFLOW_INSTANCE_NOT_RETRYABLE',
        `workflow instance ${instanceId} is ${state}: only a failed or cancelled instance is retried`,
      );
    }
    for (const row of input.rows)
      if (row.state === 'failed' || row.state === 'cancelled') reset.add(row.step_id);
    for (const id of [...reset]) skippedBelow(id);
  } else {
    const row = rowsById.get(action.step);
    if (!graph.steps.has(action.step) || !row) {
      throw new KairosError(
        'WORKFLOW_STEP_NOT_FOUND',
        `workflow instance ${instanceId} has no step ${JSON.stringify(action.step)}`,
      );
    }
    if (action.kind === 'rerun') {
      if (!ENDED_STEP.has(row.state)) {
        throw new KairosError(
          'WORKFLOW_STEP_NOT_ENDED',
          `step ${JSON.stringify(action.step)} of workflow instance ${instanceId} is ${row.state}: only an ended step is re-run`,
        );
      }
      reset.add(action.step);
      for (const id of graph.descendants(action.step)) reset.add(id);
      force = [action.step];
    } else {
      if (state === 'cancelled') throw finished();
      if (row.state !== 'waiting' && row.state !== 'ready' && row.state !== 'failed') {
        throw new KairosError(
          'WORKFLOW_STEP_NOT_SKIPPABLE',
          `step ${JSON.stringify(action.step)} of workflow instance ${instanceId} is ${row.state}: only a waiting, ready or failed step is skipped`,
        );
      }
      if (row.state === 'failed') skippedBelow(action.step);
      skip = action.step;
      paused = state === 'paused';
    }
  }
  const cancel: number[] = [];
  const rows = input.rows.map((row): StepRow => {
    const replaced = reset.has(row.step_id) || row.step_id === skip;
    if (replaced && row.state === 'ready' && row.run_id !== null) cancel.push(row.run_id);
    if (!reset.has(row.step_id)) return row;
    // A row written before run_count was kept had its one run: the next run's key counts on from it.
    const runCount = Math.max(row.run_count ?? 0, row.run_id === null ? 0 : 1);
    return {
      ...row,
      state: 'waiting',
      run_id: null,
      run_status: null,
      run_result: null,
      result: null,
      run_count: runCount,
      hand_skipped: false,
    };
  });
  const plan = planInstance({ ...input, rows, ended: [], paused, skip, force, settle: true });
  const ended = plan.outcome !== null;
  return {
    reset: rows
      .filter((r) => reset.has(r.step_id))
      .map((r) => ({ step: r.step_id, runCount: r.run_count ?? 0 })),
    plan: { ...plan, outcome: null },
    handSkipped: skip ?? null,
    cancel,
    state: plan.outcome ?? (paused ? 'paused' : 'running'),
    ended,
  };
}

/**
 * The steps whose run, or one of whose item runs, the insert did not write: its key is held by
 * another run already (SQLite reuses the ids of deleted instances). Each fails with
 * STEP_RUN_CONFLICT (the dialects decide their instance again with these ends), rather than stay
 * ready without a run for ever. Both dialects' writePlan and settleMaps.
 */
export function runConflicts(
  runs: readonly StepRunToQueue[],
  inserted: ReadonlyMap<string, unknown>,
): Array<{ step: string; end: StepEnd }> {
  const keys = new Map<string, string>();
  for (const run of runs)
    if (!inserted.has(run.idempotencyKey) && !keys.has(run.step)) keys.set(run.step, run.idempotencyKey);
  return [...keys].map(([step, key]) => ({
    step,
    end: {
      ok: false,
      error: stepFailure('STEP_RUN_CONFLICT', `the key of its run, '${key}', is held by another run`),
    },
  }));
}

/** What writing a plan needs to decide the instance again (a run that could not be queued). */
export type PlanContext = Omit<MapInput, 'rows'>;

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
  // This fan-out's number: 1, then one more for each re-run or retry (workflow_steps.run_count).
  const fanOut = (input.rowsById.get(step.id)?.run_count ?? 0) + 1;
  const runs: StepRunToQueue[] = [];
  for (let index = 0; index < Math.min(map.maxParallel, listed.items.length); index++) {
    const run = stepRun(input, step, steps, { item: listed.items[index]!, index, fanOut });
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
  // The fan-out under way: its run_count was counted when it started.
  const fanOut = Math.max(withRows.rowsById.get(step.id)?.run_count ?? 0, 1);
  const runs: StepRunToQueue[] = [];
  for (const { index, item } of items) {
    const run = stepRun(withRows, step, steps, { item, index, fanOut });
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
  item?: { item: Json; index: number; fanOut: number },
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
  // A step's first run has the key `workflow:<instance>:<step>`; a repair's next ones `…:<n>`, n ≥ 2.
  // A map step's item runs `workflow:<instance>:<step>:<index>` in its first fan-out, then
  // `…:<n>:<index>` in the n-th (a re-run or retry fans out again).
  const runs = input.rowsById.get(step.id)?.run_count ?? 0;
  const key = item
    ? `workflow:${input.instanceId}:${step.id}${item.fanOut > 1 ? `:${item.fanOut}` : ''}:${item.index}`
    : `workflow:${input.instanceId}:${step.id}${runs > 0 ? `:${runs + 1}` : ''}`;
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
      held: job.paused,
      resources: null,
      task: null,
    };
    return { run };
  }
  const run: StepRunToQueue = {
    step: step.id,
    jobId: input.carrier.jobId,
    group: step.run.group,
    // A task step runs as a job with that task does: the built-in kind's handler, which only
    // workers that enabled the kind register, so no other worker claims it.
    handler: step.run.kind === 'task' ? taskHandler(step.run.task.kind) : step.run.handler,
    params: { ...step.run.params, $workflow: workflow },
    priority: step.run.priority,
    maxAttempts: step.run.retry.maxAttempts,
    retry: JSON.stringify(step.run.retry),
    timeoutMs: step.run.timeoutMs,
    idempotencyKey: key,
    ...index,
    held: false,
    resources: step.run.resources ? JSON.stringify(step.run.resources) : null,
    task: step.run.kind === 'task' ? JSON.stringify(step.run.task) : null,
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
  /** The workflow's job's columns (JSON text; 0/1 or a boolean), read with a join. */
  trigger: string;
  schedule: string;
  paused: number | boolean;
  next_fire_at: number | null;
}

export function workflowFromRow(row: WorkflowRow): WorkflowRecord {
  return {
    id: row.id,
    namespace: row.namespace,
    name: row.name,
    description: row.description,
    version: row.version,
    steps: JSON.parse(row.steps) as CompiledStep[],
    trigger: JSON.parse(row.trigger) as Trigger,
    schedule: { ...DEFAULT_SCHEDULE, ...(JSON.parse(row.schedule) as Partial<SchedulePolicy>) },
    paused: Boolean(row.paused),
    nextFireAt: row.next_fire_at,
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
  cause: WorkflowInstanceCause;
  scheduled_for: number | null;
  created_at: number;
  started_at: number;
  finished_at: number | null;
}

/**
 * The columns of an instance's steps as read, with their runs' times (both dialects; `s` the steps,
 * `r` their runs LEFT JOINed, so a pruned run reads as none). A run's first start is its first
 * attempt's (an attempt's row is written when it ends; a running first attempt is the run's row).
 * A map step has no run of its own: it reads from its item runs (`m`, `mr`: one range of the
 * items' primary key), the first one's first start, the last one's end once the step ended, and
 * their attempts summed.
 */
export const STEP_READ_COLUMNS = `s.step_id, s.state, s.run_id,
  coalesce((SELECT min(a.started_at) FROM attempts a WHERE a.run_id = r.id), r.started_at,
    (SELECT min(coalesce((SELECT min(a.started_at) FROM attempts a WHERE a.run_id = mr.id), mr.started_at))
     FROM workflow_map_items m JOIN runs mr ON mr.id = m.run_id AND mr.workflow_instance_id = m.instance_id
     WHERE s.run_id IS NULL AND m.instance_id = s.instance_id AND m.step_id = s.step_id)) AS run_started_at,
  CASE WHEN r.status IN ('succeeded', 'failed', 'timed_out', 'cancelled') THEN r.finished_at
    WHEN s.run_id IS NULL AND s.state IN ('succeeded', 'failed', 'cancelled') THEN
      (SELECT max(mr.finished_at) FROM workflow_map_items m JOIN runs mr ON mr.id = m.run_id AND mr.workflow_instance_id = m.instance_id
       WHERE m.instance_id = s.instance_id AND m.step_id = s.step_id) END AS run_finished_at,
  coalesce(r.attempt,
    (SELECT CAST(sum(mr.attempt) AS INTEGER) FROM workflow_map_items m JOIN runs mr ON mr.id = m.run_id AND mr.workflow_instance_id = m.instance_id
     WHERE s.run_id IS NULL AND m.instance_id = s.instance_id AND m.step_id = s.step_id), 0) AS run_attempts,
  s.hand_skipped, CAST(s.error AS TEXT) AS error`;

/**
 * How a step's row is joined to its run (`s` the steps, `r` the run), in both dialects: by its id,
 * and only a run of this instance's step. SQLite hands the id of a deleted run to the next one: an
 * unrelated run is never read as the step's.
 */
export const STEP_RUN_JOIN =
  'LEFT JOIN runs r ON r.id = s.run_id AND r.workflow_instance_id = s.instance_id AND r.workflow_step = s.step_id';

export interface StepReadRow {
  step_id: string;
  state: WorkflowStepState;
  run_id: number | null;
  run_started_at: number | null;
  run_finished_at: number | null;
  run_attempts: number;
  hand_skipped?: boolean | number;
  /** JSON text. */
  error: string | null;
}

export function instanceFromRow(row: InstanceRow, steps: readonly StepReadRow[]): WorkflowInstanceRecord {
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
    cause: row.cause,
    scheduledFor: row.scheduled_for,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    steps: order.map((id) => {
      const step = byId.get(id);
      return {
        id,
        state: step?.state ?? 'waiting',
        runId: step?.run_id ?? null,
        startedAt: step?.run_started_at ?? null,
        finishedAt: step?.run_finished_at ?? null,
        attempts: step?.run_attempts ?? 0,
        ...(step?.hand_skipped ? { skipped: true } : {}),
        error: parseError(step?.error ?? null),
      };
    }),
  };
}

/**
 * Detaches the runs of a deleted workflow's `job` steps (they stay, as runs of their jobs), both
 * dialects: no instance, no step, no `workflow:` key. SQLite hands a deleted instance's id to the
 * next instance: a key left behind would hold that instance's step run, which then could not be
 * queued. `param` spells the dialect's parameters: the workflow's id, and its own job's id.
 */
export function detachJobStepRuns(param: (name: 'workflow' | 'job') => string): string {
  return `UPDATE runs SET workflow_instance_id = NULL, workflow_step = NULL,
    idempotency_key = CASE WHEN idempotency_key LIKE 'workflow:%' THEN NULL ELSE idempotency_key END
  WHERE workflow_instance_id IN (SELECT id FROM workflow_instances WHERE workflow_id = ${param('workflow')})
    AND job_id <> ${param('job')}`;
}

/** The error a cancelled step run carries. */
export const CANCELLED_WITH_INSTANCE = JSON.stringify({
  name: 'Cancelled',
  message: 'cancelled with its workflow instance',
});

/** The error a step run carries when a newer fire cancelled its instance (overlap `cancel-previous`). */
export const CANCELLED_BY_NEWER_FIRE = JSON.stringify({
  name: 'Cancelled',
  message: 'cancelled with its workflow instance by the overlap policy (cancel-previous) of a newer fire',
});

/** The error a step run carries when a repair (re-run, skip) replaced it. */
export const REPLACED_BY_REPAIR = JSON.stringify({
  name: 'Cancelled',
  message: 'replaced by a repair of its workflow instance',
});

/** The error a step run carries when the job it ran was deleted. */
export const JOB_DELETED = JSON.stringify({ name: 'Cancelled', message: 'its job was deleted' });

function parseError(text: string | null): StepFailure | null {
  return text === null ? null : (JSON.parse(text) as StepFailure);
}
