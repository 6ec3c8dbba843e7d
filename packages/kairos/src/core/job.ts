import { isDeepStrictEqual } from 'node:util';
import {
  HANDLER_PATTERN,
  type Job,
  type JobPatch,
  type JobSpec,
  type JsonObject,
  jobToSpec,
  NAME_PATTERN,
  type RetryPolicy,
} from '@kairos/client';
import { KairosError } from '../errors.ts';
import { compileDispatch, type DispatchPolicy, dispatchSpecOf } from './dispatch-policy.ts';
import { parseDuration } from './duration.ts';
import { resourceSpecOf } from './resources.ts';
import { compileRetention, describeRetention, type JobRetention, retentionSpecOf } from './retention.ts';
import { compileRetry } from './retry.ts';
import { compileSchedule, describeSchedule, type SchedulePolicy, scheduleSpecOf } from './schedule-policy.ts';
import { compileSecretPaths, maskSecrets } from './secret-params.ts';
import { compileTask, handlerOf, type TaskDefinition, taskSpecOf } from './task.ts';
import { compileTrigger, describeTrigger, type Trigger } from './trigger.ts';

/** A validated job definition: what the store keeps, minus its bookkeeping. */
export interface JobDefinition {
  name: string;
  description: string;
  group: string;
  handler: string;
  /** As stored: the value at each secret path an envelope (`secret-params.ts`). */
  params: JsonObject;
  /** Dotted paths of the params fields that are secret. */
  secretParams: string[];
  trigger: Trigger;
  retry: RetryPolicy;
  timeoutMs: number;
  priority: number;
  paused: boolean;
  /** Misfire, overlap, window, jitter, run cap (core/schedule-policy.ts). */
  schedule: SchedulePolicy;
  /** Routing, concurrency limit, schedule-to-start timeout (`dispatch-policy.ts`). */
  dispatch: DispatchPolicy;
  /** A built-in task (shell, http) whose `handler` is `kairos:<kind>`; null for a user's handler. */
  task: TaskDefinition | null;
  /** How long its finished runs are kept (`retention.ts`); null fields take the node's default. */
  retention: JobRetention;
  /** Who manages the job: the owner `kairos apply` records; null for a job made by hand. */
  owner: string | null;
  /** The revision of the owner's definition that wrote it (a lower one is refused); null without one. */
  revision: number | null;
}

