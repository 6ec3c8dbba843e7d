import type { EdgeCondition, TaskSpec, WorkflowSpec, WorkflowStepSpec } from './wire.ts';

/** An incoming edge of a step: a parent's id (runs after its success), or `{ step, on }`. */
export type WorkflowEdge<Ids extends string> = Ids | { step: Ids; on?: EdgeCondition };

interface StepBase<Ids extends string> extends Pick<WorkflowStepSpec, 'params' | 'join'> {
  /** Parents declared by earlier `.step(…)` calls; none: the step runs when the instance starts. */
  after?: readonly WorkflowEdge<Ids>[];
}

/** A step that runs a handler, with its own group, retry, timeout, priority and resources. */
interface HandlerStep<Ids extends string>
  extends StepBase<Ids>,
    Pick<WorkflowStepSpec, 'group' | 'retry' | 'timeout' | 'priority' | 'resources' | 'map'> {
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
interface JobStep<Ids extends string> extends StepBase<Ids>, Pick<WorkflowStepSpec, 'map'> {
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

export interface WorkflowBuilderOptions {
  description?: string;
}

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
      for (const edge of step.after ?? []) {
        const parent = typeof edge === 'string' ? edge : edge.step;
        if (!steps.some((s) => s.id === parent))
          throw new Error(
            `workflow ${name}: step ${id} runs after ${parent}, which is not declared before it`,
          );
      }
      const { after, ...rest } = step;
      const copy: WorkflowStepSpec = { id, ...rest };
      if (after) copy.after = after.map((edge) => (typeof edge === 'string' ? edge : { ...edge }));
      return builder(name, options, [...steps, copy]);
    },
    build() {
      return {
        name,
        ...(options.description === undefined ? {} : { description: options.description }),
        steps: steps.map((step) => ({ ...step, ...(step.after ? { after: [...step.after] } : {}) })),
      };
    },
  };
}
