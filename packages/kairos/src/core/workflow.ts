import {
  HANDLER_PATTERN,
  type JsonObject,
  NAME_PATTERN,
  type RetryPolicy,
  type EdgeCondition as WireEdgeCondition,
  type WorkflowSpec,
  type WorkflowStepSpec,
} from '@kairos/client';
import { KairosError } from '../errors.ts';
import { parseDuration } from './duration.ts';
import { checkParams, DEFAULT_GROUP, DEFAULT_TIMEOUT_MS, PRIORITY_LIMIT } from './job.ts';
import { compileResources, type Resources, resourceSpecOf } from './resources.ts';
import { compileRetry } from './retry.ts';
import { compileSchedule, type SchedulePolicy, scheduleSpecOf } from './schedule-policy.ts';
import {
  BUILT_IN_PREFIX,
  compileTask as compileBuiltInTask,
  type TaskDefinition,
  taskSpecOf,
} from './task.ts';
import { compileTrigger, describeTrigger, type Trigger } from './trigger.ts';
import { type EdgeCondition, type GraphProblem, graphProblems, type WorkflowStep } from './workflow-graph.ts';
import { CONTEXT_SOURCE, compileMap, type MapConfig } from './workflow-map.ts';

/**
 * A workflow definition: named steps joined by conditional edges (core/workflow-graph.ts decides
 * how an instance advances). What a step runs:
 * - `handler`: a handler of a worker group, with its own params, retry, timeout and priority;
 * - `task`: a built-in task (a shell command or an HTTP call, core/task.ts), run as a job's task is
 *   (handler `kairos:<kind>`, the task on the run) with the step's own group, params, retry,
 *   timeout and priority;
 * - `job`: an existing job of the same namespace, run with its handler, task, group, routing,
 *   retry and timeout as they are when the step is queued, its params merged under the step's.
 */
export interface WorkflowDefinition {
  name: string;
  description: string;
  steps: CompiledStep[];
  /** When instances start by themselves (docs/workflows.md#triggers); `manual`: only through the API. */
  trigger: Trigger;
  /**
   * The schedule policy of the trigger, as a job's: overlap judges the workflow's unfinished
   * instances (docs/workflows.md#triggers).
   */
  schedule: SchedulePolicy;
}

export interface CompiledStep extends WorkflowStep {
  run: StepTask;
  /** A map step: one run of `run` per item of a list (core/workflow-map.ts). */
  map?: MapConfig;
}

/** What a `handler` or `task` step's runs are made with (a `job` step's come from its job). */
export interface StepRunPolicy {
  group: string;
  params: JsonObject;
  retry: RetryPolicy;
  timeoutMs: number;
  priority: number;
  /** What the step's run needs free on its worker (core/resources.ts); null: nothing. */
  resources: Resources | null;
}

export type StepTask =
  | ({ kind: 'handler'; handler: string } & StepRunPolicy)
  /** A built-in task: its run's handler is `kairos:<kind>` and the run carries the task. */
  | ({ kind: 'task'; task: TaskDefinition } & StepRunPolicy)
  | { kind: 'job'; job: string; params: JsonObject };

/** A step id: like a job name, at most 64 characters. */
export const STEP_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Validates a workflow spec from outside. Field errors are VALIDATION_FAILED; a graph that breaks a
 * rule (cycle, unknown parent, …) is WORKFLOW_INVALID with every problem in `details.problems`.
 */
export function compileWorkflow(spec: WorkflowSpec): WorkflowDefinition {
  if (!NAME_PATTERN.test(spec.name)) throw invalid('name', `a name matching ${NAME_PATTERN}`);
  const steps = spec.steps.map((step, i) => compileStep(step, `steps[${i}]`));
  const problems = [...graphProblems(steps), ...mapProblems(steps)];
  if (problems.length > 0) {
    throw new KairosError('WORKFLOW_INVALID', problems.map((p) => p.message).join('; '), {
      problems: problems.map((p) => ({
        kind: p.kind,
        message: p.message,
        steps: p.steps,
        ...(p.field === undefined ? {} : { field: p.field }),
      })),
    });
  }
  return {
    name: spec.name,
    description: spec.description ?? '',
    steps,
    trigger: compileWorkflowTrigger(spec.trigger ?? { kind: 'manual' }),
    schedule: compileSchedule(spec.schedule),
  };
}

