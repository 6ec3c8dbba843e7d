import type {
  Duration,
  HttpTaskSpec,
  JobSpec,
  JsonObject,
  MisfirePolicyKind,
  OverlapPolicy,
  RoutingStrategyName,
  ScheduleSpec,
  TaskSpec,
  TriggerKind,
  TriggerSpec,
} from '@kairos/client';

/**
 * The job form's fields: every setting of a job, as typed (strings), so that validation can explain
 * every keystroke. `fieldsOf` reads a spec into them and `specOf` writes them back: a job opened
 * and saved with no change is sent as it was (the round trip the browser test checks).
 */
export interface Fields {
  name: string;
  description: string;
  group: string;
  runs: 'handler' | 'shell' | 'http';
  handler: string;
  kind: TriggerKind;
  cron: string;
  timezone: string;
  dst: 'once-per-day' | 'literal';
  every: string;
  startAt: string;
  delay: string;
  at: string;
  parent: string;
  on: 'success' | 'failure' | 'always';
  params: string;
  /** Dotted paths of the secret params fields, comma-separated. */
  secretParams: string;
  priority: string;
  paused: boolean;
  /** Retention: empty takes the node's default. */
  keepFinished: string;
  keepFailed: string;
  keepLast: string;
  // retries and time limit
  maxAttempts: string;
  backoff: 'exponential' | 'fixed';
  retryDelay: string;
  maxDelay: string;
  retryJitter: boolean;
  nonRetryable: string;
  timeout: string;
  // schedule policy
  misfire: MisfirePolicyKind;
  maxCatchUp: string;
  catchUpWindow: string;
  overlap: OverlapPolicy;
  windowStart: string;
  windowEnd: string;
  jitter: string;
  maxRuns: string;
  calendars: string[];
  // routing and limits
  strategy: RoutingStrategyName;
  routingKey: string;
  selector: string;
  maxConcurrency: string;
  rate: string;
  scheduleToStart: string;
  /** What each run needs free on its worker: `cpu=2, memory=4Gi, gpu=1`; empty: nothing but a slot. */
  resources: string;
  // shell task
  command: string;
  args: string;
  env: string;
  cwd: string;
  // http task
  method: NonNullable<HttpTaskSpec['method']>;
  url: string;
  headers: string;
  body: string;
  httpTimeout: string;
  expectStatus: string;
}

export const EMPTY: Fields = {
  name: '',
  description: '',
  group: 'default',
  runs: 'handler',
  handler: '',
  kind: 'cron',
  cron: '*/10 * * * * *',
  timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC',
  dst: 'once-per-day',
  every: '30s',
  startAt: '',
  delay: '1m',
  at: '',
  parent: '',
  on: 'success',
  params: '{}',
  secretParams: '',
  priority: '0',
  paused: false,
  keepFinished: '',
  keepFailed: '',
  keepLast: '',
  maxAttempts: '3',
  backoff: 'exponential',
  retryDelay: '1s',
  maxDelay: '5m',
  retryJitter: true,
  nonRetryable: '',
  timeout: '5m',
  misfire: 'skip',
  maxCatchUp: '10',
  catchUpWindow: '1d',
  overlap: 'allow',
  windowStart: '',
  windowEnd: '',
  jitter: '0s',
  maxRuns: '',
  calendars: [],
  strategy: 'any',
  routingKey: '',
  selector: '',
  maxConcurrency: '',
  rate: '',
  scheduleToStart: '',
  resources: '',
  command: '',
  args: '[]',
  env: '',
  cwd: '',
  method: 'GET',
  url: '',
  headers: '',
  body: '',
  httpTimeout: '30s',
  expectStatus: '',
};

const UNITS: Array<[string, number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/** A duration for people: `300000` → `5m`, `90000` → `90s`, `1500` → `1500ms`; text stays as typed. */
export function durationText(value: Duration | null | undefined): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (value === 0) return '0s';
  for (const [unit, ms] of UNITS) if (value % ms === 0) return `${value / ms}${unit}`;
  return `${value}ms`;
}

