import type { CalendarDefinition, CalendarRecord } from '../core/calendar.ts';
import { type JsonColumn, json } from './rows.ts';

/** Row shapes of the Schedules tables, shared by the dialects. */
export interface CalendarRow {
  name: string;
  definition: JsonColumn;
  created_at: number;
  updated_at: number;
}

export function calendarFromRow(row: CalendarRow): CalendarRecord {
  return {
    ...json<CalendarDefinition>(row.definition),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