/**
 * A job's trigger, but `after` (a workflow's steps have joins and edges for that) and `delay`
 * (which counts from the end of the previous run, and a workflow's steps are runs of its own job).
 */
function compileWorkflowTrigger(spec: NonNullable<WorkflowSpec['trigger']>): Trigger {
  if (spec.kind === 'after' || spec.kind === 'delay') {
    throw new KairosError(
      'INVALID_TRIGGER',
      `trigger.kind: a workflow takes a cron, every, at or manual trigger, not ${JSON.stringify(spec.kind)}` +
        (spec.kind === 'after' ? ' (steps run after other steps with `after` edges)' : ''),
      { field: 'trigger.kind' },
    );
  }
  return compileTrigger(spec);
}

/**
 * A map's `from` must be one of its step's parents, or the context; and that parent must have
 * ended with a result when the step becomes ready: the step joins `all` and its edge from `from`
 * is `success` or a predicate (which needs a success). Otherwise the step could be ready while its
 * list's parent runs, or failed, and fail with MAP_NOT_A_LIST for no fault of the list.
 */
function mapProblems(steps: readonly CompiledStep[]): GraphProblem[] {
  return steps.flatMap((step, i): GraphProblem[] => {
    if (!step.map || step.map.from === CONTEXT_SOURCE) return [];
    const from = step.map.from;
    const edge = step.after.find((e) => e.from === from);
    if (!edge) {
      return [
        {
          kind: 'map-source' as const,
          message: `map step '${step.id}' takes its list from '${from}', which is neither one of its parents nor ${CONTEXT_SOURCE}`,
          steps: [step.id, from],
        },
      ];
    }
    if (step.join === 'all' && (edge.on === 'success' || typeof edge.on === 'object')) return [];
    return [
      {
        kind: 'map-source-unended' as const,
        message: `map step '${step.id}' takes its list from '${from}', which may not have succeeded when the step is ready: a map step takes its list from a parent only with join 'all' and a 'success' (or predicate) edge from it`,
        steps: [step.id, from],
        field: `steps[${i}].map.from`,
      },
    ];
  });
}

function compileStep(spec: WorkflowStepSpec, field: string): CompiledStep {
  const step = compileRun(spec, field);
  if (spec.map !== undefined && step.run.kind === 'task') {
    // Each item run would run the same command or request: a task reads no params, so no item.
    throw new KairosError(
      'INVALID_TASK',
      `${field}.map: expected no map on a task step (a task's command or request is the same for every item; map a handler or a job step)`,
      { field: `${field}.map` },
    );
  }
  return spec.map === undefined ? step : { ...step, map: compileMap(spec.map, `${field}.map`) };
}

