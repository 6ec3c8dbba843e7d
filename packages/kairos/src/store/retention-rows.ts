import type { RunStatus } from '@kairos/client';
import { type InstancePruneCandidate, type PruneCandidate, retentionFromColumn } from '../core/retention.ts';
import type { JsonColumn } from './rows.ts';

/** Statuses of finished runs, as SQL: the only runs the pruner ever deletes. */
export const FINISHED_SQL = `('succeeded', 'failed', 'timed_out', 'cancelled')`;

/** States of ended workflow instances, as SQL: the only instances the pruner ever deletes. */
export const ENDED_INSTANCE_SQL = `('succeeded', 'failed', 'cancelled')`;

/**
 * A condition on a run row (`runs`, unaliased) that keeps the step runs of a workflow instance that
 * is still running or paused: its steps may still read them. A scalar subquery, so that each run of
 * the batch probes its instance's key; as `NOT EXISTS` PostgreSQL hashed every unfinished instance
 * (a walk of workflow_instances_running) for each delete, whatever the batch.
 */
export const NOT_OF_UNFINISHED_INSTANCE = `(runs.workflow_instance_id IS NULL OR coalesce(
    (SELECT wi.state FROM workflow_instances wi WHERE wi.id = runs.workflow_instance_id), 'gone')
    NOT IN ('running', 'paused'))`;

/** An ended workflow instance as the pruner reads it, in either dialect. */
export interface InstancePruneRow {
  id: number;
  state: string;
  finished_at: number | null;
  steps: number | string;
}

export function instancePruneCandidateFromRow(row: InstancePruneRow): InstancePruneCandidate {
  return {
    id: Number(row.id),
    state: row.state as InstancePruneCandidate['state'],
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
    steps: Number(row.steps),
  };
}

/** A run as the pruner reads it, in either dialect. */
export interface PruneRow {
  id: number;
  job_id: number;
  status: string;
  created_at: number;
  finished_at: number | null;
  retention: JsonColumn;
  superseded?: number | boolean;
}

export function pruneCandidateFromRow(row: PruneRow, superseded = Boolean(row.superseded)): PruneCandidate {
  return {
    id: row.id,
    jobId: row.job_id,
    status: row.status as RunStatus,
    createdAt: row.created_at,
    finishedAt: row.finished_at,
    retention: retentionFromColumn(row.retention),
    superseded,
  };
}
