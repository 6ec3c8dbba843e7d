import type { EdgeCondition, TaskSpec, WorkflowMapSpec, WorkflowSpec, WorkflowStepSpec } from './wire.ts';

/** Where a map step takes its list from: the instance context (`$context`). */
export const WORKFLOW_CONTEXT_SOURCE = '$context';

/** An incoming edge of a step: a parent's id (runs after its success), or `{ step, on }`. */
export type WorkflowEdge<Ids extends string> = Ids | { step: Ids; on?: EdgeCondition };

/**
 * A map step's list (docs/workflows.md#map-and-reduce): `from` a step declared before (which must
 * also be one of its parents in `after`), or `'$context'`, the instance context.
 */
export interface WorkflowMapOptions<Ids extends string> extends Omit<WorkflowMapSpec, 'from'> {
  from: Ids | typeof WORKFLOW_CONTEXT_SOURCE;
}

interface StepBase<Ids extends string> extends Pick<WorkflowStepSpec, 'params' | 'join'> {
  /** Parents declared by earlier `.step(…)` calls; none: the step runs when the instance starts. */
  after?: readonly WorkflowEdge<Ids>[];
  /** Runs the step once per item of a list (a map step). */
  map?: WorkflowMapOptions<Ids>;
}

/** A step that runs a handler, with its own group, retry, timeout, priority and resources. */
interface HandlerStep<Ids extends string>
  extends StepBase<Ids>,
    Pick<WorkflowStepSpec, 'group' | 'retry' | 'timeout' | 'priority' | 'resources'> {
  handler: string;
  job?: never;
  task?: never;
}

/**
 * A step that runs a built-in task, a shell command or an HTTP call (as a job's `task`), on a
 * worker of its group that enabled the kind, with its own retry, timeout, priority and resources.
 * Not a map step: the command or request would be the same for every item.
 */
interface TaskStep<Ids extends string>
  extends StepBase<Ids>,
    Pick<WorkflowStepSpec, 'group' | 'retry' | 'timeout' | 'priority' | 'resources'> {
  task: TaskSpec;
  handler?: never;
  job?: never;
  map?: never;
}

/** A step that runs an existing job of the namespace, with that job's group, retry and timeout. */
interface JobStep<Ids extends string> extends StepBase<Ids> {
  job: string;
  handler?: never;
  task?: never;
  group?: never;
  retry?: never;
  timeout?: never;
  priority?: never;
  resources?: never;
}

/**
 * What `.step(id, options)` takes: one of `handler`, `task` and `job`, `after` naming earlier
 * steps.
 */
export type WorkflowStepOptions<Ids extends string = string> =
  | HandlerStep<Ids>
  | TaskStep<Ids>
  | JobStep<Ids>;

/** The workflow's own settings: when its instances start by themselves, and how its fires overlap. */
export interface WorkflowBuilderOptions extends Pick<WorkflowSpec, 'trigger' | 'schedule'> {
  description?: string;
}

/** What a `job` step refuses: the job has its own. */
const JOB_STEP_REFUSES = ['group', 'retry', 'timeout', 'priority', 'resources'] as const;

/**
 * Builds a {@link WorkflowSpec} step by step. Its type parameter holds the ids declared so far, so
 * that `after` takes only those: a typo, or a parent declared later, is a type error. An id
 * declared twice is one too. Each call answers a new builder; none is changed.
 */
export interface WorkflowBuilder<Ids extends string = never> {
  step<const Id extends string>(
    id: Id & (Id extends Ids ? { 'step id declared twice': Id } : unknown),
    options: WorkflowStepOptions<Ids>,
  ): WorkflowBuilder<Ids | Id>;
  /** The spec, for `KairosClient.putWorkflow` or a `workflows:` list of `kairos apply`. */
  build(): WorkflowSpec;
}

/**
 * Starts a typed workflow definition (docs/workflows.md#typescript-builder).
 *
 * @example
 * const etl = workflow('nightly-etl')
 *   .step('extract', { handler: 'extract', retry: { maxAttempts: 3 } })
 *   .step('load', { job: 'warehouse-load', after: ['extract'] })
 *   .step('notify', { task: { kind: 'http', method: 'POST', url: 'https://hooks.example.com/etl' }, after: ['load'] })
 *   .step('page', { handler: 'page-on-call', after: [{ step: 'load', on: 'failure' }] })
 *   .build();
 * // A trigger and a schedule policy, a map step over a parent's result:
 * const fan = workflow('fan-out', { trigger: { kind: 'cron', cron: '0 3 * * *' }, schedule: { overlap: 'skip' } })
 *   .step('list', { handler: 'list-files' })
 *   .step('each', { handler: 'process-file', after: ['list'], map: { from: 'list', maxParallel: 5 } })
 *   .build();
 * await kairos.putWorkflow(etl);
 */
export function workflow(name: string, options: WorkflowBuilderOptions = {}): WorkflowBuilder {
  return builder(name, options, []);
}

function builder(
  name: string,
  options: WorkflowBuilderOptions,
  steps: readonly WorkflowStepSpec[],
): WorkflowBuilder<string> {
  return {
    // The types catch a repeated id or an unknown parent; these checks catch code that is not typed.
    step(id: string, step: WorkflowStepOptions) {
      if (steps.some((s) => s.id === id)) throw new Error(`workflow ${name}: step ${id} is declared twice`);
      const runs = (['handler', 'task', 'job'] as const).filter((key) => step[key] !== undefined);
      if (runs.length !== 1)
        throw new Error(
          `workflow ${name}: step ${id} takes one of handler, task and job, not ${runs.join(' and ') || 'none'}`,
        );
      if (step.task !== undefined && step.map !== undefined)
        throw new Error(
          `workflow ${name}: step ${id} runs a task, which is no map step (the same command for every item)`,
        );
      const fields = step as unknown as Record<string, unknown>;
      if (step.job !== undefined)
        for (const key of JOB_STEP_REFUSES)
          if (fields[key] !== undefined)
            throw new Error(
              `workflow ${name}: step ${id} runs job ${String(step.job)}, which has its own ${key}: leave ${key} out`,
            );
      for (const edge of step.after ?? []) {
        const parent = typeof edge === 'string' ? edge : edge.step;
        if (!steps.some((s) => s.id === parent))
          throw new Error(
            `workflow ${name}: step ${id} runs after ${parent}, which is not declared before it`,
          );
      }
      const map = step.map;
      if (
        map &&
        map.from !== WORKFLOW_CONTEXT_SOURCE &&
        !(step.after ?? []).some((edge) => (typeof edge === 'string' ? edge : edge.step) === map.from)
      )
        throw new Error(
          `workflow ${name}: map step ${id} takes its list from ${map.from}, which is neither one of its parents (after) nor ${WORKFLOW_CONTEXT_SOURCE}`,
        );
      const { after, ...rest } = step;
      const copy: WorkflowStepSpec = { id, ...rest };
      if (after) copy.after = after.map((edge) => (typeof edge === 'string' ? edge : { ...edge }));
      if (map) copy.map = { ...map };
      if ('resources' in step && step.resources) copy.resources = { ...step.resources };
      return builder(name, options, [...steps, copy]);
    },
    build() {
      return {
        name,
        ...(options.description === undefined ? {} : { description: options.description }),
        ...(options.trigger === undefined ? {} : { trigger: structuredClone(options.trigger) }),
        ...(options.schedule === undefined ? {} : { schedule: structuredClone(options.schedule) }),
        steps: steps.map((step) => structuredClone(step)),
      };
    },
  };
}
