import { type TSchema, Type } from '@sinclair/typebox';
import { TaskSchema } from './worker-schemas.ts';

/** Request schemas: every body is closed (unknown fields are a 400), every bound is explicit. */

const Duration = Type.Union([Type.Integer({ minimum: 0 }), Type.String({ minLength: 1, maxLength: 32 })]);
const Name = Type.String({ minLength: 1, maxLength: 128 });
const Params = Type.Record(Type.String(), Type.Unknown());

const closed = <T extends Parameters<typeof Type.Object>[0]>(properties: T) =>
  Type.Object(properties, { additionalProperties: false });

// One closed object for every kind: compileTrigger checks which fields each kind needs, with
// messages that name the field (a union here would only say "must match a schema in anyOf").
export const TriggerSchema = closed({
  kind: Type.Union(['cron', 'every', 'delay', 'at', 'manual', 'after'].map((kind) => Type.Literal(kind))),
  cron: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  timezone: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  every: Type.Optional(Duration),
  startAt: Type.Optional(Type.String({ maxLength: 64 })),
  delay: Type.Optional(Duration),
  at: Type.Optional(Type.String({ maxLength: 64 })),
  dst: Type.Optional(Type.Union([Type.Literal('once-per-day'), Type.Literal('literal')])),
  job: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  on: Type.Optional(Type.Union(['success', 'failure', 'always'].map((on) => Type.Literal(on)))),
});

// Schedules: policies checked for shape here, for meaning (ranges, instants) in core/schedule-policy.ts.
export const ScheduleSchema = closed({
  misfire: Type.Optional(
    closed({
      policy: Type.Union(['skip', 'run-once', 'catch-up'].map((p) => Type.Literal(p))),
      maxCatchUp: Type.Optional(Type.Integer()),
      catchUpWindow: Type.Optional(Duration),
    }),
  ),
  overlap: Type.Optional(
    Type.Union(['allow', 'skip', 'buffer-one', 'buffer-all', 'cancel-previous'].map((p) => Type.Literal(p))),
  ),
  startAt: Type.Optional(Type.String({ maxLength: 64 })),
  endAt: Type.Optional(Type.String({ maxLength: 64 })),
  jitter: Type.Optional(Duration),
  maxRuns: Type.Optional(Type.Integer()),
  calendars: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 20 })),
});

export const RetrySchema = closed({
  maxAttempts: Type.Optional(Type.Integer()),
  backoff: Type.Optional(Type.Union([Type.Literal('fixed'), Type.Literal('exponential')])),
  delay: Type.Optional(Duration),
  maxDelay: Type.Optional(Duration),
  jitter: Type.Optional(Type.Boolean()),
  nonRetryable: Type.Optional(Type.Array(Type.String({ maxLength: 200 }), { maxItems: 100 })),
});

const jobFields = {
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  group: Type.Optional(Name),
  handler: Type.String({ minLength: 1, maxLength: 200 }),
  params: Type.Optional(Params),
  trigger: TriggerSchema,
  retry: Type.Optional(RetrySchema),
  timeout: Type.Optional(Duration),
  priority: Type.Optional(Type.Integer()),
  paused: Type.Optional(Type.Boolean()),
  schedule: Type.Optional(ScheduleSchema),
  // Workers at scale ----
  // The strategy is a string here: compileDispatch answers INVALID_ROUTING with the list of strategies.
  routing: Type.Optional(
    closed({
      strategy: Type.String({ minLength: 1, maxLength: 64 }),
      key: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
      selector: Type.Optional(
        Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 256 }), { maxProperties: 32 }),
      ),
    }),
  ),
  maxConcurrency: Type.Optional(Type.Integer()),
  rateLimit: Type.Optional(closed({ limit: Type.Integer(), per: Duration })),
  scheduleToStartTimeout: Type.Optional(Duration),
  task: Type.Optional(TaskSchema),
};

// The handler may be left out for a job with a task (compileJob checks).
export const JobSpecSchema = closed({ name: Name, ...jobFields, handler: Type.Optional(jobFields.handler) });

export const JobPatchSchema = closed({
  ...jobFields,
  handler: Type.Optional(jobFields.handler),
  trigger: Type.Optional(TriggerSchema),
});

