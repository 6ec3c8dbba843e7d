import type { JsonObject, NamespaceQuotas, NamespaceQuotasView } from '@kairos/client';
import { QuotaExceededError } from '../errors.ts';
import { formatDuration, parseDuration } from './duration.ts';
import { nextFireAfter, type Trigger } from './trigger.ts';

/**
 * Quotas of a namespace (docs/tenancy.md#quotas), validated; null is unlimited. `minInterval` in
 * milliseconds. Pure: the callers pass what the namespace holds and get a refusal or nothing.
 */
export interface QuotaConfig {
  maxJobs: number | null;
  maxFiresPerSecond: number | null;
  minInterval: number | null;
  maxQueuedRuns: number | null;
  maxParamsBytes: number | null;
  maxBackfillRuns: number | null;
  requestsPerSecond: number | null;
}

export const NO_QUOTAS: QuotaConfig = Object.freeze({
  maxJobs: null,
  maxFiresPerSecond: null,
  minInterval: null,
  maxQueuedRuns: null,
  maxParamsBytes: null,
  maxBackfillRuns: null,
  requestsPerSecond: null,
});

/** Validates quotas from the API (the schema checked the types); throws INVALID_DURATION for minInterval. */
export function compileQuotas(spec: NamespaceQuotas): QuotaConfig {
  const minInterval =
    spec.minInterval === undefined || spec.minInterval === null
      ? null
      : parseDuration(spec.minInterval, 'minInterval', { min: 0 });
  return Object.freeze({
    maxJobs: spec.maxJobs ?? null,
    maxFiresPerSecond: spec.maxFiresPerSecond ?? null,
    minInterval,
    maxQueuedRuns: spec.maxQueuedRuns ?? null,
    maxParamsBytes: spec.maxParamsBytes ?? null,
    maxBackfillRuns: spec.maxBackfillRuns ?? null,
    requestsPerSecond: spec.requestsPerSecond ?? null,
  });
}

/** The stored form (the `quotas` JSON column) and the wire form: minInterval as a duration string. */
export function describeQuotas(quotas: QuotaConfig): NamespaceQuotasView & JsonObject {
  return {
    ...quotas,
    minInterval: quotas.minInterval === null ? null : formatDuration(quotas.minInterval),
  };
}

/** Quotas from the stored column; null (never set) is unlimited. */
export function quotasFromColumn(column: JsonObject | null): QuotaConfig {
  return column === null ? NO_QUOTAS : compileQuotas(column as NamespaceQuotas);
}

/**
 * How many fires a cron is sampled over to find its smallest gap. Every pattern croner takes
 * repeats within a year; 512 consecutive fires from a fixed instant cover every pattern whose
 * densest stretch comes in its first 512 fires (every pattern that fires at least every few
 * minutes, and the sparse ones whose fires are evenly spaced). A pattern whose densest burst comes
 * later (say one day of the year with second-by-second fires) is rated on what the sample saw.
 */
const CRON_SAMPLE_FIRES = 512;
/** 2021-01-04T00:00:00Z, a Monday: the sample starts at the same instant for every job. */
const CRON_SAMPLE_FROM = Date.UTC(2021, 0, 4);

/**
 * The smallest gap between two consecutive fires of a trigger, in ms; null when it does not fire
 * again and again on its own (at, delay, manual, after: rated 0). `every` is its interval; a cron
 * is sampled (see CRON_SAMPLE_FIRES) with the schedule code that fires it (`nextFireAfter`).
 */
export function smallestInterval(trigger: Trigger): number | null {
  if (trigger.kind === 'every') return trigger.every;
  if (trigger.kind !== 'cron') return null;
  let smallest: number | null = null;
  let previous = nextFireAfter(trigger, CRON_SAMPLE_FROM);
  for (let i = 0; previous !== null && i < CRON_SAMPLE_FIRES; i++) {
    const next = nextFireAfter(trigger, previous);
    if (next === null) break;
    const gap = next - previous;
    if (smallest === null || gap < smallest) smallest = gap;
    previous = next;
  }
  return smallest;
}

/**
 * A trigger's worst-case fire rate, per second: 1000 / its smallest interval (a cron whose seconds
 * field is `*` fires 1/s; `every: '10s'` 0.1/s); 0 for triggers that do not fire on their own.
 */
export function worstCaseFiresPerSecond(trigger: Trigger): number {
  const interval = smallestInterval(trigger);
  return interval === null ? 0 : 1000 / Math.max(1, interval);
}

