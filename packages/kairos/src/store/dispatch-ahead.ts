import type { TaskDefinition } from '../core/task.ts';
import { type ClaimRow, claimedFromRow } from './dispatch-rows.ts';
import { type JsonColumn, json } from './rows.ts';
import type { ClaimedRun } from './store.ts';

/** A run claimed ahead of its instant (`Store.dispatchAhead`), the same columns in every dialect. */
export interface AheadRow extends ClaimRow {
  job_name: string;
  task: JsonColumn | null;
  available_at: number;
}

export function aheadClaimedFromRow(row: AheadRow): ClaimedRun {
  return {
    ...claimedFromRow(row, {
      jobName: row.job_name,
      task: row.task === null ? null : json<TaskDefinition>(row.task),
    }),
    startAt: row.available_at,
  };
}
