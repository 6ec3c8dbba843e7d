import { availableParallelism, hostname, totalmem } from 'node:os';
import { NAME_PATTERN } from '@kairos/client';
import type { HttpConfig } from './http-task.ts';
import { createConsoleLogger, guarded, type WorkerLogger } from './logger.ts';
import type { ShellConfig } from './shell.ts';

/** Options of a {@link Worker}. Only `url` is required. */
export interface WorkerOptions {
  /**
   * Base URL of a Kairos node, e.g. `http://127.0.0.1:7070`, or several: the worker talks to one
   * at a time and moves to the next when it cannot connect or gets a 5xx.
   */
  url: string | string[];
  /** The worker token (`KAIROS_WORKER_TOKEN` of the node), sent as a bearer token. */
  token?: string | undefined;
  /**
   * The namespace it serves (docs/tenancy.md), sent as `Kairos-Namespace`. A worker token serves
   * its own namespace whatever this says; a global admin token serves the one named here. Its
   * declared jobs are written into it. Default: the node's `default`.
   */
  namespace?: string | undefined;
  /** The group of jobs this worker runs (of its namespace). Default `'default'`. */
  group?: string;
  /** How the worker shows in `kairos workers`. Default `<hostname>-<pid>`. */
  name?: string;
  /** How many attempts run at the same time (slots). Default 10. */
  concurrency?: number;
  /**
   * How many runs due soon the worker may hold besides its running ones: the node hands out runs
   * up to its fire-ahead window (500 ms by default) before their instant, and the worker starts
   * each at its instant, so a burst of fires starts on time. Held runs count as this worker's
   * (listed in heartbeats); `concurrency` still bounds the handlers running at once. `0` turns it
   * off. Default 5 × `concurrency` (at most 10 000).
   */
  prefetch?: number;
  /** Free-form labels shown with the worker. */
  labels?: Record<string, string>;
  /**
   * What this worker has for runs that request resources (docs/workers.md#resource-based-scheduling):
   * `cpu` in cores, `memory` in bytes or as `'16Gi'`, and countable resources of your own
   * (`{ gpu: 2, licence: 1 }`). `cpu` and `memory` default to what the host has
   * (`os.availableParallelism()`, `os.totalmem()`); `false` advertises nothing. Also
   * `KAIROS_WORKER_RESOURCES` (`cpu=4,memory=8Gi,gpu=1`), which these options override.
   */
  resources?: Record<string, number | string> | false;
  /** The version of your application, shown with the worker. */
  version?: string;
  /** Longest wait of one poll for work, in ms; the node may cap it lower. Default 30 000. */
  pollWaitMs?: number;
  /** On stop, how long running handlers may take to finish before they are aborted, in ms. Default 10 000. */
  shutdownGraceMs?: number;
  /** Stop gracefully on SIGTERM and SIGINT. Default true. */
  handleSignals?: boolean;
  /** Where logs go. Default: the Kairos log format (pino JSON lines, as the node writes them) on stderr, warn and error only (all levels with `KAIROS_WORKER_DEBUG=1`). */
  logger?: WorkerLogger;
  /**
   * Built-in task kinds this worker runs, none by default: jobs with a `shell` or `http` task.
   * - `shell: true` runs any command; `{ allow: ['/usr/local/bin/backup'] }` only those;
   *   `killGraceMs` (default 5000) is the wait between SIGTERM and SIGKILL on cancel or timeout.
   * - `http: { allow: ['https://api.example.com/'] }`: URL prefixes it may call.
   */
  tasks?: {
    shell?: boolean | { allow?: string[]; killGraceMs?: number };
    http?: { allow: string[] };
  };
  /**
   * How the jobs given to {@link Worker.declare} are written when the worker starts: `revision`, a
   * number that grows with each release of this code (the newest definition wins, an older worker
   * starting later changes nothing); `owner`, default `worker.<group>`; `token`, one that may write
   * jobs (operator or admin), default the worker's own (which may not: the start then fails).
   */
  jobs?: { revision: number; owner?: string; token?: string };
}

/** The options with every default filled in. */
export interface ResolvedOptions {
  urls: string[];
  token: string | undefined;
  namespace: string | undefined;
  group: string;
  name: string;
  host: string;
  concurrency: number;
  prefetch: number;
  labels: Record<string, string>;
  /** What it advertises (spec form); null: nothing. */
  resources: Record<string, number | string> | null;
  version: string | undefined;
  pollWaitMs: number;
  shutdownGraceMs: number;
  handleSignals: boolean;
  logger: WorkerLogger;
  shell: ShellConfig | null;
  http: HttpConfig | null;
  jobs: { revision: number; owner: string; token: string | undefined } | null;
}

