import { fork } from 'node:child_process';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Assignment, Json, JsonObject, LogLevel } from '@kairos/client';
import { trackChild } from './children.ts';
import type { Handler, RunContext } from './context.ts';
import { NonRetryableError, RetryAfterError, TimeoutError } from './errors.ts';

/**
 * An isolated handler: its module runs in a child process per attempt, so that a handler that
 * ignores its signal can really be stopped (SIGKILL after `killGraceMs`), and a handler that
 * crashes its process fails only its attempt, never the worker.
 *
 * ```ts
 * worker.handle('render', { module: './handlers/render.ts', isolated: true, killGraceMs: 5000 });
 * ```
 */
export interface IsolatedHandler {
  isolated: true;
  /** The module's path (relative to the working directory) or URL. */
  module: string | URL;
  /** The export that is the handler. Default `'default'`. */
  export?: string;
  /** After a cancel or timeout, how long the handler may take to stop before its process is killed. Default 5000. */
  killGraceMs?: number;
}

export type ParentMessage =
  | { type: 'run'; module: string; exportName: string; assignment: Assignment; startedAt: number }
  | { type: 'abort'; name: string; message: string; timeoutMs?: number };

export type ChildMessage =
  | { type: 'log'; level: LogLevel; message: string; fields?: JsonObject | undefined }
  | { type: 'progress'; value: number; message?: string | undefined }
  | { type: 'result'; ok: true; value: Json }
  | {
      type: 'result';
      ok: false;
      error: { name: string; message: string; stack?: string | undefined; retryAfterMs?: number | undefined };
    };

/** This package runs from its sources in the workspace, from its build (`dist/*.js`) when installed. */
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const RUNNER = fileURLToPath(
  new URL(FROM_SOURCE ? './isolated-runner.ts' : './isolated-runner.js', import.meta.url),
);
/**
 * The worker's own flags (a loader such as `--import tsx` for TypeScript handler modules, memory
 * limits). From the sources (the workspace only, where tsx is a dev dependency) the runner needs
 * a TypeScript loader and the workspace's source condition too; the build is plain JavaScript.
 */
const EXEC_ARGV = [
  ...process.execArgv,
  ...(FROM_SOURCE && !process.execArgv.some((arg) => arg.includes('tsx')) ? ['--import', 'tsx'] : []),
  ...(FROM_SOURCE && !process.execArgv.some((arg) => arg.includes('@kairos/source'))
    ? ['--conditions=@kairos/source']
    : []),
];

/** Checks an isolated handler's options; the module is resolved now, against the working directory. */
export function compileIsolated(
  name: string,
  spec: IsolatedHandler,
): Required<Omit<IsolatedHandler, 'module'>> & {
  module: string;
} {
  const where = `Worker.handle('${name}')`;
  let module: string;
  if (spec.module instanceof URL) module = spec.module.href;
  else if (typeof spec.module === 'string' && spec.module !== '') {
    module = /^[a-z]+:/.test(spec.module)
      ? spec.module
      : pathToFileURL(isAbsolute(spec.module) ? spec.module : resolve(spec.module)).href;
  } else throw new TypeError(`${where}: module must be a path or a URL`);
  const exportName = spec.export ?? 'default';
  if (typeof exportName !== 'string' || exportName === '')
    throw new TypeError(`${where}: export must be a name`);
  const killGraceMs = spec.killGraceMs ?? 5000;
  if (!Number.isInteger(killGraceMs) || killGraceMs < 0 || killGraceMs > 2 ** 31 - 1) {
    throw new TypeError(`${where}: killGraceMs must be a whole number of milliseconds`);
  }
  return { isolated: true, module, export: exportName, killGraceMs };
}

/** A handler that runs `spec` in a child process per attempt. */
export function isolatedHandler(spec: ReturnType<typeof compileIsolated>): Handler {
  return (ctx) =>
    new Promise<Json>((resolvePromise, reject) => {
      const child = fork(RUNNER, [], {
        execArgv: EXEC_ARGV,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'json',
      });
      const untrack = trackChild(() => child.kill('SIGKILL'));
      let result: ChildMessage | undefined;
      let killTimer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        const reason = ctx.signal.reason as Error;
        child.send({
          type: 'abort',
          name: reason?.name ?? 'CancelledError',
          message: reason?.message ?? 'aborted',
          timeoutMs: reason instanceof TimeoutError ? reason.timeoutMs : undefined,
        } satisfies ParentMessage);
        killTimer = setTimeout(() => child.kill('SIGKILL'), spec.killGraceMs);
      };
      child.on('message', (message: ChildMessage) => {
        if (message.type === 'log')
          ctx.log[message.level === 'debug' ? 'info' : message.level](message.message, message.fields);
        else if (message.type === 'progress') ctx.progress(message.value, message.message);
        else result = message;
      });
      child.once('error', (error) => {
        untrack();
        ctx.signal.removeEventListener('abort', onAbort);
        clearTimeout(killTimer);
        reject(error);
      });
      child.once('exit', (code, signal) => {
        untrack();
        ctx.signal.removeEventListener('abort', onAbort);
        clearTimeout(killTimer);
        // An aborted attempt ends when its process is gone, not before: its slot is really free.
        if (ctx.signal.aborted) return reject(ctx.signal.reason);
        if (result?.type === 'result' && result.ok) return resolvePromise(result.value);
        if (result?.type === 'result' && !result.ok) return reject(toError(result.error));
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        const error = new Error(`the isolated process of this attempt ${how} before the handler settled`);
        error.name = 'IsolatedProcessCrashed';
        reject(error);
      });
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      const startedAt = Date.now();
      child.send({
        type: 'run',
        module: spec.module,
        exportName: spec.export,
        assignment: assignmentOf(ctx, startedAt),
        startedAt,
      } satisfies ParentMessage);
      if (ctx.signal.aborted) onAbort();
    });
}

/** The attempt as the child's context needs it: the same run, params, task and deadline. */
function assignmentOf(ctx: RunContext, now: number): Assignment {
  const assignment: Assignment = {
    runId: ctx.runId,
    attempt: ctx.attempt,
    jobName: ctx.jobName,
    handler: ctx.handler,
    params: ctx.params,
    fireTime: ctx.fireTime?.toISOString() ?? null,
    timeout: Math.max(0, ctx.deadline.getTime() - now),
    maxAttempts: ctx.maxAttempts,
  };
  if (ctx.task) assignment.task = ctx.task;
  if (ctx.shard) assignment.shard = ctx.shard;
  // The attempt span's context: the child's handler continues the trace (see isolated-runner.ts).
  if (ctx.trace) Object.assign(assignment, ctx.trace);
  return assignment;
}

/** The child's error as the worker classifies it (no retry, retry after, or a plain failure). */
function toError(error: {
  name: string;
  message: string;
  stack?: string | undefined;
  retryAfterMs?: number | undefined;
}): Error {
  let out: Error;
  if (error.name === 'NonRetryableError') out = new NonRetryableError(error.message);
  else if (error.name === 'RetryAfterError' && error.retryAfterMs !== undefined)
    out = new RetryAfterError(error.message, error.retryAfterMs);
  else {
    out = new Error(error.message);
    out.name = error.name;
  }
  if (error.stack) out.stack = error.stack;
  return out;
}
