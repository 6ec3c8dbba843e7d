import type { HttpTaskSpec, ShellTaskSpec, TaskSpec } from '@kairos/client';
import { KairosError } from '../errors.ts';
import { parseDuration } from './duration.ts';

/**
 * Built-in task kinds: a job may name a shell command or an HTTP call instead of a handler. The
 * definition travels with each attempt to a worker that enabled the kind; workers never receive
 * code, and each worker decides which kinds (and which commands and URLs) it accepts.
 */
export const TASK_KINDS = ['shell', 'http'] as const;
export type TaskKind = (typeof TASK_KINDS)[number];

/** The handler name of a built-in kind: the worker registers it when it enables the kind. */
export function taskHandler(kind: TaskKind): string {
  return `kairos:${kind}`;
}

/** Handler names starting with this are built-in kinds, never a user's handler. */
export const BUILT_IN_PREFIX = 'kairos:';

export type ShellTask = Required<Pick<ShellTaskSpec, 'kind' | 'command' | 'args' | 'env'>> & {
  cwd: string | null;
};

export interface HttpTask {
  kind: 'http';
  method: NonNullable<HttpTaskSpec['method']>;
  url: string;
  headers: Record<string, string>;
  body: string | null;
  timeoutMs: number;
  /** Empty: any 2xx. */
  expectStatus: number[];
}

export type TaskDefinition = ShellTask | HttpTask;

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
/** A header value is one line of visible characters, spaces and tabs (RFC 9110 field-value). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const HEADER_VALUE_FORBIDDEN = /[\u0000-\u0008\u000a-\u001f\u007f]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const URL_FORBIDDEN = /[\u0000-\u0020\u007f]/;
const BODY_LIMIT = 64 * 1024;

/**
 * Validates a job's task (or a workflow step's: `field` is where it sits, `steps[2].task`); throws
 * INVALID_TASK naming the field.
 */
export function compileTask(spec: TaskSpec | undefined, field = 'task'): TaskDefinition | null {
  if (spec === undefined) return null;
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new KairosError('INVALID_TASK', `${field}: expected an object with a kind`, { field });
  }
  const invalid = (name: string, expected: string) => invalidAt(`${field}${name}`, expected);
  if (spec.kind === 'shell') return compileShell(spec, invalid);
  if (spec.kind === 'http') return compileHttp(spec, field, invalid);
  throw invalid('.kind', `one of ${TASK_KINDS.join(', ')}`);
}

/** An INVALID_TASK error for a field of the task, named from the task's own place (`.command`). */
type Invalid = (name: string, expected: string) => KairosError;

function compileShell(spec: ShellTaskSpec, invalid: Invalid): ShellTask {
  onlyFields(spec as unknown as Record<string, unknown>, ['kind', 'command', 'args', 'env', 'cwd'], invalid);
  if (typeof spec.command !== 'string' || spec.command.trim() === '' || spec.command.length > 1024) {
    throw invalid('.command', 'a command (a program name or path), at most 1024 characters');
  }
  const args = spec.args ?? [];
  if (
    !Array.isArray(args) ||
    args.length > 256 ||
    args.some((a) => typeof a !== 'string' || a.length > 8192)
  ) {
    throw invalid('.args', 'at most 256 strings');
  }
  const env = spec.env ?? {};
  for (const [name, value] of Object.entries(env)) {
    if (!ENV_NAME.test(name) || typeof value !== 'string' || value.length > 8192) {
      throw invalid(`.env.${name}`, 'a variable name and a string value');
    }
  }
  if (spec.cwd !== undefined && (typeof spec.cwd !== 'string' || spec.cwd === '' || spec.cwd.length > 1024)) {
    throw invalid('.cwd', 'a directory path');
  }
  return { kind: 'shell', command: spec.command, args: [...args], env: { ...env }, cwd: spec.cwd ?? null };
}