/** JSON bytes of a params object, as the store keeps it. */
export function paramsBytes(params: JsonObject): number {
  return new TextEncoder().encode(JSON.stringify(params)).length;
}

/** Refuses a job's params larger than maxParamsBytes (422). Also for a run's params. */
export function checkParamsBytes(quotas: QuotaConfig, params: JsonObject): void {
  if (quotas.maxParamsBytes === null) return;
  const bytes = paramsBytes(params);
  if (bytes > quotas.maxParamsBytes) {
    throw new QuotaExceededError(
      'maxParamsBytes',
      quotas.maxParamsBytes,
      bytes,
      `params of ${bytes} bytes exceed the namespace's quota of ${quotas.maxParamsBytes} bytes`,
    );
  }
}

/** Refuses a trigger that fires more often than minInterval allows (422). */
export function checkInterval(quotas: QuotaConfig, trigger: Trigger): void {
  if (quotas.minInterval === null) return;
  const interval = smallestInterval(trigger);
  if (interval !== null && interval < quotas.minInterval) {
    throw new QuotaExceededError(
      'minInterval',
      formatDuration(quotas.minInterval),
      formatDuration(interval),
      `the trigger fires every ${formatDuration(interval)} at its densest; the namespace's quota allows no less than ${formatDuration(quotas.minInterval)}`,
    );
  }
}

/**
 * Refuses writing a job when the namespace would hold more than maxJobs jobs or more than
 * maxFiresPerSecond worst-case fires per second (422). `others` are the triggers of the
 * namespace's other jobs (without the one written), read in the write's transaction.
 */
export function checkJobCountAndRate(
  quotas: QuotaConfig,
  trigger: Trigger,
  others: readonly Trigger[],
  creating: boolean,
): void {
  if (creating && quotas.maxJobs !== null && others.length + 1 > quotas.maxJobs) {
    throw new QuotaExceededError(
      'maxJobs',
      quotas.maxJobs,
      others.length,
      `the namespace holds ${others.length} jobs; its quota is ${quotas.maxJobs}`,
    );
  }
  if (quotas.maxFiresPerSecond === null) return;
  const added = worstCaseFiresPerSecond(trigger);
  if (added === 0) return;
  const current = others.reduce((sum, other) => sum + worstCaseFiresPerSecond(other), 0);
  // A small tolerance: rates such as 1000/3000 do not add up exactly in floating point.
  if (current + added > quotas.maxFiresPerSecond + 1e-9) {
    throw new QuotaExceededError(
      'maxFiresPerSecond',
      quotas.maxFiresPerSecond,
      round(current),
      `the namespace's jobs fire up to ${round(current)}/s and this one ${round(added)}/s; its quota is ${quotas.maxFiresPerSecond}/s`,
    );
  }
}

/** Seconds a write refused for maxQueuedRuns tells its caller to wait: the queue drains as workers take runs. */
export const QUEUED_RETRY_AFTER_S = 5;

/**
 * Refuses queuing `adding` runs when the namespace, which holds `queued` queued runs (counted in the
 * write's transaction, up to maxQueuedRuns + 1 before these), would hold more than maxQueuedRuns:
 * 429 with Retry-After.
 */
export function checkQueuedRuns(maxQueuedRuns: number, queued: number, adding: number): void {
  if (adding === 0 || queued + adding <= maxQueuedRuns) return;
  throw new QuotaExceededError(
    'maxQueuedRuns',
    maxQueuedRuns,
    queued,
    `the namespace has ${queued} queued runs and this would add ${adding}; its quota is ${maxQueuedRuns}`,
    QUEUED_RETRY_AFTER_S,
  );
}

const round = (n: number) => Math.round(n * 1000) / 1000;

/**
 * Whether a workflow's fire starts an instance under the namespace's maxQueuedRuns
 * (docs/workflows.md#queued-runs-and-the-namespaces-quota): while the namespace holds fewer queued
 * runs than the quota (`queued`, with those that earlier starts of the same fire plan queued); the
 * others go to the ledger (reason `quota`). Without a quota every fire starts. A start is never cut
 * short: the queue may stand above the quota by one instance's root runs.
 */
export function scheduledStartFits(maxQueuedRuns: number | null, queued: number): boolean {
  return maxQueuedRuns === null || queued < maxQueuedRuns;
}

/** The namespace's maxQueuedRuns as its stored quotas hold it (JSON), or null: none, or not a count. */
export function storedMaxQueuedRuns(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : null;
}
