import type {
  MisfirePolicyKind,
  OverlapPolicy,
  SchedulePolicy as SchedulePolicyView,
  ScheduleSpec,
} from '@kairos/client';
import { KairosError } from '../errors.ts';
import { parseDuration } from './duration.ts';
import { parseInstant } from './trigger.ts';

/** A validated schedule policy, instants and durations in epoch milliseconds (docs/schedules.md). */
export interface SchedulePolicy {
  misfire: { policy: MisfirePolicyKind; maxCatchUp: number; catchUpWindowMs: number };
  overlap: OverlapPolicy;
  startAt: number | null;
  endAt: number | null;
  jitterMs: number;
  maxRuns: number | null;
  /** Names of the calendars whose exclusions apply (core/calendar.ts). */
  calendars: string[];
}

export const MAX_CATCH_UP_LIMIT = 1000;
export const DEFAULT_MAX_CATCH_UP = 10;
export const DEFAULT_CATCH_UP_WINDOW_MS = 86_400_000;
const MAX_RUNS_LIMIT = 1_000_000_000;
const CALENDARS_LIMIT = 20;
const CALENDAR_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export const DEFAULT_SCHEDULE: SchedulePolicy = Object.freeze({
  misfire: Object.freeze({
    policy: 'skip',
    maxCatchUp: DEFAULT_MAX_CATCH_UP,
    catchUpWindowMs: DEFAULT_CATCH_UP_WINDOW_MS,
  }),
  overlap: 'allow',
  startAt: null,
  endAt: null,
  jitterMs: 0,
  maxRuns: null,
  calendars: Object.freeze([]) as unknown as string[],
}) as SchedulePolicy;

const MISFIRE_POLICIES: readonly MisfirePolicyKind[] = ['skip', 'run-once', 'catch-up'];
const OVERLAP_POLICIES: readonly OverlapPolicy[] = [
  'allow',
  'skip',
  'buffer-one',
  'buffer-all',
  'cancel-previous',
];

/** Validates a schedule spec from outside and fills in every default; throws INVALID_SCHEDULE and friends. */
export function compileSchedule(spec: ScheduleSpec | undefined): SchedulePolicy {
  if (!spec) return structuredClone(DEFAULT_SCHEDULE);
  const misfireSpec = spec.misfire ?? { policy: 'skip' };
  if (!MISFIRE_POLICIES.includes(misfireSpec.policy)) {
    throw invalid('schedule.misfire.policy', `expected ${MISFIRE_POLICIES.join(', ')}`);
  }
  if (
    misfireSpec.policy !== 'catch-up' &&
    (misfireSpec.maxCatchUp ?? misfireSpec.catchUpWindow) !== undefined
  ) {
    throw invalid('schedule.misfire', 'maxCatchUp and catchUpWindow apply to the catch-up policy only');
  }
  const maxCatchUp = misfireSpec.maxCatchUp ?? DEFAULT_MAX_CATCH_UP;
  if (!Number.isInteger(maxCatchUp) || maxCatchUp < 1 || maxCatchUp > MAX_CATCH_UP_LIMIT) {
    throw invalid('schedule.misfire.maxCatchUp', `a whole number from 1 to ${MAX_CATCH_UP_LIMIT}`);
  }
  const catchUpWindowMs =
    misfireSpec.catchUpWindow === undefined
      ? DEFAULT_CATCH_UP_WINDOW_MS
      : parseDuration(misfireSpec.catchUpWindow, 'schedule.misfire.catchUpWindow', { min: 1000 });
  const overlap = spec.overlap ?? 'allow';
  if (!OVERLAP_POLICIES.includes(overlap)) {
    throw invalid('schedule.overlap', `expected ${OVERLAP_POLICIES.join(', ')}`);
  }
  const startAt = spec.startAt === undefined ? null : instant(spec.startAt, 'schedule.startAt');
  const endAt = spec.endAt === undefined ? null : instant(spec.endAt, 'schedule.endAt');
  if (startAt !== null && endAt !== null && endAt < startAt) {
    throw invalid('schedule.endAt', 'an instant not before schedule.startAt');
  }
  const maxRuns = spec.maxRuns ?? null;
  if (maxRuns !== null && (!Number.isInteger(maxRuns) || maxRuns < 1 || maxRuns > MAX_RUNS_LIMIT)) {
    throw invalid('schedule.maxRuns', `a whole number from 1 to ${MAX_RUNS_LIMIT}`);
  }
  const calendars = [...new Set(spec.calendars ?? [])];
  if (
    calendars.length > CALENDARS_LIMIT ||
    calendars.some((name) => typeof name !== 'string' || !CALENDAR_NAME.test(name))
  ) {
    throw invalid('schedule.calendars', `at most ${CALENDARS_LIMIT} calendar names`);
  }
  return {
    calendars,
    misfire: { policy: misfireSpec.policy, maxCatchUp, catchUpWindowMs },
    overlap,
    startAt,
    endAt,
    jitterMs:
      spec.jitter === undefined ? 0 : parseDuration(spec.jitter, 'schedule.jitter', { max: 86_400_000 }),
    maxRuns,
  };
}

/** The wire form of a policy, with every default filled in. */
export function describeSchedule(policy: SchedulePolicy): SchedulePolicyView {
  return {
    misfire: {
      policy: policy.misfire.policy,
      maxCatchUp: policy.misfire.maxCatchUp,
      catchUpWindow: policy.misfire.catchUpWindowMs,
    },
    overlap: policy.overlap,
    startAt: policy.startAt === null ? null : new Date(policy.startAt).toISOString(),
    endAt: policy.endAt === null ? null : new Date(policy.endAt).toISOString(),
    jitter: policy.jitterMs,
    maxRuns: policy.maxRuns,
    calendars: [...policy.calendars],
  };
}

/** The spec that compiles back into `policy`. */
export function scheduleSpecOf(policy: SchedulePolicy): ScheduleSpec {
  const spec: ScheduleSpec = {
    misfire:
      policy.misfire.policy === 'catch-up'
        ? {
            policy: 'catch-up',
            maxCatchUp: policy.misfire.maxCatchUp,
            catchUpWindow: policy.misfire.catchUpWindowMs,
          }
        : { policy: policy.misfire.policy },
    overlap: policy.overlap,
    jitter: policy.jitterMs,
  };
  if (policy.startAt !== null) spec.startAt = new Date(policy.startAt).toISOString();
  if (policy.endAt !== null) spec.endAt = new Date(policy.endAt).toISOString();
  if (policy.maxRuns !== null) spec.maxRuns = policy.maxRuns;
  if (policy.calendars.length > 0) spec.calendars = [...policy.calendars];
  return spec;
}

function instant(value: string, field: string): number {
  try {
    return parseInstant(value, field);
  } catch {
    throw invalid(field, 'an RFC 3339 instant with an offset, such as 2030-01-01T09:00:00Z');
  }
}

function invalid(field: string, expected: string): KairosError {
  return new KairosError('INVALID_SCHEDULE', `${field}: ${expected}`, { field });
}