function compileHttp(spec: HttpTaskSpec, field: string, invalid: Invalid): HttpTask {
  onlyFields(
    spec as unknown as Record<string, unknown>,
    ['kind', 'method', 'url', 'headers', 'body', 'timeout', 'expectStatus'],
    invalid,
  );
  const method = spec.method ?? 'GET';
  if (!(METHODS as readonly string[]).includes(method)) throw invalid('.method', METHODS.join(', '));
  // The URL parser drops tabs and line breaks silently and encodes spaces: refuse them instead.
  if (typeof spec.url !== 'string' || URL_FORBIDDEN.test(spec.url)) {
    throw invalid('.url', 'an absolute http: or https: URL without spaces or control characters');
  }
  let url: URL;
  try {
    url = new URL(spec.url);
  } catch {
    throw invalid('.url', 'an absolute http: or https: URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid('.url', 'an absolute http: or https: URL');
  }
  const headers = spec.headers ?? {};
  for (const [name, value] of Object.entries(headers)) {
    if (
      !HEADER_NAME.test(name) ||
      typeof value !== 'string' ||
      HEADER_VALUE_FORBIDDEN.test(value) ||
      value.length > 8192
    ) {
      throw invalid(`.headers.${name}`, 'a header name and a one-line value');
    }
  }
  if (
    spec.body !== undefined &&
    (typeof spec.body !== 'string' || Buffer.byteLength(spec.body) > BODY_LIMIT)
  ) {
    throw invalid('.body', `a string of at most ${BODY_LIMIT} bytes`);
  }
  if (spec.body !== undefined && (method === 'GET' || method === 'HEAD')) {
    throw invalid('.body', `no body with ${method}`);
  }
  const expectStatus = spec.expectStatus ?? [];
  if (
    !Array.isArray(expectStatus) ||
    expectStatus.length > 50 ||
    expectStatus.some((s) => !Number.isInteger(s) || s < 100 || s > 599)
  ) {
    throw invalid('.expectStatus', 'HTTP status codes from 100 to 599');
  }
  return {
    kind: 'http',
    method,
    url: url.toString(),
    headers: { ...headers },
    body: spec.body ?? null,
    timeoutMs:
      spec.timeout === undefined
        ? 30_000
        : parseDuration(spec.timeout, `${field}.timeout`, { min: 100, max: 86_400_000 }),
    expectStatus: [...expectStatus],
  };
}

/** The spec that compiles back into `task`. */
export function taskSpecOf(task: TaskDefinition): TaskSpec {
  if (task.kind === 'shell') {
    const spec: ShellTaskSpec = { kind: 'shell', command: task.command, args: task.args, env: task.env };
    if (task.cwd !== null) spec.cwd = task.cwd;
    return spec;
  }
  const spec: HttpTaskSpec = {
    kind: 'http',
    method: task.method,
    url: task.url,
    headers: task.headers,
    timeout: task.timeoutMs,
    expectStatus: task.expectStatus,
  };
  if (task.body !== null) spec.body = task.body;
  return spec;
}

/**
 * The handler a job runs: its task's built-in handler, or the handler named. A job cannot name a
 * built-in handler without its task, nor a task with another handler.
 */
export function handlerOf(handler: string | undefined, task: TaskDefinition | null): string {
  if (task) {
    const builtIn = taskHandler(task.kind);
    if (handler !== undefined && handler !== builtIn) {
      throw invalidAt('handler', `${builtIn} (or no handler) for a ${task.kind} task`);
    }
    return builtIn;
  }
  if (handler === undefined) {
    throw new KairosError('VALIDATION_FAILED', 'handler: required (or a task)', { field: 'handler' });
  }
  if (handler.startsWith(BUILT_IN_PREFIX)) {
    throw invalidAt(
      'handler',
      `a name that does not start with ${BUILT_IN_PREFIX} (built-in kinds need a task)`,
    );
  }
  return handler;
}

function onlyFields(spec: Record<string, unknown>, allowed: readonly string[], invalid: Invalid): void {
  for (const key of Object.keys(spec)) {
    if (!allowed.includes(key)) throw invalid(`.${key}`, `no ${key} in a ${String(spec.kind)} task`);
  }
}

function invalidAt(field: string, expected: string): KairosError {
  return new KairosError('INVALID_TASK', `${field}: expected ${expected}`, { field });
}
