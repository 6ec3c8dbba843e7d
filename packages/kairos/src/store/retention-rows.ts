import type { RunStatus } from '@kairos/client';
import { type PruneCandidate, retentionFromColumn } from '../core/retention.ts';
import type { JsonColumn } from './rows.ts';

/** Statuses of finished runs, as SQL: the only runs the pruner ever deletes. */
export const FINISHED_SQL = `('succeeded', 'failed', 'timed_out', 'cancelled')`;

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
