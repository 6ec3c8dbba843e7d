import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Json, ShellTaskSpec } from '@kairos/client';
import { trackChild } from './children.ts';
import type { Handler, RunContext } from './context.ts';
import { NonRetryableError } from './errors.ts';

/** How a worker runs `shell` tasks (`WorkerOptions.tasks.shell`). */
export interface ShellConfig {
  /** Commands this worker runs, exactly as jobs name them; null runs any. */
  allow: readonly string[] | null;
  /** After a cancel or timeout: SIGTERM to the process group, then SIGKILL after this many ms. */
  killGraceMs: number;
}

/**
 * The worker's environment for a command, without the `KAIROS_*` variables: a command a job names
 * has no business with the worker's token.
 */
function inheritedEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('KAIROS_')));
}

/** Lines of stderr kept for the error message of a failed command. */
const STDERR_TAIL = 20;

/** The handler of `kairos:shell`: runs the job's command and streams its output as the run's log. */
export function shellHandler(config: ShellConfig): Handler {
  return async (ctx) => {
    const task = ctx.task;
    if (task?.kind !== 'shell') throw new NonRetryableError('the run has no shell task');
    if (config.allow && !config.allow.includes(task.command)) {
      throw new NonRetryableError(`this worker does not run the command ${JSON.stringify(task.command)}`);
    }
    return runCommand(task, ctx, config.killGraceMs);
  };
}

/**
 * Runs a command in a process group of its own (detached), so that a cancel, a timeout, or the
 * command's end can kill everything it started (`kill(-pid)`), grandchildren included: the run
 * owns the group, and nothing it started outlives it.
 */
export function runCommand(task: ShellTaskSpec, ctx: RunContext, killGraceMs: number): Promise<Json> {
  return new Promise((resolve, reject) => {
    if (ctx.signal.aborted) return reject(ctx.signal.reason);
    const child = spawn(task.command, task.args ?? [], {
      cwd: task.cwd,
      env: { ...inheritedEnv(), ...traceEnv(ctx), ...task.env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tail: string[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => ctx.log.info(line, { stream: 'stdout' }));
    createInterface({ input: child.stderr }).on('line', (line) => {
      ctx.log.warn(line, { stream: 'stderr' });
      tail.push(line);
      if (tail.length > STDERR_TAIL) tail.shift();
    });
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // ESRCH: the group is gone already.
      }
    };
    const onAbort = () => {
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), killGraceMs);
      killTimer.unref();
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const untrack = trackChild(() => killGroup('SIGKILL'));
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    // The command ended: whatever it left running in its group goes too (it also holds our pipes).
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      killGroup('SIGKILL');
    });
    child.once('error', (error) => {
      untrack();
      ctx.signal.removeEventListener('abort', onAbort);
      clearTimeout(killTimer);
      const code = (error as NodeJS.ErrnoException).code;
      reject(
        code === 'ENOENT' || code === 'EACCES'
          ? new NonRetryableError(`cannot run ${JSON.stringify(task.command)}: ${error.message}`)
          : error,
      );
    });
    child.once('close', () => {
      untrack();
      ctx.signal.removeEventListener('abort', onAbort);
      clearTimeout(killTimer);
      if (ctx.signal.aborted) return reject(ctx.signal.reason);
      if (exit?.code === 0) return resolve({ exitCode: 0 });
      const how = exit?.signal ? `killed by ${exit.signal}` : `exit code ${exit?.code}`;
      const error = new Error(
        `${task.command} failed (${how})${tail.length > 0 ? `:\n${tail.join('\n')}` : ''}`,
      );
      error.name = 'CommandFailed';
      reject(error);
    });
  });
}

/** The attempt span's W3C context as `TRACEPARENT`/`TRACESTATE`, the variables tracing tools read. */
function traceEnv(ctx: RunContext): Record<string, string> {
  if (!ctx.trace) return {};
  return {
    TRACEPARENT: ctx.trace.traceparent,
    ...(ctx.trace.tracestate ? { TRACESTATE: ctx.trace.tracestate } : {}),
  };
}