/**
 * `key=value` pairs → `{ key: 'value' }`: labels are separated by commas or lines and trimmed;
 * environment variables and headers one per line, values as written (a value may hold commas).
 */
function pairs(text: string, separator: '=' | ':', list: 'labels' | 'lines'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of text.split(list === 'labels' ? /[\n,]/ : /\n/)) {
    const at = item.indexOf(separator);
    if (at <= 0) continue;
    const value = item.slice(at + 1);
    out[item.slice(0, at).trim()] = list === 'labels' || separator === ':' ? value.trim() : value;
  }
  return out;
}

export function fieldsOf(spec: JobSpec, name: string): Fields {
  const t = spec.trigger;
  const retry = spec.retry ?? {};
  const schedule = spec.schedule ?? {};
  const misfire = schedule.misfire ?? { policy: 'skip' };
  const task = spec.task;
  return {
    ...EMPTY,
    name,
    description: spec.description ?? '',
    group: spec.group ?? 'default',
    runs: task ? task.kind : 'handler',
    handler: task ? '' : (spec.handler ?? ''),
    kind: t.kind,
    cron: t.kind === 'cron' ? t.cron : EMPTY.cron,
    timezone: t.kind === 'cron' ? (t.timezone ?? 'UTC') : EMPTY.timezone,
    dst: t.kind === 'cron' ? (t.dst ?? 'once-per-day') : 'once-per-day',
    every: t.kind === 'every' ? durationText(t.every) : EMPTY.every,
    startAt: t.kind === 'every' ? (t.startAt ?? '') : '',
    delay: t.kind === 'delay' ? durationText(t.delay) : EMPTY.delay,
    at: t.kind === 'at' ? t.at : '',
    parent: t.kind === 'after' ? t.job : '',
    on: t.kind === 'after' ? (t.on ?? 'success') : 'success',
    params: JSON.stringify(spec.params ?? {}, null, 2),
    secretParams: (spec.secretParams ?? []).join(', '),
    priority: String(spec.priority ?? 0),
    paused: spec.paused ?? false,
    keepFinished: durationText(spec.retention?.finished),
    keepFailed: durationText(spec.retention?.failed),
    keepLast: spec.retention?.keepLast == null ? '' : String(spec.retention.keepLast),
    maxAttempts: String(retry.maxAttempts ?? 3),
    backoff: retry.backoff ?? 'exponential',
    retryDelay: durationText(retry.delay ?? 1000),
    maxDelay: durationText(retry.maxDelay ?? 300_000),
    retryJitter: retry.jitter ?? true,
    nonRetryable: (retry.nonRetryable ?? []).join(', '),
    timeout: durationText(spec.timeout ?? 300_000),
    misfire: misfire.policy,
    maxCatchUp: String(misfire.maxCatchUp ?? 10),
    catchUpWindow: durationText(misfire.catchUpWindow ?? 86_400_000),
    overlap: schedule.overlap ?? 'allow',
    windowStart: schedule.startAt ?? '',
    windowEnd: schedule.endAt ?? '',
    jitter: durationText(schedule.jitter ?? 0),
    maxRuns: schedule.maxRuns === undefined ? '' : String(schedule.maxRuns),
    calendars: [...(schedule.calendars ?? [])],
    strategy: spec.routing?.strategy ?? 'any',
    routingKey: spec.routing?.key ?? '',
    selector: Object.entries(spec.routing?.selector ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(', '),
    maxConcurrency: spec.maxConcurrency === undefined ? '' : String(spec.maxConcurrency),
    rate: spec.rateLimit ? `${spec.rateLimit.limit}/${durationText(spec.rateLimit.per)}` : '',
    scheduleToStart: durationText(spec.scheduleToStartTimeout),
    resources: resourcesFieldText(spec.resources),
    command: task?.kind === 'shell' ? task.command : '',
    args: task?.kind === 'shell' ? JSON.stringify(task.args ?? []) : '[]',
    env:
      task?.kind === 'shell'
        ? Object.entries(task.env ?? {})
            .map(([k, v]) => `${k}=${v}`)
            .join('\n')
        : '',
    cwd: task?.kind === 'shell' ? (task.cwd ?? '') : '',
    method: task?.kind === 'http' ? (task.method ?? 'GET') : 'GET',
    url: task?.kind === 'http' ? task.url : '',
    headers:
      task?.kind === 'http'
        ? Object.entries(task.headers ?? {})
            .map(([k, v]) => `${k}: ${v}`)
            .join('\n')
        : '',
    body: task?.kind === 'http' ? (task.body ?? '') : '',
    httpTimeout: task?.kind === 'http' ? durationText(task.timeout ?? 30_000) : '30s',
    expectStatus: task?.kind === 'http' ? (task.expectStatus ?? []).join(', ') : '',
  };
}

/** A request as the field shows it: `cpu=2, memory=4Gi, gpu=1` (memory in the largest exact binary unit). */
export function resourcesFieldText(resources: JobSpec['resources']): string {
  return Object.entries(resources ?? {})
    .map(([name, value]) => {
      if (name !== 'memory' || typeof value !== 'number') return `${name}=${value}`;
      const unit = (
        [
          ['Ti', 2 ** 40],
          ['Gi', 2 ** 30],
          ['Mi', 2 ** 20],
          ['Ki', 2 ** 10],
        ] as const
      ).find(([, size]) => value >= size && value % size === 0);
      return `memory=${unit ? `${value / unit[1]}${unit[0]}` : value}`;
    })
    .join(', ');
}

/** The field's `name=value` pairs as a request: `cpu` and custom resources as numbers, memory as typed. */
function resourcesOf(text: string): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const [name, value] of Object.entries(pairs(text, '=', 'labels')))
    out[name] = name === 'memory' && !/^\d+$/.test(value) ? value : Number(value);
  return out;
}

