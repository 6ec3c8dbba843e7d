import type { Assignment, Json, JsonObject } from '@kairos/client';
import { type LogFields, type WorkerLogger, withFields } from './logger.ts';

/** Logs of one attempt: they go to the worker's logger with the run id and attempt attached. */
export interface RunLogger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** What a handler gets for one attempt of a run. */
export interface RunContext {
  readonly runId: number;
  /** This attempt's number, 1 for the first. */
  readonly attempt: number;
  /** The most attempts the run may get (the first included). */
  readonly maxAttempts: number;
  readonly jobName: string;
  /** The handler name this attempt was routed by. */
  readonly handler: string;
  /** The run's parameters (the job's, or those given when triggering it). */
  readonly params: JsonObject;
  /** The nominal fire time of a scheduled run; null for a run triggered by hand. */
  readonly fireTime: Date | null;
  /** When this attempt's time limit ends (start + the job's timeout). */
  readonly deadline: Date;
  /**
   * Aborts when the attempt must stop: with a {@link TimeoutError} at its time limit, or with a
   * {@link CancelledError} when the run was cancelled, handed to another worker, or the worker
   * shuts down and the grace period is over. Pass it to `fetch` and friends, or check it between
   * steps; a handler that ignores it keeps its slot until it returns.
   */
  readonly signal: AbortSignal;
  readonly log: RunLogger;
}

/**
 * Runs one attempt. Its return value (JSON) becomes the run's result; a throw fails the attempt
 * (retried per the job's policy, see {@link NonRetryableError} and {@link RetryAfterError}).
 */
// biome-ignore lint/suspicious/noConfusingVoidType: a handler may return nothing (`async () => {}` is Promise<void>).
export type Handler = (ctx: RunContext) => Promise<Json | void> | Json | void;

/** The context of an attempt that starts at `startedAt`. */
export function createRunContext(
  assignment: Assignment,
  signal: AbortSignal,
  startedAt: number,
  logger: WorkerLogger,
): RunContext {
  const { runId, attempt, maxAttempts, jobName, handler, params, fireTime, timeout } = assignment;
  return Object.freeze({
    runId,
    attempt,
    maxAttempts,
    jobName,
    handler,
    params,
    fireTime: fireTime === null ? null : new Date(fireTime),
    deadline: new Date(startedAt + timeout),
    signal,
    log: withFields(logger, { runId, attempt, job: jobName }),
  });
}