/** Node's timers overflow past this (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** The most slots a node accepts for one worker. */
const MAX_CONCURRENCY = 10_000;
/** The most runs a node hands out ahead of their instant in one poll. */
export const MAX_PREFETCH = 10_000;

/** Checks the options and fills in the defaults; throws a TypeError that names the bad option. */
export function resolveOptions(options: WorkerOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) fail('options', 'an object', options);
  const host = hostname();
  const concurrency =
    optional(options.concurrency, 'concurrency', (v, what) => checkInteger(v, what, 1, MAX_CONCURRENCY)) ??
    10;
  return {
    urls: checkUrls(options.url),
    jobs: optional(options.jobs, 'jobs', (v, what) => checkJobs(v, what, options.group ?? 'default')) ?? null,
    token: optional(options.token, 'token', checkString),
    namespace: optional(options.namespace, 'namespace', checkString),
    group: optional(options.group, 'group', checkGroup) ?? 'default',
    name: optional(options.name, 'name', checkName) ?? `${host}-${process.pid}`,
    host,
    concurrency,
    prefetch:
      optional(options.prefetch, 'prefetch', (v, what) => checkInteger(v, what, 0, MAX_PREFETCH)) ??
      Math.min(5 * concurrency, MAX_PREFETCH),
    labels: optional(options.labels, 'labels', checkLabels) ?? {},
    resources: resolveResources(options.resources, process.env.KAIROS_WORKER_RESOURCES),
    version: optional(options.version, 'version', checkName),
    pollWaitMs:
      optional(options.pollWaitMs, 'pollWaitMs', (v, what) => checkInteger(v, what, 0, MAX_TIMER_MS)) ??
      30_000,
    shutdownGraceMs:
      optional(options.shutdownGraceMs, 'shutdownGraceMs', (v, what) =>
        checkInteger(v, what, 0, MAX_TIMER_MS),
      ) ?? 10_000,
    handleSignals: optional(options.handleSignals, 'handleSignals', checkBoolean) ?? true,
    logger: optional(options.logger, 'logger', checkLogger) ?? createConsoleLogger(),
    ...checkTasks(options.tasks),
  };
}

function checkTasks(tasks: WorkerOptions['tasks']): { shell: ShellConfig | null; http: HttpConfig | null } {
  if (tasks === undefined) return { shell: null, http: null };
  if (typeof tasks !== 'object' || tasks === null) fail('tasks', 'an object with shell and/or http', tasks);
  for (const key of Object.keys(tasks))
    if (key !== 'shell' && key !== 'http') fail(`tasks.${key}`, 'shell or http', key);
  let shell: ShellConfig | null = null;
  if (tasks.shell === true) shell = { allow: null, killGraceMs: 5000 };
  else if (typeof tasks.shell === 'object' && tasks.shell !== null) {
    const allow = tasks.shell.allow;
    if (
      allow !== undefined &&
      (!Array.isArray(allow) || allow.some((c) => typeof c !== 'string' || c === ''))
    ) {
      fail('tasks.shell.allow', 'an array of commands', allow);
    }
    shell = {
      allow: allow ? [...allow] : null,
      killGraceMs:
        optional(tasks.shell.killGraceMs, 'tasks.shell.killGraceMs', (v, what) =>
          checkInteger(v, what, 0, MAX_TIMER_MS),
        ) ?? 5000,
    };
  } else if (tasks.shell !== undefined && tasks.shell !== false) {
    fail('tasks.shell', 'true, false or { allow, killGraceMs }', tasks.shell);
  }
  let http: HttpConfig | null = null;
  if (tasks.http !== undefined) {
    const allow = (tasks.http as { allow?: unknown } | null)?.allow;
    if (!Array.isArray(allow) || allow.length === 0)
      fail('tasks.http.allow', 'a non-empty array of URL prefixes', allow);
    http = { allow: allow.map((prefix, i) => checkUrls(prefix, `tasks.http.allow[${i}]`)[0]!) };
  }
  return { shell, http };
}

