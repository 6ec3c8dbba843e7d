import type { Calendar, CalendarSpec } from '@kairos/client';
import { KairosError } from '../errors.ts';
import { compileTrigger, nextFireAfter, type Trigger } from './trigger.ts';

/** A validated calendar: what the store keeps. */
export interface CalendarDefinition {
  name: string;
  description: string;
  timezone: string;
  dates: string[];
  periods: Array<{ from: string; to: string }>;
  weekdays: number[];
  cron: string | null;
}

export interface CalendarRecord extends CalendarDefinition {
  /** The namespace it belongs to; only that namespace's jobs may name it. */
  namespace: string;
  createdAt: number;
  updatedAt: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const LIST_LIMIT = 1000;

/** Validates a calendar from outside; throws VALIDATION_FAILED, INVALID_TIMEZONE or INVALID_CRON. */
export function compileCalendar(spec: CalendarSpec): CalendarDefinition {
  if (typeof spec.name !== 'string' || !NAME.test(spec.name)) {
    throw invalid('name', 'letters, digits and ._:-, starting with a letter or digit');
  }
  const timezone = spec.timezone ?? 'UTC';
  // The cron trigger compiler checks the zone and the expression with their own codes.
  const cron =
    spec.cron === undefined
      ? null
      : (compileTrigger({ kind: 'cron', cron: spec.cron, timezone }) as CronTrigger).cron;
  if (spec.cron === undefined) compileTrigger({ kind: 'cron', cron: '0 0 * * *', timezone });
  const dates = [...new Set((spec.dates ?? []).map((d, i) => checkDate(d, `dates[${i}]`)))].sort();
  const periods = (spec.periods ?? []).map((p, i) => {
    const from = checkDate(p.from, `periods[${i}].from`);
    const to = checkDate(p.to, `periods[${i}].to`);
    if (to < from) throw invalid(`periods[${i}].to`, 'a date not before from');
    return { from, to };
  });
  const weekdays = [...new Set(spec.weekdays ?? [])].sort();
  if (weekdays.some((d) => !Number.isInteger(d) || d < 0 || d > 6)) {
    throw invalid('weekdays', 'whole numbers from 0 (Sunday) to 6 (Saturday)');
  }
  if (dates.length > LIST_LIMIT || periods.length > LIST_LIMIT) {
    throw invalid('dates', `at most ${LIST_LIMIT} dates and ${LIST_LIMIT} periods`);
  }
  return { name: spec.name, description: spec.description ?? '', timezone, dates, periods, weekdays, cron };
}

export function describeCalendar(calendar: CalendarRecord): Calendar {
  return {
    name: calendar.name,
    description: calendar.description,
    timezone: calendar.timezone,
    dates: calendar.dates,
    periods: calendar.periods,
    weekdays: calendar.weekdays,
    cron: calendar.cron,
    createdAt: new Date(calendar.createdAt).toISOString(),
    updatedAt: new Date(calendar.updatedAt).toISOString(),
  };
}

type CronTrigger = Extract<Trigger, { kind: 'cron' }>;

/**
 * Whether `calendar` excludes the fire at `t`, and until when: the exclusion of a whole local day
 * or period ends at the next local midnight after it (an instant at or before the real one, so
 * that a fire is never wrongly skipped; the caller checks again from there). A cron exclusion
 * covers this fire only. Null when the fire is not excluded.
 */
export function exclusionOf(calendar: CalendarDefinition, t: number): { until: number } | null {
  const { date, weekday } = localDate(calendar.timezone, t);
  let lastDay: string | null = null;
  if (calendar.dates.includes(date) || calendar.weekdays.includes(weekday)) lastDay = date;
  for (const period of calendar.periods) {
    if (period.from <= date && date <= period.to && (lastDay === null || period.to > lastDay))
      lastDay = period.to;
  }
  if (lastDay !== null) return { until: Math.max(t + 1, midnightAfter(calendar.timezone, lastDay)) };
  if (calendar.cron !== null) {
    const trigger: CronTrigger = {
      kind: 'cron',
      cron: calendar.cron,
      timezone: calendar.timezone,
      dst: 'literal',
    };
    const second = Math.floor(t / 1000) * 1000;
    if (nextFireAfter(trigger, second - 1) === second) return { until: t + 1 };
  }
  return null;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function localDate(timezone: string, t: number): { date: string; weekday: number } {
  let format = formatters.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      weekday: 'short',
    });
    formatters.set(timezone, format);
  }
  const parts: Record<string, string> = {};
  for (const part of format.formatToParts(new Date(t))) parts[part.type] = part.value;
  const weekday = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(parts.weekday!);
  return { date: `${parts.year}-${parts.month}-${parts.day}`, weekday };
}

/** The instant of local midnight after `date`, or a little before it (never after). */
function midnightAfter(timezone: string, date: string): number {
  const [, y, m, d] = DATE.exec(date)!.map(Number) as [number, number, number, number];
  const wall = Date.UTC(y, m - 1, d + 1);
  return Math.min(wall - offsetAt(timezone, wall - 86_400_000), wall - offsetAt(timezone, wall + 86_400_000));
}

function offsetAt(timezone: string, t: number): number {
  const parts: Record<string, number> = {};
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone: timezone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
  for (const part of format.formatToParts(new Date(t))) parts[part.type] = Number(part.value);
  const wall = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
  return wall - Math.floor(t / 1000) * 1000;
}

function checkDate(value: string, field: string): string {
  const match = typeof value === 'string' ? DATE.exec(value) : null;
  if (match) {
    const [y, m, d] = [Number(match[1]), Number(match[2]), Number(match[3])];
    const date = new Date(Date.UTC(y, m - 1, d));
    if (date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d) return value;
  }
  throw invalid(field, 'a date such as 2026-12-25');
}

function invalid(field: string, expected: string): KairosError {
  return new KairosError('VALIDATION_FAILED', `${field}: expected ${expected}`, { field });
}
