import type { RetentionPolicy, RetentionSpec, RunStatus } from '@kairos/client';
import { KairosError } from '../errors.ts';
import { parseDuration } from './duration.ts';

/**
 * Retention: how long finished runs (with their attempts, logs and late reports), the ledger of
 * skipped fires, the audit log and gone workers are kept (docs/retention.md).
 *
 * A finished run is deleted when it is older than its job's age limit for its status (`finished`
 * for succeeded and cancelled runs, `failed` for failed and timed-out ones), or when the job keeps
 * only its newest `keepLast` finished runs and the run is not among them (failed runs then still
 * stay until `failed` passes). Never deleted: a run that is not finished, a run that ended less
 * than {@link MIN_RUN_AGE_MS} ago, and the newest finished run of each job.
 */

/** A job's own retention, in ms; null takes the node's default. */
export interface JobRetention {
  finishedMs: number | null;
  failedMs: number | null;
  keepLast: number | null;
}

/** The node's retention: the defaults of every job, and the limits of the other kinds of rows. */
export interface RetentionConfig {
  /** Succeeded and cancelled runs. */
  readonly finishedMs: number;
  /** Failed and timed-out runs. */
  readonly failedMs: number;
  /** Rows of the skipped-fire ledger, after they were last written. */
  readonly skippedFiresMs: number;
  readonly auditMs: number;
  /** Run log lines, after they were stored. */
  readonly logsMs: number;
  /** Stopped and lost workers, after their lease ended. */
  readonly workersMs: number;
  /** How often the pruner runs a cycle. */
  readonly intervalMs: number;
  /** Rows one delete statement takes at most. */
  readonly batch: number;
}

export const NO_JOB_RETENTION: JobRetention = Object.freeze({
  finishedMs: null,
  failedMs: null,
  keepLast: null,
});

/** A run is never deleted sooner than this after it ended: a late report or log line may still come. */
export const MIN_RUN_AGE_MS = 60_000;
export const KEEP_LAST_LIMIT = 1_000_000;
/** The longest age a retention can be: ten years. */
export const RETENTION_MAX_MS = 3650 * 86_400_000;

const FAILED: ReadonlySet<RunStatus> = new Set(['failed', 'timed_out']);
export const FINISHED_STATUSES: readonly RunStatus[] = ['succeeded', 'cancelled', 'failed', 'timed_out'];

/** Validates a job's retention spec from outside. */
export function compileRetention(spec: RetentionSpec | undefined): JobRetention {
  if (spec === undefined) return NO_JOB_RETENTION;
  const age = (value: RetentionSpec['finished'], field: string) =>
    value === undefined || value === null
      ? null
      : parseDuration(value, field, { min: MIN_RUN_AGE_MS, max: RETENTION_MAX_MS });
  const keepLast = spec.keepLast ?? null;
  if (keepLast !== null && (!Number.isInteger(keepLast) || keepLast < 1 || keepLast > KEEP_LAST_LIMIT)) {
    throw new KairosError(
      'VALIDATION_FAILED',
      `retention.keepLast: expected a whole number from 1 to ${KEEP_LAST_LIMIT}, got ${keepLast}`,
      { field: 'retention.keepLast' },
    );
  }
  return {
    finishedMs: age(spec.finished, 'retention.finished'),
    failedMs: age(spec.failed, 'retention.failed'),
    keepLast,
  };
}

/** The spec that compiles back into `retention`; undefined when the job has none of its own. */
export function retentionSpecOf(retention: JobRetention): RetentionSpec | undefined {
  const spec: RetentionSpec = {};
  if (retention.finishedMs !== null) spec.finished = retention.finishedMs;
  if (retention.failedMs !== null) spec.failed = retention.failedMs;
  if (retention.keepLast !== null) spec.keepLast = retention.keepLast;
  return Object.keys(spec).length > 0 ? spec : undefined;
}

export function describeRetention(retention: JobRetention): RetentionPolicy {
  return { finished: retention.finishedMs, failed: retention.failedMs, keepLast: retention.keepLast };
}

