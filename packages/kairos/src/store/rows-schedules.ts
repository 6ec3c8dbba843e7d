import type { CalendarDefinition, CalendarRecord } from '../core/calendar.ts';
import { type JsonColumn, json } from './rows.ts';
import type { SkippedRecord } from './store.ts';

/** Row shapes of the Schedules tables, shared by the dialects. */
export interface CalendarRow {
  namespace: string;
  name: string;
  definition: JsonColumn;
  created_at: number;
  updated_at: number;
}

export function calendarFromRow(row: CalendarRow): CalendarRecord {
  return {
    ...json<CalendarDefinition>(row.definition),
    namespace: row.namespace,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export interface SkippedRow {
  id: number;
  job_id: number;
  job_name: string;
  reason: string;
  first_fire: number;
  last_fire: number;
  count: number | null;
  recorded_at: number;
}

export function skippedFromRow(row: SkippedRow): SkippedRecord {
  return {
    id: row.id,
    jobId: row.job_id,
    jobName: row.job_name,
    reason: row.reason as SkippedRecord['reason'],
    first: row.first_fire,
    last: row.last_fire,
    count: row.count,
    recordedAt: row.recorded_at,
  };
}
