import { checkTaskParams, type JsonObject, type Task, type TaskReturn, type TaskSpec } from '@kairos/client';
import { createRunContext, type RunContext, withParams } from './context.ts';
import { CancelledError, TimeoutError } from './errors.ts';

/**
 * Test a handler without a node: `@kairos/worker/testing` gives it the same context a worker
 * gives an attempt (params, attempt numbers, fire time, deadline, signal, log, progress) and
 * records what it logged and reported.
 *
 * ```ts
 * const { result, logs } = await runHandler(sendReport, { params: { to: 'ops' } });
 * ```
 */
export interface TestRunOptions<Params extends JsonObject = JsonObject> {
  params?: Params;
  runId?: number;
  /** Default 1. */
  attempt?: number;
  /** Default 3. */
  maxAttempts?: number;
  /** Default `test-job`. */
  jobName?: string;
  /** Default: the job name. */
  handler?: string;
  /** The nominal fire time of a scheduled run; default null (a run triggered by hand). */
  fireTime?: Date | null;
  /** The attempt's time limit in ms (default 5 minutes): the signal aborts with a TimeoutError. */
  timeoutMs?: number;
  task?: TaskSpec | null;
  shard?: { index: number; total: number } | null;
}

export interface RecordedLog {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields?: JsonObject;
}

export interface TestContext<Params extends JsonObject = JsonObject> {
  ctx: RunContext<Params>;
  /** What the handler logged through `ctx.log`, in order. */
  logs: RecordedLog[];
  /** What it reported through `ctx.progress`, in order. */
  progress: Array<{ value: number; message?: string }>;
  /** Cancels the attempt as a cancel through the API would: the signal aborts with a CancelledError. */
  cancel(): void;
  /** Clears the time limit's timer (runHandler does it for you). */
  dispose(): void;
}

/** A context as a worker would give the attempt, recording logs and progress. */
export function createTestContext<Params extends JsonObject = JsonObject>(
  options: TestRunOptions<Params> = {},
): TestContext<Params> {
  const logs: RecordedLog[] = [];
  const progress: Array<{ value: number; message?: string }> = [];
  const abort = new AbortController();
  const timeoutMs = options.timeoutMs ?? 5 * 60_000;
  const jobName = options.jobName ?? 'test-job';
  const timer = setTimeout(
    () => abort.abort(new TimeoutError(`attempt exceeded its timeout of ${timeoutMs} ms`, timeoutMs)),
    timeoutMs,
  );
  timer.unref?.();
  const ctx = createRunContext(
    {
      runId: options.runId ?? 1,
      attempt: options.attempt ?? 1,
      maxAttempts: options.maxAttempts ?? 3,
      jobName,
      handler: options.handler ?? jobName,
      params: options.params ?? {},
      fireTime: options.fireTime ? options.fireTime.toISOString() : null,
      timeout: timeoutMs,
      ...(options.task ? { task: options.task } : {}),
      ...(options.shard ? { shard: options.shard } : {}),
    },
    abort,
    Date.now(),
    { debug() {}, info() {}, warn() {}, error() {} },
    {
      log: (entry) =>
        logs.push({
          level: entry.level,
          message: entry.message,
          ...(entry.fields === undefined ? {} : { fields: entry.fields }),
        }),
      progress: ({ value, message }) => progress.push(message === undefined ? { value } : { value, message }),
    },
  ) as RunContext<Params>;
  return {
    ctx,
    logs,
    progress,
    cancel: () => abort.abort(new CancelledError('the run was cancelled')),
    dispose: () => clearTimeout(timer),
  };
}

export interface TestRunResult<Result> {
  /** `succeeded` when the handler returned, `failed` when it threw. */
  status: 'succeeded' | 'failed';
  result?: Result;
  error?: unknown;
  logs: RecordedLog[];
  progress: Array<{ value: number; message?: string }>;
}

/**
 * Runs a handler (or a typed task's handler, its params checked by the task's schema first) once
 * with a test context, and answers what it returned or threw, with what it logged and reported.
 */
export async function runHandler<Params extends JsonObject, Result extends TaskReturn>(
  handler: (ctx: RunContext<Params>) => Promise<Result> | Result,
  options?: TestRunOptions<Params> & { task?: undefined },
): Promise<TestRunResult<Result>>;
export async function runHandler<Params extends JsonObject, Result extends TaskReturn>(
  task: Task<Params, Result>,
  handler: (ctx: RunContext<Params>) => Promise<Result> | Result,
  options?: Omit<TestRunOptions<Params>, 'jobName' | 'handler'>,
): Promise<TestRunResult<Result>>;
export async function runHandler(
  first: Task<JsonObject, TaskReturn> | ((ctx: RunContext) => unknown),
  second?: unknown,
  third?: TestRunOptions,
): Promise<TestRunResult<unknown>> {
  const task = typeof first === 'function' ? undefined : first;
  const handler = (typeof first === 'function' ? first : second) as (ctx: RunContext) => unknown;
  const options = (typeof first === 'function' ? second : third) as TestRunOptions | undefined;
  const test = createTestContext({
    ...options,
    ...(task ? { jobName: task.job, handler: task.handler } : {}),
  });
  try {
    const ctx = task ? withParams(test.ctx, await checkTaskParams(task, test.ctx.params)) : test.ctx;
    const result = await handler(ctx);
    return { status: 'succeeded', result, logs: test.logs, progress: test.progress };
  } catch (error) {
    return { status: 'failed', error, logs: test.logs, progress: test.progress };
  } finally {
    test.dispose();
  }
}
