import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { Json, JsonObject, Run } from './wire.ts';

export type { StandardSchemaV1 };

declare const taskTypes: unique symbol;

/** What a task's handler returns: JSON, or nothing (`async () => {}`). */
// biome-ignore lint/suspicious/noConfusingVoidType: a handler may return nothing, and Promise<void> is its type.
export type TaskReturn = Json | void;

/**
 * A task that producers and workers share (import it from one module on both sides): the job that
 * producers trigger, the handler that workers register for it, and the types of its params and
 * result, so that `client.trigger(task, params)` and `worker.handle(task, fn)` are checked at
 * compile time. With `params`, a schema of any Standard Schema library (zod, valibot, ArkType…)
 * also checks them at run time: before the producer sends them, and on the worker before the
 * handler runs (a run whose params do not pass fails without a retry).
 */
export interface Task<Params extends JsonObject = JsonObject, Result extends TaskReturn = TaskReturn> {
  readonly job: string;
  readonly handler: string;
  readonly params: StandardSchemaV1<unknown, Params> | undefined;
  /** Carries the types only; never set. */
  readonly [taskTypes]?: { params: Params; result: Result };
}

export interface TaskOptions<Params extends JsonObject> {
  /** The handler name workers register (default: the job name). */
  handler?: string;
  /** Checks params at run time on both sides. */
  params?: StandardSchemaV1<unknown, Params>;
}

/**
 * Defines a task: `defineTask<{ to: string }, { sent: number }>('send-report')`, or with a schema
 * whose output type gives the params: `defineTask<z.infer<typeof S>, Result>('send-report', { params: S })`.
 */
export function defineTask<Params extends JsonObject = JsonObject, Result extends TaskReturn = void>(
  job: string,
  options: TaskOptions<Params> = {},
): Task<Params, Result> {
  if (typeof job !== 'string' || job === '') throw new TypeError('defineTask: a job name is required');
  return Object.freeze({ job, handler: options.handler ?? job, params: options.params });
}

export type TaskParams<T> = T extends Task<infer Params, infer _Result> ? Params : never;
export type TaskResult<T> = T extends Task<infer _Params, infer Result> ? Result : never;

/** A run of a task: its result has the task's result type (null until it succeeded). */
export type TaskRun<Result extends TaskReturn> = Omit<Run, 'result'> & {
  result: (Result extends void ? null : Result) | null;
};

/** Params that a task's schema refused, with the schema library's issues. */
export class TaskParamsError extends Error {
  override readonly name = 'TaskParamsError';
  constructor(
    readonly job: string,
    readonly issues: ReadonlyArray<StandardSchemaV1.Issue>,
  ) {
    super(
      `params of ${job} refused by its schema: ${issues
        .map((issue) => {
          const path = issue.path?.map((p) => (typeof p === 'object' ? String(p.key) : String(p))).join('.');
          return path ? `${path}: ${issue.message}` : issue.message;
        })
        .join('; ')}`,
    );
  }
}

/** The params as the task's schema outputs them; throws {@link TaskParamsError}. Without a schema, as given. */
export async function checkTaskParams<Params extends JsonObject>(
  task: Task<Params, TaskReturn>,
  value: unknown,
): Promise<Params> {
  if (task.params === undefined) return value as Params;
  const result = await task.params['~standard'].validate(value);
  if (result.issues !== undefined) throw new TaskParamsError(task.job, result.issues);
  return result.value;
}