export const TriggerRequestSchema = closed({
  params: Type.Optional(Params),
  mergeParams: Type.Optional(Type.Boolean()),
  priority: Type.Optional(Type.Integer()),
  idempotencyKey: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
});

export const TriggerBatchSchema = closed({
  runs: Type.Array(TriggerRequestSchema, { minItems: 1, maxItems: 1000 }),
});

export const NameParam = closed({ name: Name });
export const IdParam = closed({ id: Type.Integer({ minimum: 1 }) });
export const WorkerParam = closed({ id: Type.String({ minLength: 1, maxLength: 128 }) });

export const Limit = Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 }));
export const JobQuery = closed({
  group: Type.Optional(Name),
  limit: Limit,
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
});
export const RunQuery = closed({
  job: Type.Optional(Name),
  status: Type.Optional(
    Type.Union(
      ['queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled'].map((s) => Type.Literal(s)),
    ),
  ),
  worker: Type.Optional(Type.String({ maxLength: 128 })),
  limit: Limit,
  cursor: Type.Optional(Type.String({ maxLength: 32 })),
  since: Type.Optional(Type.String({ maxLength: 64 })),
  until: Type.Optional(Type.String({ maxLength: 64 })),
});

const AttemptRef = closed({ runId: Type.Integer({ minimum: 1 }), attempt: Type.Integer({ minimum: 1 }) });
const RunErrorSchema = closed({
  name: Type.String({ maxLength: 200 }),
  message: Type.String({ maxLength: 8192 }),
  stack: Type.Optional(Type.String({ maxLength: 16384 })),
});

export const RegisterSchema = closed({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  group: Name,
  handlers: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { maxItems: 1000 }),
  capacity: Type.Integer({ minimum: 1, maximum: 10_000 }),
  labels: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 256 }))),
  version: Type.Optional(Type.String({ maxLength: 64 })),
  host: Type.Optional(Type.String({ maxLength: 256 })),
});

/** A worker's poll number (`PollRequest.seq`, `HeartbeatRequest.polled`): a safe integer. */
const PollSeq = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });

export const HeartbeatSchema = closed({
  running: Type.Array(AttemptRef, { maxItems: 10_000 }),
  polled: Type.Optional(PollSeq),
});

export const PollSchema = closed({
  max: Type.Integer({ minimum: 1, maximum: 1000 }),
  waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 120_000 })),
  ahead: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000 })),
  seq: Type.Optional(PollSeq),
});

export const ReportSchema = closed({
  reports: Type.Array(
    Type.Union([
      closed({
        ...AttemptRef.properties,
        outcome: Type.Literal('succeeded'),
        result: Type.Optional(Type.Unknown()),
      }),
      closed({
        ...AttemptRef.properties,
        outcome: Type.Union([Type.Literal('failed'), Type.Literal('timed_out')]),
        error: RunErrorSchema,
        retryable: Type.Optional(Type.Boolean()),
        retryAfterMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 86_400_000 })),
      }),
    ]),
    { minItems: 1, maxItems: 1000 },
  ),
});

export const SkippedQuery = closed({
  limit: Limit,
  cursor: Type.Optional(Type.String({ maxLength: 32 })),
});
export const PreviewQuery = closed({
  count: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
});
export const PreviewRequestSchema = closed({
  trigger: TriggerSchema,
  schedule: Type.Optional(ScheduleSchema),
  count: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  from: Type.Optional(Type.String({ maxLength: 64 })),
});

export const BackfillSchema = closed({
  from: Type.String({ maxLength: 64 }),
  to: Type.String({ maxLength: 64 }),
  overlap: Type.Optional(Type.Union([Type.Literal('allow'), Type.Literal('buffer-all')])),
  max: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
});

const LocalDate = Type.String({ maxLength: 10 });
export const CalendarSchema = closed({
  name: Name,
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  timezone: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  dates: Type.Optional(Type.Array(LocalDate, { maxItems: 1000 })),
  periods: Type.Optional(Type.Array(closed({ from: LocalDate, to: LocalDate }), { maxItems: 1000 })),
  weekdays: Type.Optional(Type.Array(Type.Integer({ minimum: 0, maximum: 6 }), { maxItems: 7 })),
  cron: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
});
export const CalendarBodySchema = closed({ ...CalendarSchema.properties, name: Type.Optional(Name) });

export type Schema = TSchema;