/** A job's retention from its stored column (`'{}'` or absent fields: the node's default). */
export function retentionFromColumn(value: unknown): JobRetention {
  const parsed = (typeof value === 'string' ? JSON.parse(value) : (value ?? {})) as Partial<JobRetention>;
  return {
    finishedMs: parsed.finishedMs ?? null,
    failedMs: parsed.failedMs ?? null,
    keepLast: parsed.keepLast ?? null,
  };
}

/** What the store keeps of a job's retention: only the fields it sets. */
export function retentionColumn(retention: JobRetention): string {
  const kept: Partial<JobRetention> = {};
  if (retention.finishedMs !== null) kept.finishedMs = retention.finishedMs;
  if (retention.failedMs !== null) kept.failedMs = retention.failedMs;
  if (retention.keepLast !== null) kept.keepLast = retention.keepLast;
  return JSON.stringify(kept);
}

/** A run as the pruner reads it (`Store.runsToPrune`, `Store.jobRunsToPrune`). */
export interface PruneCandidate {
  id: number;
  jobId: number;
  status: RunStatus;
  createdAt: number;
  /** Null while not finished (a retry waiting has one: it is not finished either). */
  finishedAt: number | null;
  /** The job's own retention. */
  retention: JobRetention;
  /** Whether a later finished run of the same job exists (the newest one is always kept). */
  superseded: boolean;
}

export type RetentionDefaults = Pick<RetentionConfig, 'finishedMs' | 'failedMs'>;

/** The age limit that applies to a run of `status` under a job's retention and the defaults. */
export function ageLimitMs(status: RunStatus, job: JobRetention, defaults: RetentionDefaults): number {
  return FAILED.has(status) ? (job.failedMs ?? defaults.failedMs) : (job.finishedMs ?? defaults.finishedMs);
}

/** The shorter of a job's two age limits: no run created after `now` minus this is old enough. */
export function shortestAgeMs(job: JobRetention, defaults: RetentionDefaults): number {
  return Math.min(job.finishedMs ?? defaults.finishedMs, job.failedMs ?? defaults.failedMs);
}

/**
 * Whether the pruner deletes this run at `now`: finished, superseded by a later finished run of its
 * job, ended at least {@link MIN_RUN_AGE_MS} ago, and either past its age limit or, for a succeeded or
 * cancelled run, `beyondKeepLast` (not among the job's newest `keepLast` finished runs).
 */
export function prunable(
  run: PruneCandidate,
  defaults: RetentionDefaults,
  now: number,
  beyondKeepLast = false,
): boolean {
  if (!FINISHED_STATUSES.includes(run.status) || run.finishedAt === null || !run.superseded) return false;
  const age = now - run.finishedAt;
  if (age < MIN_RUN_AGE_MS) return false;
  if (beyondKeepLast && !FAILED.has(run.status)) return true;
  return age > ageLimitMs(run.status, run.retention, defaults);
}

/** An ended workflow instance as the pruner reads it (`Store.workflowInstancesToPrune`). */
export interface InstancePruneCandidate {
  id: number;
  state: 'succeeded' | 'failed' | 'cancelled' | 'running' | 'paused';
  finishedAt: number | null;
  /** Its step rows: what deleting it takes with it (its map items go first, in batches of their own). */
  steps: number;
}

/**
 * Whether the pruner deletes this workflow instance at `now`: ended (succeeded, failed, cancelled),
 * at least {@link MIN_RUN_AGE_MS} ago, and past the node's age limit for its state (`failedMs` for a
 * failed instance, `finishedMs` otherwise), as a run of that state would be. A running or paused
 * instance is never deleted, however old.
 */
export function instancePrunable(
  instance: InstancePruneCandidate,
  defaults: RetentionDefaults,
  now: number,
): boolean {
  if (instance.finishedAt === null) return false;
  if (instance.state !== 'succeeded' && instance.state !== 'failed' && instance.state !== 'cancelled')
    return false;
  const age = now - instance.finishedAt;
  if (age < MIN_RUN_AGE_MS) return false;
  return age > (instance.state === 'failed' ? defaults.failedMs : defaults.finishedMs);
}
