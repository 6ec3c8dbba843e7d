import type { AlertKind, AlertRuleSpec, Duration } from '@kairos/client';
import { KairosError } from '../errors.ts';
import { parseDuration } from './duration.ts';

/** A compiled alert rule: durations in ms, the fields its kind needs present, the rest null. */
export interface AlertRuleDefinition {
  name: string;
  kind: AlertKind;
  job: string | null;
  group: string | null;
  /** ms: `run-queued`, `fire-late` (too late), `no-success` (the period). */
  threshold: number | null;
  /** `consecutive-failures`. */
  count: number | null;
  /** `fire-skipped`: the reasons that alert; null: all but `overloaded` (it alerts only when listed). */
  reasons: string[] | null;
  unroutableOnly: boolean;
  channels: string[];
  windowMs: number;
  enabled: boolean;
}

export interface AlertRuleRecord extends AlertRuleDefinition {
  /** The namespace it belongs to; it names channels of that namespace only. */
  namespace: string;
  id: number;
  createdAt: number;
  updatedAt: number;
}

export const DEFAULT_ALERT_WINDOW_MS = 60 * 60 * 1000;

/** Kinds decided from events the store writes as they happen (the outbox); the rest from state, each evaluation. */
export const EVENT_KINDS: ReadonlySet<AlertKind> = new Set([
  'run-failed',
  'run-timed-out',
  'consecutive-failures',
  'fire-skipped',
  'worker-lost',
]);

const NEEDS_THRESHOLD: ReadonlySet<AlertKind> = new Set(['run-queued', 'fire-late', 'no-success']);
const NO_JOB_SCOPE: ReadonlySet<AlertKind> = new Set(['worker-lost', 'node-lost']);

/**
 * Validates and compiles a rule spec; throws INVALID_ALERT_RULE naming the field. Which fields a
 * kind takes: `threshold` for `run-queued`, `fire-late` and `no-success`; `count` for
 * `consecutive-failures`; `reasons` for `fire-skipped`; `unroutableOnly` for `run-queued`.
 */
export function compileAlertRule(spec: AlertRuleSpec): AlertRuleDefinition {
  const invalid = (field: string, message: string) =>
    new KairosError('INVALID_ALERT_RULE', `${field}: ${message}`, { field });
  const { kind } = spec;
  if (spec.job !== undefined && spec.group !== undefined)
    throw invalid('job', 'give a job or a group as the scope, not both');
  if (spec.job !== undefined && NO_JOB_SCOPE.has(kind))
    throw invalid('job', `a ${kind} rule is about the cluster, not a job: scope it to a group or nothing`);
  if (spec.group !== undefined && kind === 'node-lost')
    throw invalid('group', 'a node-lost rule is about the whole cluster: give no scope');
  let threshold: number | null = null;
  if (NEEDS_THRESHOLD.has(kind)) {
    if (spec.threshold === undefined) throw invalid('threshold', `a ${kind} rule needs a threshold`);
    threshold = duration(spec.threshold, 'threshold', 1000);
  } else if (spec.threshold !== undefined) {
    throw invalid('threshold', `a ${kind} rule takes no threshold`);
  }
  if (kind === 'consecutive-failures' && spec.count === undefined)
    throw invalid('count', 'a consecutive-failures rule needs a count');
  if (kind !== 'consecutive-failures' && spec.count !== undefined)
    throw invalid('count', `a ${kind} rule takes no count`);
  if (kind !== 'fire-skipped' && spec.reasons !== undefined)
    throw invalid('reasons', `a ${kind} rule takes no reasons`);
  if (kind !== 'run-queued' && spec.unroutableOnly !== undefined)
    throw invalid('unroutableOnly', `a ${kind} rule takes no unroutableOnly`);
  return {
    name: spec.name,
    kind,
    job: spec.job ?? null,
    group: spec.group ?? null,
    threshold,
    count: spec.count ?? null,
    reasons: spec.reasons ? [...spec.reasons] : null,
    unroutableOnly: spec.unroutableOnly ?? false,
    channels: [...spec.channels],
    windowMs: spec.window === undefined ? DEFAULT_ALERT_WINDOW_MS : duration(spec.window, 'window', 0),
    enabled: spec.enabled ?? true,
  };
}

function duration(value: Duration, field: string, min: number): number {
  return parseDuration(value, field, { min, max: 90 * 24 * 60 * 60 * 1000 });
}

/** Whether a rule's scope covers a job (or a worker's group, for `worker-lost`). */
export function ruleCovers(rule: AlertRuleDefinition, target: { job?: string; group: string }): boolean {
  if (rule.job !== null) return target.job === rule.job;
  if (rule.group !== null) return target.group === rule.group;
  return true;
}

/** The rule as the API answers it. */
export function describeAlertRule(rule: AlertRuleRecord) {
  return {
    name: rule.name,
    kind: rule.kind,
    job: rule.job,
    group: rule.group,
    threshold: rule.threshold,
    count: rule.count,
    reasons: rule.reasons,
    unroutableOnly: rule.unroutableOnly,
    channels: rule.channels,
    window: rule.windowMs,
    enabled: rule.enabled,
    createdAt: new Date(rule.createdAt).toISOString(),
    updatedAt: new Date(rule.updatedAt).toISOString(),
  };
}
