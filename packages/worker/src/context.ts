import type {
  Assignment,
  AttemptRef,
  JsonObject,
  TaskReturn,
  TaskSpec,
  TraceContext,
  WorkerLogEntry,
} from '@kairos/client';
import { type LogFields, type WorkerLogger, withFields } from './logger.ts';

/**
 * Logs of one attempt: they go to the worker's logger with the run id and attempt attached, and
 * to the node as the run's log (`kairos runs logs ID --follow`).
 */
export interface RunLogger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** What a handler gets for one attempt of a run. */
export interface RunContext<Params extends JsonObject = JsonObject> {
  readonly runId: number;
  /** This attempt's number, 1 for the first. */
  readonly attempt: number;
  /** The most attempts the run may get (the first included). */
  readonly maxAttempts: number;
  readonly jobName: string;
  /** The handler name this attempt was routed by. */
  readonly handler: string;
  /** The run's parameters (the job's, or those given when triggering it). */
  readonly params: Params;
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
  /** The built-in task of the job (shell command, HTTP call), for the built-in handlers; null otherwise. */
  readonly task: TaskSpec | null;
  /** A shard of a broadcast job: this run's index from 0 and the number of shards; null otherwise. */
  readonly shard: { index: number; total: number } | null;
  /**
   * The W3C trace context of this attempt's span (docs/tracing.md), to pass on to what the handler
   * calls outside this process; null when the attempt is not traced. Inside the process the span is
   * active while the handler runs: spans of the application's tracer nest under it.
   */
  readonly trace: TraceContext | null;
  /**
   * Reports how far the attempt got, from 0 to 1, with an optional note: shown with the run's log.
   * Only the latest value travels; calling it often is cheap.
   */
  progress(value: number, message?: string): void;
}

/** Where an attempt's log lines and progress go besides the worker's logger (the node). */
export interface RunSink {
  log(entry: WorkerLogEntry): void;
  progress(progress: AttemptRef & { value: number; message?: string }): void;
}

/**
 * Runs one attempt. Its return value (JSON) becomes the run's result; a throw fails the attempt
 * (retried per the job's policy, see {@link NonRetryableError} and {@link RetryAfterError}).
 */
export type Handler<Params extends JsonObject = JsonObject> = (
  ctx: RunContext<Params>,
) => Promise<TaskReturn> | TaskReturn;

/**
 * An AbortController made when its signal is first read: most handlers never read it, and making
 * one per attempt is a good part of a worker's cost on a busy queue. Aborted before it is made, the
 * signal is made aborted, with the first reason.
 */
export class LazyAbort {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/**
 * The context of an attempt that starts at `startedAt`. Its signal, logger and dates are made on
 * first use (see {@link LazyAbort}).
 */
export function createRunContext(
  assignment: Assignment,
  abort: { readonly signal: AbortSignal },
  startedAt: number,
  logger: WorkerLogger,
  sink?: RunSink,
  trace: TraceContext | null = null,
): RunContext {
  return new AttemptContext(assignment, abort, startedAt, logger, sink, trace);
}

/**
 * A class rather than an object literal: a frozen literal with getters and closures took ~1.5 µs
 * per attempt (V8 defines each accessor at run time), a good part of starting a burst of 1,000
 * held runs; this takes ~0.1 µs. The getters live on the prototype: `{ ...ctx }` copies the plain
 * fields and `progress` only.
 */
class AttemptContext implements RunContext {
  readonly runId: number;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly jobName: string;
  readonly handler: string;
  readonly params: JsonObject;
  readonly task: TaskSpec | null;
  readonly shard: { index: number; total: number } | null;
  readonly trace: TraceContext | null;
  readonly progress: (value: number, message?: string) => void;
  readonly #assignment: Assignment;
  readonly #abort: { readonly signal: AbortSignal };
  readonly #startedAt: number;
  readonly #logger: WorkerLogger;
  readonly #sink: RunSink | undefined;
  #fireTime: Date | null | undefined;
  #deadline: Date | undefined;
  #log: RunLogger | undefined;