function compileRun(spec: WorkflowStepSpec, field: string): CompiledStep {
  if (!STEP_ID_PATTERN.test(spec.id)) throw invalid(`${field}.id`, `a step id matching ${STEP_ID_PATTERN}`);
  const after = (spec.after ?? []).map((edge) =>
    typeof edge === 'string'
      ? { from: edge, on: 'success' as EdgeCondition }
      : { from: edge.step, on: (edge.on ?? 'success') as EdgeCondition },
  );
  const join = spec.join ?? 'all';
  const params = checkParams(spec.params ?? {}, `${field}.params`);
  if (spec.task !== undefined) {
    // As a job that names a task and another handler: INVALID_TASK, naming what stands beside it.
    for (const key of ['handler', 'job'] as const) {
      if (spec[key] !== undefined) {
        throw new KairosError(
          'INVALID_TASK',
          `${field}.${key}: expected no ${key} on a task step (its run's handler is the task's built-in kind)`,
          { field: `${field}.${key}` },
        );
      }
    }
    const task = compileBuiltInTask(spec.task, `${field}.task`)!;
    return { id: spec.id, after, join, run: { kind: 'task', task, ...runPolicy(spec, field, params) } };
  }
  if ((spec.handler === undefined) === (spec.job === undefined)) {
    throw invalid(field, 'exactly one of `handler`, `job` and `task`');
  }
  if (spec.job !== undefined) {
    if (!NAME_PATTERN.test(spec.job)) throw invalid(`${field}.job`, 'a job name');
    for (const key of ['group', 'retry', 'timeout', 'priority', 'resources'] as const) {
      if (spec[key] !== undefined)
        throw invalid(`${field}.${key}`, 'nothing on a `job` step (the job has its own)');
    }
    return { id: spec.id, after, join, run: { kind: 'job', job: spec.job, params } };
  }
  const handler = spec.handler!;
  if (!HANDLER_PATTERN.test(handler)) throw invalid(`${field}.handler`, 'a handler name');
  if (handler.startsWith(BUILT_IN_PREFIX)) {
    // A built-in kind's run needs its task: without one, the worker could only fail it.
    throw invalid(
      `${field}.handler`,
      `a handler name that does not start with ${BUILT_IN_PREFIX} (a built-in kind is a \`task\`)`,
    );
  }
  return { id: spec.id, after, join, run: { kind: 'handler', handler, ...runPolicy(spec, field, params) } };
}

/** The group, retry, timeout, priority and resources of a `handler` or `task` step. */
function runPolicy(spec: WorkflowStepSpec, field: string, params: JsonObject): StepRunPolicy {
  const group = spec.group ?? DEFAULT_GROUP;
  if (!NAME_PATTERN.test(group)) throw invalid(`${field}.group`, 'a group name');
  const priority = spec.priority ?? 0;
  if (!Number.isInteger(priority) || Math.abs(priority) > PRIORITY_LIMIT) {
    throw invalid(`${field}.priority`, `a whole number from -${PRIORITY_LIMIT} to ${PRIORITY_LIMIT}`);
  }
  return {
    group,
    params,
    retry: compileRetry(spec.retry),
    timeoutMs:
      spec.timeout === undefined
        ? DEFAULT_TIMEOUT_MS
        : parseDuration(spec.timeout, `${field}.timeout`, { min: 1000 }),
    priority,
    resources: compileResources(spec.resources, `${field}.resources`),
  };
}

/** The spec that compiles back into `definition` (what the API answers). */
export function workflowSpecOf(definition: WorkflowDefinition): WorkflowSpec {
  return {
    name: definition.name,
    description: definition.description,
    trigger: describeTrigger(definition.trigger),
    schedule: scheduleSpecOf(definition.schedule),
    steps: definition.steps.map((step) => ({
      id: step.id,
      after: step.after.map((edge) => ({ step: edge.from, on: edge.on as WireEdgeCondition })),
      join: step.join,
      ...(step.map
        ? {
            map: {
              from: step.map.from,
              ...(step.map.path === null ? {} : { path: step.map.path }),
              maxParallel: step.map.maxParallel,
              maxItems: step.map.maxItems,
              tolerateFailures: step.map.tolerateFailures,
            },
          }
        : {}),
      ...(step.run.kind === 'job'
        ? { job: step.run.job, params: step.run.params }
        : {
            ...(step.run.kind === 'task'
              ? { task: taskSpecOf(step.run.task) }
              : { handler: step.run.handler }),
            group: step.run.group,
            params: step.run.params,
            retry: step.run.retry,
            timeout: step.run.timeoutMs,
            priority: step.run.priority,
            ...(step.run.resources ? { resources: resourceSpecOf(step.run.resources) } : {}),
          }),
    })),
  };
}

function invalid(field: string, expected: string): KairosError {
  return new KairosError('VALIDATION_FAILED', `${field}: expected ${expected}`, { field });
}
