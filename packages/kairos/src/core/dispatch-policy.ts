import { type JobSpec, MAX_CONCURRENCY_LIMIT, type RateLimitSpec, type RoutingSpec } from '@kairos/client';
import { KairosError } from '../errors.ts';
import { parseDuration } from './duration.ts';
import type { RateLimit } from './rate-limit.ts';
import { compileResources, type Resources, resourceSpecOf } from './resources.ts';
import { DEFAULT_ROUTING, ROUTING_STRATEGIES, type Routing, type RoutingStrategy } from './routing.ts';

/** How a job's runs reach workers: routing, a concurrency limit and a schedule-to-start timeout. */
export interface DispatchPolicy {
  routing: Routing;
  /** The most runs of the job running at once, cluster-wide; null for no limit. */
  maxConcurrency: number | null;
  /** A run queued this long after it became ready fails; null waits forever. */
  scheduleToStartMs: number | null;
  /** At most `limit` runs of the job started per `perMs`, cluster-wide; null for none. */
  rateLimit: RateLimit | null;
  /** What each run needs free on its worker (core/resources.ts); null: nothing but a slot. */
  resources: Resources | null;
}

export const DEFAULT_DISPATCH: DispatchPolicy = Object.freeze({
  routing: DEFAULT_ROUTING,
  maxConcurrency: null,
  scheduleToStartMs: null,
  rateLimit: null,
  resources: null,
});

export { MAX_CONCURRENCY_LIMIT };

const LABEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$/;
const KEY_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

type DispatchFields = 'routing' | 'maxConcurrency' | 'scheduleToStartTimeout' | 'rateLimit' | 'resources';

/**
 * Validates the dispatch fields of a job spec; throws INVALID_ROUTING, INVALID_RESOURCES or
 * VALIDATION_FAILED with the field.
 */
export function compileDispatch(spec: Pick<JobSpec, DispatchFields>): DispatchPolicy {
  const max = spec.maxConcurrency;
  if (max !== undefined && (!Number.isInteger(max) || max < 1 || max > MAX_CONCURRENCY_LIMIT)) {
    throw new KairosError(
      'VALIDATION_FAILED',
      `maxConcurrency: expected a whole number from 1 to ${MAX_CONCURRENCY_LIMIT}`,
      { field: 'maxConcurrency' },
    );
  }
  return {
    routing: compileRouting(spec.routing),
    maxConcurrency: max ?? null,
    scheduleToStartMs:
      spec.scheduleToStartTimeout === undefined
        ? null
        : parseDuration(spec.scheduleToStartTimeout, 'scheduleToStartTimeout', { min: 1000 }),
    rateLimit: compileRateLimit(spec.rateLimit, 'rateLimit'),
    resources: compileResources(spec.resources, 'resources'),
  };
}

/** Validates a rate limit: 1 to 1 000 000 runs per 1 s to 1 day. */
export function compileRateLimit(spec: RateLimitSpec | null | undefined, field: string): RateLimit | null {
  if (spec === undefined || spec === null) return null;
  if (!Number.isInteger(spec.limit) || spec.limit < 1 || spec.limit > 1_000_000) {
    throw new KairosError('VALIDATION_FAILED', `${field}.limit: expected a whole number from 1 to 1000000`, {
      field: `${field}.limit`,
    });
  }
  return {
    limit: spec.limit,
    perMs: parseDuration(spec.per, `${field}.per`, { min: 1000, max: 86_400_000 }),
  };
}

function compileRouting(spec: RoutingSpec | undefined): Routing {
  if (spec === undefined) return { ...DEFAULT_ROUTING, selector: {} };
  if (!(ROUTING_STRATEGIES as readonly string[]).includes(spec.strategy)) {
    throw invalid('routing.strategy', `one of ${ROUTING_STRATEGIES.join(', ')}`);
  }
  const strategy = spec.strategy as RoutingStrategy;
  if (spec.key !== undefined && strategy !== 'consistent-hash') {
    throw invalid('routing.key', 'no key: only consistent-hash uses one');
  }
  if (spec.key !== undefined && !KEY_PATTERN.test(spec.key)) {
    throw invalid('routing.key', 'the name of a params field');
  }
  const selector = spec.selector ?? {};
  for (const [label, value] of Object.entries(selector)) {
    if (!LABEL_PATTERN.test(label) || typeof value !== 'string' || value.length > 256) {
      throw invalid(`routing.selector.${label}`, 'a label name and a string value');
    }
  }
  return { strategy, key: spec.key ?? null, selector: { ...selector } };
}

/** The spec fields that compile back into `policy` (absent where the default applies). */
export function dispatchSpecOf(policy: DispatchPolicy): Pick<JobSpec, DispatchFields> {
  const out: Pick<JobSpec, DispatchFields> = {};
  const { routing } = policy;
  if (routing.strategy !== 'any' || Object.keys(routing.selector).length > 0) {
    out.routing = { strategy: routing.strategy, selector: routing.selector };
    if (routing.key !== null) out.routing.key = routing.key;
  }
  if (policy.maxConcurrency !== null) out.maxConcurrency = policy.maxConcurrency;
  if (policy.scheduleToStartMs !== null) out.scheduleToStartTimeout = policy.scheduleToStartMs;
  if (policy.rateLimit !== null)
    out.rateLimit = { limit: policy.rateLimit.limit, per: policy.rateLimit.perMs };
  if (policy.resources !== null) out.resources = resourceSpecOf(policy.resources);
  return out;
}

/**
 * Whether a run of this job can take the fast claim path (no routing, no limit, no resources). A
 * run may also request resources of its own (a workflow step's): see DispatchCandidate.resources.
 */
export function isPlainDispatch(policy: DispatchPolicy): boolean {
  return (
    policy.resources === null &&
    policy.routing.strategy === 'any' &&
    Object.keys(policy.routing.selector).length === 0 &&
    policy.maxConcurrency === null &&
    policy.rateLimit === null
  );
}

function invalid(field: string, expected: string): KairosError {
  return new KairosError('INVALID_ROUTING', `${field}: expected ${expected}`, { field });
}

/** The policy as stored (JSON); a job stored before policies existed reads as the default. */
export function dispatchFromColumn(text: string): DispatchPolicy {
  const stored = JSON.parse(text) as Partial<DispatchPolicy>;
  return {
    routing: { ...DEFAULT_ROUTING, selector: {}, ...stored.routing },
    maxConcurrency: stored.maxConcurrency ?? null,
    scheduleToStartMs: stored.scheduleToStartMs ?? null,
    rateLimit: stored.rateLimit ?? null,
    resources: stored.resources ?? null,
  };
}