  constructor(
    assignment: Assignment,
    abort: { readonly signal: AbortSignal },
    startedAt: number,
    logger: WorkerLogger,
    sink: RunSink | undefined,
    trace: TraceContext | null,
  ) {
    this.runId = assignment.runId;
    this.attempt = assignment.attempt;
    this.maxAttempts = assignment.maxAttempts;
    this.jobName = assignment.jobName;
    this.handler = assignment.handler;
    this.params = assignment.params;
    this.task = assignment.task ?? null;
    this.shard = assignment.shard ?? null;
    this.trace = trace;
    // Own and bound: a handler may pass `ctx.progress` around on its own.
    this.progress = (value, message) => reportProgress(this.#sink, this.runId, this.attempt, value, message);
    this.#assignment = assignment;
    this.#abort = abort;
    this.#startedAt = startedAt;
    this.#logger = logger;
    this.#sink = sink;
    // Private fields stay writable: the dates and the logger are still made on first use.
    Object.freeze(this);
  }

  get fireTime(): Date | null {
    if (this.#fireTime === undefined) {
      const { fireTime } = this.#assignment;
      this.#fireTime = fireTime === null ? null : new Date(parseFireTime(fireTime));
    }
    return this.#fireTime;
  }

  get deadline(): Date {
    this.#deadline ??= new Date(this.#startedAt + this.#assignment.timeout);
    return this.#deadline;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get log(): RunLogger {
    this.#log ??= runLogger(this.#logger, this.#sink, this.runId, this.attempt, this.jobName);
    return this.#log;
  }
}

/** The same attempt with its params replaced (as a task's schema output them). */
export function withParams<Params extends JsonObject>(ctx: RunContext, params: Params): RunContext<Params> {
  return Object.freeze({
    runId: ctx.runId,
    attempt: ctx.attempt,
    maxAttempts: ctx.maxAttempts,
    jobName: ctx.jobName,
    handler: ctx.handler,
    params,
    task: ctx.task,
    shard: ctx.shard,
    trace: ctx.trace,
    progress: ctx.progress,
    get fireTime() {
      return ctx.fireTime;
    },
    get deadline() {
      return ctx.deadline;
    },
    get signal() {
      return ctx.signal;
    },
    get log() {
      return ctx.log;
    },
  });
}

/** The fire time parsed last: the runs of a burst share their instant, and a parse costs ~0.5 µs. */
let lastFireTime = { text: '', ms: Number.NaN };

function parseFireTime(text: string): number {
  if (text !== lastFireTime.text) lastFireTime = { text, ms: Date.parse(text) };
  return lastFireTime.ms;
}

function runLogger(
  logger: WorkerLogger,
  sink: RunSink | undefined,
  runId: number,
  attempt: number,
  job: string,
): RunLogger {
  const local = withFields(logger, { runId, attempt, job });
  const line =
    (level: 'info' | 'warn' | 'error') =>
    (message: string, fields?: LogFields): void => {
      local[level](message, fields);
      const entry: WorkerLogEntry = {
        runId,
        attempt,
        level,
        message: String(message),
        time: new Date().toISOString(),
      };
      const json = fields === undefined ? undefined : toJsonObject(fields);
      if (json) entry.fields = json;
      sink?.log(entry);
    };
  return { info: line('info'), warn: line('warn'), error: line('error') };
}

function reportProgress(
  sink: RunSink | undefined,
  runId: number,
  attempt: number,
  value: number,
  message: string | undefined,
): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new TypeError('ctx.progress(value): value must be a number from 0 to 1');
  }
  const clamped = Math.min(1, Math.max(0, value));
  const note = message === undefined ? undefined : String(message).slice(0, 1000);
  sink?.progress(
    note === undefined
      ? { runId, attempt, value: clamped }
      : { runId, attempt, value: clamped, message: note },
  );
}

/** Fields as JSON (Errors keep name and message); undefined when they do not serialize. */
function toJsonObject(fields: LogFields): JsonObject | undefined {
  try {
    const text = JSON.stringify(fields, (_key, value: unknown) => {
      if (value instanceof Error) return { name: value.name, message: value.message };
      if (typeof value === 'bigint') return value.toString();
      return value;
    });
    const parsed: unknown = text === undefined ? undefined : JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as JsonObject)
      : undefined;
  } catch {
    return undefined;
  }
}