/** A job as the store keeps it. */
export interface JobRecord extends JobDefinition {
  id: number;
  /** The namespace the job belongs to (docs/tenancy.md); its runs belong to it too. */
  namespace: string;
  /** Runs the schedule created so far (what `maxRuns` counts). */
  runsFired: number;
  /** Bumped by every change of the definition or the pause state, never by firing. */
  version: number;
  /** Kept while paused: resuming records the fires from here to then as skipped (`paused`). */
  nextFireAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export { HANDLER_PATTERN, NAME_PATTERN };
export const PARAMS_LIMIT_BYTES = 64 * 1024;
export const PRIORITY_LIMIT = 1000;
export const DEFAULT_TIMEOUT_MS = 5 * 60_000;
export const DEFAULT_GROUP = 'default';

/** Validates a job spec from outside and fills in every default. */
export function compileJob(spec: JobSpec): JobDefinition {
  checkName(spec.name, 'name', NAME_PATTERN);
  const group = spec.group ?? DEFAULT_GROUP;
  checkName(group, 'group', NAME_PATTERN);
  const task = compileTask(spec.task);
  const handler = handlerOf(spec.handler, task);
  checkName(handler, 'handler', HANDLER_PATTERN);
  const dispatch = compileDispatch(spec);
  const secretParams = compileSecretPaths(spec.secretParams, 'secretParams');
  checkRoutingKeyNotSecret(dispatch, secretParams);
  const priority = spec.priority ?? 0;
  if (!Number.isInteger(priority) || Math.abs(priority) > PRIORITY_LIMIT) {
    throw invalid('priority', `a whole number from -${PRIORITY_LIMIT} to ${PRIORITY_LIMIT}`);
  }
  return {
    name: spec.name,
    description: spec.description ?? '',
    group,
    handler,
    params: checkParams(spec.params ?? {}, 'params'),
    secretParams,
    trigger: compileTrigger(spec.trigger),
    retry: compileRetry(spec.retry),
    timeoutMs:
      spec.timeout === undefined ? DEFAULT_TIMEOUT_MS : parseDuration(spec.timeout, 'timeout', { min: 1000 }),
    priority,
    paused: spec.paused ?? false,
    schedule: compileSchedule(spec.schedule),
    dispatch,
    task,
    retention: compileRetention(spec.retention),
    owner: compileOwner(spec.owner),
    revision: spec.revision ?? null,
  };
}

/** The spec that compiles back into `job`: `compileJob(specOf(job))` equals `job`. */
export function specOf(job: JobDefinition): JobSpec {
  return {
    name: job.name,
    description: job.description,
    group: job.group,
    handler: job.handler,
    params: job.params,
    ...(job.secretParams.length === 0 ? {} : { secretParams: job.secretParams }),
    trigger: describeTrigger(job.trigger),
    retry: job.retry,
    timeout: job.timeoutMs,
    priority: job.priority,
    paused: job.paused,
    schedule: scheduleSpecOf(job.schedule),
    ...dispatchSpecOf(job.dispatch),
    ...(job.task ? { handler: undefined, task: taskSpecOf(job.task) } : {}),
    ...(job.owner === null ? {} : { owner: job.owner }),
    ...(job.revision === null ? {} : { revision: job.revision }),
    ...(retentionSpecOf(job.retention) ? { retention: retentionSpecOf(job.retention) } : {}),
  };
}

/**
 * The spec of a job as the API returns it, with every field at its default left out, so that a
 * file shows what its author chose: what `kairos export` writes and `kairos apply` compares.
 */
export function specFromJob(job: Job): JobSpec {
  return minimalSpec(jobToSpec(job));
}

/**
 * The spec with every field that equals its default left out: the same job, the fewest words.
 * `compileJob(minimalSpec(s))` equals `compileJob(s)`.
 */
export function minimalSpec(spec: JobSpec): JobSpec {
  const canonical = specOf(compileJob(spec));
  const bare = specOf(
    compileJob({
      name: spec.name,
      trigger: spec.trigger,
      ...(canonical.task ? { task: canonical.task } : { handler: canonical.handler }),
    }),
  );
  const out: Record<string, unknown> = { name: canonical.name };
  for (const [key, value] of Object.entries(canonical)) {
    if (value === undefined || key === 'name') continue;
    const always = key === 'trigger' || key === 'handler' || key === 'task';
    if (always || JSON.stringify(value) !== JSON.stringify(bare[key as keyof JobSpec])) out[key] = value;
  }
  if (out.schedule) {
    const schedule = { ...(out.schedule as Record<string, unknown>) };
    const bareSchedule = (bare.schedule ?? {}) as Record<string, unknown>;
    for (const key of Object.keys(schedule))
      if (JSON.stringify(schedule[key]) === JSON.stringify(bareSchedule[key])) delete schedule[key];
    out.schedule = schedule;
  }
  return out as unknown as JobSpec;
}

/** Applies a partial update; the result is validated as a whole. */
export function patchJob(job: JobDefinition, patch: JobPatch): JobDefinition {
  const base = specOf(job);
  return compileJob({
    ...base,
    ...patch,
    retry: patch.retry ? { ...job.retry, ...patch.retry } : base.retry,
    schedule: patch.schedule ? { ...base.schedule, ...patch.schedule } : base.schedule,
    retention: patch.retention ? { ...base.retention, ...patch.retention } : base.retention,
    // A new task brings its built-in handler.
    handler: patch.handler ?? (patch.task ? undefined : base.handler),
    name: job.name,
  });
}

export function describeJob(job: JobRecord): Job {
  return {
    id: job.id,
    name: job.name,
    description: job.description,
    group: job.group,
    handler: job.handler,
    // Secret values never leave the node in an answer: each is "***".
    params: maskSecrets(job.params),
    secretParams: job.secretParams,
    trigger: describeTrigger(job.trigger),
    retry: job.retry,
    timeout: job.timeoutMs,
    priority: job.priority,
    paused: job.paused,
    routing: job.dispatch.routing,
    maxConcurrency: job.dispatch.maxConcurrency,
    rateLimit: job.dispatch.rateLimit && {
      limit: job.dispatch.rateLimit.limit,
      per: job.dispatch.rateLimit.perMs,
    },
    scheduleToStartTimeout: job.dispatch.scheduleToStartMs,
    resources: job.dispatch.resources && resourceSpecOf(job.dispatch.resources),
    task: job.task ? taskSpecOf(job.task) : null,
    retention: describeRetention(job.retention),
    owner: job.owner,
    revision: job.revision,
    schedule: describeSchedule(job.schedule),
    runsFired: job.runsFired,
    version: job.version,
    // A paused job keeps its next fire internally (for the ledger on resume) but has none to show.
    nextFireAt: job.nextFireAt === null || job.paused ? null : new Date(job.nextFireAt).toISOString(),
    createdAt: new Date(job.createdAt).toISOString(),
    updatedAt: new Date(job.updatedAt).toISOString(),
  };
}

/**
 * Whether two definitions are the same job: an edit that changes nothing writes nothing (no new
 * version, so a no-op edit or a repeated pause does not make others' `If-Match` fail). Stored JSON
 * may come back with its keys in another order (PostgreSQL's jsonb), so values are compared.
 */
export function sameDefinition(a: JobDefinition, b: JobDefinition): boolean {
  return (Object.keys(DEFINITION_KEYS) as Array<keyof JobDefinition>).every((key) =>
    isDeepStrictEqual(a[key], b[key]),
  );
}

/** Every field of a definition: a field added to JobDefinition must be added here (the type says so). */
const DEFINITION_KEYS: Record<keyof JobDefinition, true> = {
  name: true,
  description: true,
  group: true,
  handler: true,
  params: true,
  secretParams: true,
  trigger: true,
  retry: true,
  timeoutMs: true,
  priority: true,
  paused: true,
  schedule: true,
  dispatch: true,
  task: true,
  retention: true,
  owner: true,
  revision: true,
};

/** Whether two definitions fire at the same times (an update that keeps them keeps the next fire). */
export function sameSchedule(a: JobDefinition, b: JobDefinition): boolean {
  return (
    JSON.stringify(a.trigger) === JSON.stringify(b.trigger) &&
    a.paused === b.paused &&
    a.schedule.startAt === b.schedule.startAt &&
    a.schedule.endAt === b.schedule.endAt
  );
}

/**
 * A routing key read from a secret field would hash its ciphertext, which is new for every value
 * written: runs of one key would not keep to one worker. INVALID_ROUTING.
 */
export function checkRoutingKeyNotSecret(dispatch: DispatchPolicy, secretParams: readonly string[]): void {
  const key = dispatch.routing.key;
  // The key's whole value is hashed: a secret field inside it is a new ciphertext at every write too.
  if (key !== null && secretParams.some((path) => path === key || path.startsWith(`${key}.`))) {
    throw new KairosError(
      'INVALID_ROUTING',
      `routing.key: ${JSON.stringify(key)} is or holds a secret field`,
      {
        field: 'routing.key',
      },
    );
  }
}

function compileOwner(owner: string | null | undefined): string | null {
  if (owner === undefined || owner === null) return null;
  checkName(owner, 'owner', NAME_PATTERN);
  return owner;
}

export function checkParams(params: JsonObject, field: string): JsonObject {
  if (typeof params !== 'object' || params === null || Array.isArray(params))
    throw invalid(field, 'a JSON object');
  const size = Buffer.byteLength(JSON.stringify(params));
  if (size > PARAMS_LIMIT_BYTES) {
    throw new KairosError(
      'PAYLOAD_TOO_LARGE',
      `${field}: ${size} bytes, over the limit of ${PARAMS_LIMIT_BYTES}`,
      {
        field,
        limit: PARAMS_LIMIT_BYTES,
      },
    );
  }
  return params;
}

function checkName(value: string, field: string, pattern: RegExp): void {
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw invalid(
      field,
      `letters, digits and ${pattern === HANDLER_PATTERN ? '._:/-' : '._:-'}, starting with a letter or digit`,
    );
  }
}

function invalid(field: string, expected: string): KairosError {
  return new KairosError('VALIDATION_FAILED', `${field}: expected ${expected}`, { field });
}