/** A duration as typed: digits alone are milliseconds. */
function duration(text: string): Duration {
  return /^\d+$/.test(text.trim()) ? Number(text.trim()) : text.trim();
}

export function triggerOf(f: Fields): TriggerSpec {
  switch (f.kind) {
    case 'cron':
      return {
        kind: 'cron',
        cron: f.cron,
        timezone: f.timezone || 'UTC',
        ...(f.dst === 'literal' ? { dst: 'literal' as const } : {}),
      };
    case 'every':
      return f.startAt
        ? { kind: 'every', every: duration(f.every), startAt: f.startAt }
        : { kind: 'every', every: duration(f.every) };
    case 'delay':
      return { kind: 'delay', delay: duration(f.delay) };
    case 'at':
      return { kind: 'at', at: f.at };
    case 'manual':
      return { kind: 'manual' };
    case 'after':
      return { kind: 'after', job: f.parent, on: f.on };
  }
}

export function scheduleOf(f: Fields): ScheduleSpec {
  return {
    misfire:
      f.misfire === 'catch-up'
        ? { policy: 'catch-up', maxCatchUp: Number(f.maxCatchUp), catchUpWindow: duration(f.catchUpWindow) }
        : { policy: f.misfire },
    overlap: f.overlap,
    jitter: duration(f.jitter || '0s'),
    ...(f.windowStart ? { startAt: f.windowStart } : {}),
    ...(f.windowEnd ? { endAt: f.windowEnd } : {}),
    ...(f.maxRuns ? { maxRuns: Number(f.maxRuns) } : {}),
    ...(f.calendars.length ? { calendars: f.calendars } : {}),
  };
}