function checkUrls(value: unknown, field = 'url'): string[] {
  const urls = Array.isArray(value) ? value : [value];
  if (urls.length === 0) fail(field, 'a URL or a non-empty array of URLs', value);
  return urls.map((url, i) => {
    const what = Array.isArray(value) ? `${field}[${i}]` : field;
    if (typeof url !== 'string' || url.trim() === '') fail(what, "a URL like 'http://127.0.0.1:7070'", url);
    let parsed: URL;
    try {
      parsed = new URL(url.trim());
    } catch {
      fail(what, "a URL like 'http://127.0.0.1:7070'", url);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      fail(what, 'an http: or https: URL', url);
    }
    return url.trim();
  });
}

function optional<T>(
  value: unknown,
  what: string,
  check: (value: unknown, what: string) => T,
): T | undefined {
  return value === undefined ? undefined : check(value, what);
}

function checkString(value: unknown, what: string): string {
  if (typeof value !== 'string') fail(what, 'a string', value);
  return value;
}

function checkName(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.trim() === '') fail(what, 'a non-empty string', value);
  return value;
}

function checkJobs(
  value: unknown,
  what: string,
  group: string,
): { revision: number; owner: string; token: string | undefined } {
  if (typeof value !== 'object' || value === null) fail(what, '{ revision, owner?, token? }', value);
  const { revision, owner, token } = value as { revision?: unknown; owner?: unknown; token?: unknown };
  if (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 0)
    fail(`${what}.revision`, 'a whole number from 0', revision);
  if (owner !== undefined && (typeof owner !== 'string' || !NAME_PATTERN.test(owner)))
    fail(`${what}.owner`, 'a name: letters, digits and ._:-', owner);
  if (token !== undefined && typeof token !== 'string') fail(`${what}.token`, 'a string', token);
  return {
    revision,
    owner: (owner as string | undefined) ?? `worker.${group}`,
    token: token as string | undefined,
  };
}

/** A group is named as jobs name it (the node refuses anything else at registration). */
function checkGroup(value: unknown, what: string): string {
  if (typeof value !== 'string' || !NAME_PATTERN.test(value)) {
    fail(what, 'letters, digits and ._:-, starting with a letter or digit', value);
  }
  return value;
}

function checkBoolean(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') fail(what, 'true or false', value);
  return value;
}

function checkInteger(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(what, `a whole number from ${min} to ${max}`, value);
  }
  return value;
}

function checkLabels(value: unknown, what: string): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(what, 'an object of strings', value);
  }
  for (const [key, label] of Object.entries(value)) {
    if (typeof label !== 'string') fail(`${what}.${key}`, 'a string', label);
  }
  return { ...(value as Record<string, string>) };
}

function checkLogger(value: unknown, what: string): WorkerLogger {
  const logger = value as Partial<Record<keyof WorkerLogger, unknown>> | null;
  if (typeof logger !== 'object' || logger === null) {
    fail(what, 'an object with debug, info, warn and error methods', value);
  }
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    if (typeof logger[level] !== 'function') fail(`${what}.${level}`, 'a function', logger[level]);
  }
  return guarded(value as WorkerLogger);
}

function fail(what: string, expected: string, got: unknown): never {
  const where = what === 'options' ? 'Worker options' : `Worker options.${what}`;
  throw new TypeError(`${where}: expected ${expected}, got ${show(got)}`);
}

function show(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return typeof value;
  }
}

/**
 * The resources a worker advertises: what the host has (cores, memory), then
 * `KAIROS_WORKER_RESOURCES` (`cpu=4,memory=8Gi,gpu=1`), then the `resources` option; `false`: none.
 * Names and amounts are checked by the node (INVALID_RESOURCES); here only their shape.
 */
export function resolveResources(
  option: WorkerOptions['resources'],
  env: string | undefined,
): Record<string, number | string> | null {
  if (option === false) return null;
  if (option !== undefined && (typeof option !== 'object' || option === null || Array.isArray(option)))
    fail('resources', 'an object of resource amounts, or false', option);
  const out: Record<string, number | string> = { cpu: availableParallelism(), memory: totalmem() };
  for (const part of (env ?? '').split(',')) {
    if (part.trim() === '') continue;
    const [name, value] = part.split('=').map((s) => s.trim());
    if (!name || !value) fail('KAIROS_WORKER_RESOURCES', 'name=amount pairs, comma separated', env);
    out[name] = /^\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  }
  for (const [name, value] of Object.entries(option ?? {})) {
    if (typeof value !== 'number' && typeof value !== 'string')
      fail(`resources.${name}`, 'a number or a size like 16Gi', value);
    out[name] = value;
  }
  return out;
}
