import { Type } from '@sinclair/typebox';
import { closed, InstantSchema, ItemsSchema, literals, NameSchema, nullable, PageSchema } from './common.ts';
import { ScheduleSpecSchema, TriggerBody, TriggerSpecSchema } from './jobs.ts';

/** Schemas of schedules: the ledger of fires that did not run, previews, backfills, calendars. */

const SKIP_REASONS = [
  'misfire',
  'overlap',
  'paused',
  'max-runs',
  'outside-window',
  'calendar',
  'overloaded',
  'quota',
] as const;
export const SkipReasonSchema = literals(SKIP_REASONS);

export const SkippedFiresSchema = Type.Object({
  id: Type.Integer(),
  jobName: Type.String(),
  reason: SkipReasonSchema,
  /** The first and last fire time of the range (equal for a single fire). */
  firstFireTime: Type.String(),
  lastFireTime: Type.String(),
  /** Fire times in the range; null when there were too many to count cheaply (a long cron outage). */
  count: nullable(Type.Integer()),
  recordedAt: Type.String(),
});

export const SkippedPageSchema = PageSchema(SkippedFiresSchema);

export const FirePreviewSchema = Type.Object({
  fireTime: Type.String(),
  /** When the run becomes available: the fire time plus its jitter. */
  runAt: Type.String(),
  /** Set when a rule changes this fire. */
  note: Type.Optional(literals(['dst-moved', 'dst-repeated'] as const)),
});

export const PreviewSkipSchema = Type.Object({
  fireTime: Type.String(),
  reason: literals([...SKIP_REASONS, 'dst'] as const),
});

export const PreviewSchema = Type.Object({
  fires: Type.Array(FirePreviewSchema),
  /** Fire times within the previewed span that will not run, with the reason. */
  skipped: Type.Array(PreviewSkipSchema),
});

export const PreviewRequestSchema = closed({
  trigger: TriggerSpecSchema,
  schedule: Type.Optional(ScheduleSpecSchema),
  /** Default 10, at most 100. */
  count: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  /** Start after this instant (default now). */
  from: Type.Optional(InstantSchema),
});
/** The request form of a preview request: its trigger in the request form. */
export const PreviewRequestBody = closed({ ...PreviewRequestSchema.properties, trigger: TriggerBody });

export const BackfillRequestSchema = closed({
  /** The range, inclusive, RFC 3339; `to` at most now. */
  from: InstantSchema,
  to: InstantSchema,
  /** `buffer-all` (default): one backfill run at a time, oldest first; `allow`: every run at once. */
  overlap: Type.Optional(literals(['allow', 'buffer-all'] as const)),
  /** The most runs to create (default 100, at most 1000). */
  max: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
});

export const BackfillResponseSchema = Type.Object({
  /** Runs created, oldest fire first. */
  runs: Type.Array(Type.Object({ runId: Type.Integer(), fireTime: Type.String() })),
  /** Fire times in the range that already had a run. */
  existing: Type.Array(Type.String()),
  /** Set when the range held more fires than `max`: pass it as `from` to continue. */
  nextFrom: nullable(Type.String()),
});

export const SkippedQuery = closed({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  cursor: Type.Optional(Type.String({ maxLength: 32 })),
});

export const PreviewQuery = closed({
  count: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
});

// Calendars ------------------------------------------------------------------

const LocalDate = Type.String({ maxLength: 10 });
const PeriodSchema = closed({ from: LocalDate, to: LocalDate });

export const CalendarSpecSchema = closed({
  name: NameSchema,
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  /** The zone in which dates, weekdays and the cron exclusion are read. Default `UTC`. */
  timezone: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  /** Whole local days excluded, `YYYY-MM-DD`. */
  dates: Type.Optional(Type.Array(LocalDate, { maxItems: 1000 })),
  /** Local date ranges excluded, both ends included. */
  periods: Type.Optional(Type.Array(PeriodSchema, { maxItems: 1000 })),
  /** Weekdays excluded: 0 Sunday … 6 Saturday. */
  weekdays: Type.Optional(Type.Array(Type.Integer({ minimum: 0, maximum: 6 }), { maxItems: 7 })),
  /** A cron expression: the fire times it matches are excluded (e.g. `* 0-6 * * *`: nights). */
  cron: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
});
/** `PUT /v1/calendars/:name`: the name comes from the path. */
export const CalendarBody = closed({ ...CalendarSpecSchema.properties, name: Type.Optional(NameSchema) });

export const CalendarSchema = Type.Object({
  name: Type.String(),
  description: Type.String(),
  timezone: Type.String(),
  dates: Type.Array(Type.String()),
  periods: Type.Array(Type.Object({ from: Type.String(), to: Type.String() })),
  weekdays: Type.Array(Type.Integer()),
  cron: nullable(Type.String()),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});

export const CalendarListSchema = ItemsSchema(CalendarSchema);