function taskOf(f: Fields): TaskSpec | undefined {
  if (f.runs === 'shell')
    return {
      kind: 'shell',
      command: f.command,
      args: JSON.parse(f.args) as string[],
      env: pairs(f.env, '=', 'lines'),
      ...(f.cwd ? { cwd: f.cwd } : {}),
    };
  if (f.runs === 'http')
    return {
      kind: 'http',
      method: f.method,
      url: f.url,
      headers: pairs(f.headers, ':', 'lines'),
      ...(f.body ? { body: f.body } : {}),
      timeout: duration(f.httpTimeout),
      expectStatus: f.expectStatus
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .map(Number),
    };
  return undefined;
}

/**
 * The spec the form describes, over `base` (the job as loaded): a setting this form does not know
 * yet is sent back as it was.
 */
export function specOf(f: Fields, base: Partial<JobSpec> = {}): JobSpec {
  const { handler: _handler, task: _task, ...kept } = base;
  const rate = /^(\d+)\s*\/\s*(\S+)$/.exec(f.rate.trim());
  const task = taskOf(f);
  const spec: JobSpec = {
    ...kept,
    name: f.name,
    description: f.description,
    group: f.group,
    // Secret values come as "***": sent back as they are, they keep what is stored.
    params: JSON.parse(f.params) as JsonObject,
    secretParams: pathsOf(f.secretParams),
    trigger: triggerOf(f),
    retry: {
      maxAttempts: Number(f.maxAttempts),
      backoff: f.backoff,
      delay: duration(f.retryDelay),
      maxDelay: duration(f.maxDelay),
      jitter: f.retryJitter,
      nonRetryable: f.nonRetryable
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    },
    timeout: duration(f.timeout),
    priority: Number(f.priority),
    paused: f.paused,
    // An empty field (null) takes the node's default, also when editing.
    retention: {
      finished: f.keepFinished ? duration(f.keepFinished) : null,
      failed: f.keepFailed ? duration(f.keepFailed) : null,
      keepLast: f.keepLast ? Number(f.keepLast) : null,
    },
    schedule: scheduleOf(f),
    routing: {
      strategy: f.strategy,
      selector: pairs(f.selector, '=', 'labels'),
      ...(f.strategy === 'consistent-hash' && f.routingKey ? { key: f.routingKey } : {}),
    },
    ...(task ? { task } : { handler: f.handler }),
  };
  delete spec.maxConcurrency;
  delete spec.rateLimit;
  delete spec.scheduleToStartTimeout;
  delete spec.resources;
  if (f.maxConcurrency) spec.maxConcurrency = Number(f.maxConcurrency);
  if (rate) spec.rateLimit = { limit: Number(rate[1]), per: duration(rate[2]!) };
  if (f.scheduleToStart) spec.scheduleToStartTimeout = duration(f.scheduleToStart);
  if (f.resources.trim()) spec.resources = resourcesOf(f.resources);
  return spec;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const HANDLER = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;
const DURATION = /^\d+(\.\d+)?(ms|s|m|h|d)?$/;
const WHOLE = /^\d+$/;

/** Checks that need no server; the trigger and schedule are checked by the node's preview as you type. */
export function localErrors(f: Fields): Partial<Record<keyof Fields, string>> {
  const errors: Partial<Record<keyof Fields, string>> = {};
  const need = (key: keyof Fields, ok: boolean, message: string) => {
    if (!ok) errors[key] = message;
  };
  const isDuration = (text: string) => DURATION.test(text.trim());
  need('name', NAME.test(f.name), 'letters, digits and . _ : - (up to 128), starting with a letter or digit');
  if (f.runs === 'handler') need('handler', HANDLER.test(f.handler), 'the handler name a worker registered');
  need('group', NAME.test(f.group), 'a group name like "default"');
  try {
    const value = JSON.parse(f.params) as unknown;
    need('params', typeof value === 'object' && value !== null && !Array.isArray(value), 'a JSON object');
  } catch (e) {
    errors.params = `not JSON: ${(e as Error).message}`;
  }
  need(
    'secretParams',
    pathsOf(f.secretParams).every((path) => SECRET_PATH.test(path)),
    'dotted paths into params, comma-separated: apiKey, db.password',
  );
  const attempts = Number(f.maxAttempts);
  need(
    'maxAttempts',
    Number.isInteger(attempts) && attempts >= 1 && attempts <= 100,
    'a whole number from 1 to 100',
  );
  need('timeout', isDuration(f.timeout), 'a duration: 30s, 5m, 2h or milliseconds');
  need('retryDelay', isDuration(f.retryDelay), 'a duration');
  need('maxDelay', isDuration(f.maxDelay), 'a duration');
  need('priority', /^-?\d+$/.test(f.priority), 'a whole number');
  for (const key of ['keepFinished', 'keepFailed'] as const)
    need(key, f[key] === '' || isDuration(f[key]), "a duration such as 30d, or empty for the node's default");
  need(
    'keepLast',
    f.keepLast === '' || /^[1-9]\d*$/.test(f.keepLast),
    'a whole number from 1, or empty for no limit',
  );
  need('jitter', f.jitter === '' || isDuration(f.jitter), 'a duration');
  if (f.misfire === 'catch-up') {
    need('maxCatchUp', WHOLE.test(f.maxCatchUp), 'a whole number');
    need('catchUpWindow', isDuration(f.catchUpWindow), 'a duration');
  }
  need('maxRuns', f.maxRuns === '' || WHOLE.test(f.maxRuns), 'a whole number, or empty for no cap');
  need('maxConcurrency', f.maxConcurrency === '' || WHOLE.test(f.maxConcurrency), 'a whole number, or empty');
  need(
    'rate',
    f.rate === '' || /^\d+\s*\/\s*\S+$/.test(f.rate.trim()),
    'runs per time, like 10/1m, or empty',
  );
  need('scheduleToStart', f.scheduleToStart === '' || isDuration(f.scheduleToStart), 'a duration, or empty');
  need(
    'resources',
    f.resources.trim() === '' ||
      f.resources
        .split(/[\n,]/)
        .filter((p) => p.trim() !== '')
        .every((p) => RESOURCE.test(p.trim())),
    'name=amount, separated by commas: cpu=1.5 (cores), memory=512Mi (or bytes), gpu=1',
  );
  need(
    'selector',
    f.selector.trim() === '' ||
      f.selector.split(/[\n,]/).every((p) => p.trim() === '' || /^[^=]+=.*$/.test(p)),
    'labels as key=value, separated by commas',
  );
  if (f.runs === 'shell') {
    need('command', f.command.trim() !== '', 'a program name or path');
    let args: unknown;
    try {
      args = JSON.parse(f.args);
    } catch {
      args = null;
    }
    need(
      'args',
      Array.isArray(args) && args.every((a) => typeof a === 'string'),
      'a JSON list of strings, like ["--all"]',
    );
  }
  if (f.runs === 'http') {
    need('url', /^https?:\/\/\S+$/.test(f.url), 'an http:// or https:// URL');
    need('httpTimeout', isDuration(f.httpTimeout), 'a duration');
    need(
      'expectStatus',
      /^(\s*\d{3}\s*(,\s*\d{3}\s*)*)?$/.test(f.expectStatus),
      'status codes, like 200, 204',
    );
  }
  return errors;
}

/** One resource of a request: cpu in cores, memory in bytes or with a unit, a custom one in whole units. */
const RESOURCE =
  /^(cpu\s*=\s*\d+(\.\d+)?|memory\s*=\s*\d+(\.\d+)?\s*(K|M|G|T|Ki|Mi|Gi|Ti)?|(?!(cpu|memory)\s*=)[a-z][a-z0-9_-]{0,31}\s*=\s*\d+)$/;

/** A secret params path: keys of letters, digits, `_` and `-`, joined by dots. */
const SECRET_PATH = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

function pathsOf(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
