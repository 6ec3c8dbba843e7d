import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type {
  Duration,
  JobPatch,
  JobSpec,
  JsonObject,
  RetrySpec,
  RunStatus,
  TriggerSpec,
} from '@kairos/client';
import { KairosClient } from '@kairos/client';
import { DEFAULTS } from '../config.ts';
import { type DispatchFlags, dispatchFromFlags } from './dispatch-flags.ts';
import { type RetentionFlags, retentionFromFlags } from './retention-flags.ts';

/** A bad flag value: `main` prints `error: message` and exits with code 2, before any request. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The options every command may use, declared once on the program. */
export interface GlobalFlags {
  url: string;
  token?: string;
  /** `--namespace` / `KAIROS_NAMESPACE`: sent as `Kairos-Namespace` on every request. */
  namespace?: string;
  dataDir?: string;
  json?: boolean;
}

/** Job flags as commander hands them over: raw strings, parsed by {@link jobSpecFromFlags}. */
export interface JobFlags extends DispatchFlags, RetentionFlags {
  handler?: string;
  /** `--secret-params apiKey,db.password`. */
  secretParams?: string;
  group?: string;
  cron?: string;
  tz?: string;
  every?: string;
  delay?: string;
  at?: string;
  manual?: boolean;
  params?: string;
  timeout?: string;
  retries?: string;
  backoff?: string;
  retryDelay?: string;
  priority?: string;
  paused?: boolean;
  description?: string;
}

export const DEFAULT_URL = 'http://127.0.0.1:7070';

export const RUN_STATUSES: readonly RunStatus[] = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'timed_out',
  'cancelled',
];

const TRIGGER_FLAGS = ['cron', 'every', 'delay', 'at', 'manual'] as const;
const DURATION = /^\d+(?:\.\d+)?(?:ms|s|m|h|d)$/;

/**
 * Builds the spec of `kairos jobs create|put NAME` from its flags. Needs `--handler` and exactly one
 * trigger flag. Durations stay strings (`'30s'`); a bare whole number is milliseconds.
 * `--retries N` means N retries after the first attempt: `retry.maxAttempts = N + 1`.
 * @throws UsageError on a missing or invalid flag.
 */
export function jobSpecFromFlags(name: string, flags: JobFlags): JobSpec {
  if (!flags.handler && flags.shell === undefined && flags.http === undefined)
    throw new UsageError('missing --handler <name> (the handler a worker registered), or --shell / --http');
  const trigger = triggerFromFlags(flags);
  if (!trigger) {
    throw new UsageError(
      'missing trigger: pass one of --cron EXPR, --every DUR, --delay DUR, --at ISO or --manual',
    );
  }
  return { name, ...jobFieldsFromFlags(flags), trigger };
}

/**
 * Builds the patch of `kairos jobs update NAME`: only the flags given, at most one trigger flag.
 * @throws UsageError on an invalid flag, or when no flag is given at all.
 */
export function jobPatchFromFlags(flags: JobFlags): JobPatch {
  const patch = jobFieldsFromFlags(flags);
  if (Object.keys(patch).length === 0)
    throw new UsageError('nothing to update: pass at least one flag (see --help)');
  return patch;
}

/** `a,b.c` as a list of paths; an empty string is none (`--secret-params ''` clears them). */
export function parsePathList(text: string): string[] {
  return text
    .split(',')
    .map((path) => path.trim())
    .filter((path) => path !== '');
}

/** Every field the job flags set, trigger included; empty when none is given. */
export function jobFieldsFromFlags(flags: JobFlags): JobPatch {
  const patch: JobPatch = {};
  const trigger = triggerFromFlags(flags);
  if (trigger) patch.trigger = trigger;
  if (flags.handler !== undefined) patch.handler = flags.handler;
  if (flags.group !== undefined) patch.group = flags.group;
  if (flags.description !== undefined) patch.description = flags.description;
  if (flags.params !== undefined) patch.params = parseJsonObject(flags.params, '--params');
  if (flags.secretParams !== undefined) patch.secretParams = parsePathList(flags.secretParams);
  if (flags.timeout !== undefined) patch.timeout = parseDurationFlag(flags.timeout, '--timeout');
  if (flags.priority !== undefined)
    patch.priority = parseIntFlag(flags.priority, '--priority', { min: -1000, max: 1000 });
  if (flags.paused) patch.paused = true;
  const retry: RetrySpec = {};
  if (flags.retries !== undefined)
    retry.maxAttempts = parseIntFlag(flags.retries, '--retries', { min: 0, max: 99 }) + 1;
  if (flags.backoff !== undefined) {
    if (flags.backoff !== 'fixed' && flags.backoff !== 'exponential') {
      throw new UsageError(`--backoff: expected fixed or exponential, got ${JSON.stringify(flags.backoff)}`);
    }
    retry.backoff = flags.backoff;
  }
  if (flags.retryDelay !== undefined) retry.delay = parseDurationFlag(flags.retryDelay, '--retry-delay');
  if (Object.keys(retry).length > 0) patch.retry = retry;
  return { ...patch, ...dispatchFromFlags(flags), ...retentionFromFlags(flags) };
}

/** The trigger named by the flags, or undefined when none is given. Throws on two or more. */
function triggerFromFlags(flags: JobFlags): TriggerSpec | undefined {
  const given = TRIGGER_FLAGS.filter((key) => flags[key] !== undefined && flags[key] !== false);
  if (given.length > 1) {
    throw new UsageError(`choose one trigger, got ${given.map((key) => `--${key}`).join(' and ')}`);
  }
  if (flags.tz !== undefined && flags.cron === undefined) throw new UsageError('--tz goes with --cron');
  switch (given[0]) {
    case 'cron': {
      const cron = flags.cron!.trim();
      if (!cron) throw new UsageError('--cron: expected a cron expression such as "0 9 * * 1-5"');
      return flags.tz === undefined ? { kind: 'cron', cron } : { kind: 'cron', cron, timezone: flags.tz };
    }
    case 'every':
      return { kind: 'every', every: parseDurationFlag(flags.every!, '--every') };
    case 'delay':
      return { kind: 'delay', delay: parseDurationFlag(flags.delay!, '--delay') };
    case 'at':
      return { kind: 'at', at: parseInstant(flags.at!, '--at') };
    case 'manual':
      return { kind: 'manual' };
    default:
      return undefined;
  }
}

/** Parses a whole number flag within bounds. */
export function parseIntFlag(
  value: string,
  flag: string,
  bounds: { min?: number; max?: number } = {},
): number {
  const min = bounds.min ?? Number.MIN_SAFE_INTEGER;
  const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
  const n = /^[-+]?\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = bounds.max === undefined ? `at least ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`${flag}: expected a whole number ${range}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Parses a flag that must hold a JSON object, e.g. `--params '{"to":"ops"}'`. */
export function parseJsonObject(value: string, flag: string): JsonObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    throw new UsageError(`${flag}: invalid JSON (${(error as Error).message}): ${value}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`${flag}: expected a JSON object such as '{"key":"value"}', got ${value}`);
  }
  return parsed as JsonObject;
}

/** Checks a duration flag: `'30s'` stays a string, a bare whole number becomes milliseconds. */
export function parseDurationFlag(value: string, flag: string): Duration {
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  if (DURATION.test(text)) return text;
  throw new UsageError(
    `${flag}: expected a duration such as 250ms, 30s, 5m, 2h or 1d, got ${JSON.stringify(value)}`,
  );
}

/** A duration flag in milliseconds, for the CLI's own waits. */
export function durationFlagMs(value: string, flag: string): number {
  const duration = parseDurationFlag(value, flag);
  if (typeof duration === 'number') return duration;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(duration)!;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    match[2] as 'ms' | 's' | 'm' | 'h' | 'd'
  ];
  return Math.round(Number(match[1]) * unit);
}

/** Parses an instant (`2025-06-01T09:00:00Z`; without a zone it is local time) into ISO-8601 UTC. */
export function parseInstant(value: string, flag: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms))
    throw new UsageError(`${flag}: expected an ISO-8601 instant such as 2025-06-01T09:00:00Z, got ${value}`);
  return new Date(ms).toISOString();
}

/** Parses a run id argument. */
export function parseRunId(value: string): number {
  return parseIntFlag(value, 'run id', { min: 1 });
}

/** Checks a `--status` flag against the run states. */
export function parseRunStatus(value: string): RunStatus {
  if (!(RUN_STATUSES as readonly string[]).includes(value)) {
    throw new UsageError(
      `--status: expected one of ${RUN_STATUSES.join(', ')}, got ${JSON.stringify(value)}`,
    );
  }
  return value as RunStatus;
}

/**
 * The token of a command: the `--token` flag, then the environment variable, then the token of
 * `kind` in `<dataDir>/credentials.json` when that file exists (never created here).
 */
export function resolveToken(
  flags: Pick<GlobalFlags, 'token' | 'dataDir'>,
  kind: 'admin' | 'worker',
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (flags.token) return flags.token;
  const fromEnv = kind === 'admin' ? env.KAIROS_TOKEN : env.KAIROS_WORKER_TOKEN;
  if (fromEnv) return fromEnv;
  const path = join(resolve(flags.dataDir ?? env.KAIROS_DATA_DIR ?? DEFAULTS.dataDir), 'credentials.json');
  if (!existsSync(path)) return undefined;
  try {
    const credentials = JSON.parse(readFileSync(path, 'utf8')) as {
      adminToken?: unknown;
      workerToken?: unknown;
    };
    const token = kind === 'admin' ? credentials.adminToken : credentials.workerToken;
    return typeof token === 'string' ? token : undefined;
  } catch {
    return undefined;
  }
}

/** The API client for the global `--url` and `--token` options. */
export function clientFrom(flags: GlobalFlags): KairosClient {
  const urls = parseUrls(flags.url);
  if (urls.length > 1) throw new UsageError('--url: this command talks to one node; pass one URL');
  return new KairosClient({
    url: urls[0]!,
    token: resolveToken(flags, 'admin'),
    ...(flags.namespace ? { namespace: flags.namespace } : {}),
  });
}

/** The node URLs of `--url` / `KAIROS_URL`: one, or several separated by commas. */
export function parseUrls(value: string): string[] {
  const urls = value
    .split(',')
    .map((url) => url.trim())
    .filter((url) => url !== '');
  if (urls.length === 0) throw new UsageError('--url: expected a URL like http://127.0.0.1:7070');
  return urls;
}
