import { Type } from '@sinclair/typebox';
import {
  closed,
  JsonObjectSchema,
  JsonSchema,
  literals,
  NameSchema,
  nullable,
  PageSchema,
  ResourceAmountsSchema,
} from './common.ts';
import { LimitSchema } from './jobs.ts';

/** Schemas of runs, their attempts and their logs. */

export const RunStatusSchema = literals([
  'queued',
  'running',
  'succeeded',
  'failed',
  'timed_out',
  'cancelled',
] as const);
export const RunCauseSchema = literals(['schedule', 'manual', 'dependency', 'backfill', 'workflow'] as const);
export const AttemptStatusSchema = literals([
  'running',
  'succeeded',
  'failed',
  'timed_out',
  'lost',
  'cancelled',
] as const);

export const RunErrorSchema = Type.Object({
  message: Type.String(),
  /** `error.name` as the handler threw it, or a Kairos reason: `Timeout`, `WorkerLost`, `Cancelled`. */
  name: Type.String(),
  stack: Type.Optional(Type.String()),
});

export const AttemptSchema = Type.Object({
  attempt: Type.Integer(),
  workerId: Type.String(),
  status: AttemptStatusSchema,
  startedAt: Type.String(),
  finishedAt: nullable(Type.String()),
  error: nullable(RunErrorSchema),
  /**
   * Present when the worker reported this attempt's end after the node had ended it (`lost`,
   * `timed_out`, `cancelled`): the attempt was fenced out but ran on, so the run executed more than
   * once. What the worker reported, and when.
   */
  lateReport: Type.Optional(
    Type.Object({
      outcome: literals(['succeeded', 'failed', 'timed_out'] as const),
      reportedAt: Type.String(),
      error: nullable(RunErrorSchema),
    }),
  ),
});

export const ShardSchema = Type.Object({ index: Type.Integer(), total: Type.Integer() });

/** Why a queued run has not started (core/queue-wait.ts of the server decides). */
export const QueueWaitSchema = Type.Object({
  reason: literals([
    'not_yet_available',
    'no_live_worker_in_group',
    'no_live_worker_for_handler',
    'no_worker_with_resources',
    'assigned_worker',
    'all_slots_busy',
    'next_poll',
  ] as const),
  /** The reason for people: `no live worker in group reports`. */
  message: Type.String(),
  /**
   * `no_worker_with_resources`: what the run requests, and per resource how much more it needs than
   * the live worker that has the most of it (`cpu` in cores, `memory` in bytes).
   */
  resources: Type.Optional(Type.Object({ request: ResourceAmountsSchema, missing: ResourceAmountsSchema })),
});

export const RunSchema = Type.Object({
  id: Type.Integer(),
  jobId: Type.Integer(),
  jobName: Type.String(),
  group: Type.String(),
  handler: Type.String(),
  cause: RunCauseSchema,
  /** The nominal fire time for scheduled runs. */
  fireTime: nullable(Type.String()),
  params: JsonObjectSchema,
  priority: Type.Integer(),
  status: RunStatusSchema,
  /** Number of attempts started so far. */
  attempt: Type.Integer(),
  maxAttempts: Type.Integer(),
  timeout: Type.Integer(),
  workerId: nullable(Type.String()),
  createdAt: Type.String(),
  /** Not dispatched before this instant (retry backoff). */
  availableAt: Type.String(),
  startedAt: nullable(Type.String()),
  finishedAt: nullable(Type.String()),
  result: JsonSchema,
  error: nullable(RunErrorSchema),
  /** A shard of a broadcast fire: its index from 0 and the number of shards. */
  shard: Type.Optional(ShardSchema),
  /** A queued routed run: the worker it waits for (routing decided it). */
  assignedWorkerId: Type.Optional(Type.String()),
  /**
   * What the run needs free on its worker: its own request (a workflow step's `resources`), else
   * its job's (`cpu` in cores, `memory` in bytes). Absent: nothing but a slot.
   */
  resources: Type.Optional(ResourceAmountsSchema),
  attempts: Type.Optional(Type.Array(AttemptSchema)),
  /**
   * A queued run, read alone (`GET /v1/runs/:id`): why it has not started yet. `no_live_worker_in_group`,
   * `no_live_worker_for_handler` and `no_worker_with_resources` say no live worker can take it.
   */
  waiting: Type.Optional(QueueWaitSchema),
});

const {
  params: _params,
  result: _result,
  attempts: _attempts,
  waiting: _waiting,
  ...summaryFields
} = RunSchema.properties;

/**
 * A run in a list: without its params and result, which can be 64 KiB each (`GET /v1/runs/:id`
 * has them). With `include=params` a list carries them too, and a page ends early at its size bound.
 */
export const RunSummarySchema = Type.Object({
  ...summaryFields,
  params: Type.Optional(JsonObjectSchema),
  result: Type.Optional(JsonSchema),
});

export const RunPageSchema = PageSchema(RunSummarySchema);

export const IdParam = closed({ id: Type.Integer({ minimum: 1 }) });

export const RunQuery = closed({
  job: Type.Optional(NameSchema),
  status: Type.Optional(RunStatusSchema),
  worker: Type.Optional(Type.String({ maxLength: 128 })),
  limit: LimitSchema,
  cursor: Type.Optional(Type.String({ maxLength: 32 })),
  /** Only runs created at or after this RFC 3339 instant. */
  since: Type.Optional(Type.String({ maxLength: 64 })),
  /** Only runs created before this RFC 3339 instant. */
  until: Type.Optional(Type.String({ maxLength: 64 })),
  /** `params`: list each run's params and result too (a page then ends early at its size bound). */
  include: Type.Optional(literals(['params'] as const)),
});

// Logs -----------------------------------------------------------------------

/** One line's message, in characters (the worker SDK cuts longer ones). */
export const LOG_MESSAGE_MAX_CHARS = 8192;

export const LogLevelSchema = literals(['debug', 'info', 'warn', 'error'] as const);

export const RunLogLineSchema = Type.Object({
  seq: Type.Integer(),
  attempt: Type.Integer(),
  time: Type.String(),
  level: LogLevelSchema,
  message: Type.String(),
  fields: Type.Optional(JsonObjectSchema),
});

export const RunProgressSchema = Type.Object({
  attempt: Type.Integer(),
  /** From 0 to 1. */
  value: Type.Number(),
  message: nullable(Type.String()),
  updatedAt: Type.String(),
});

export const RunLogPageSchema = Type.Object({
  items: Type.Array(RunLogLineSchema),
  /** Pass as `after` for the next page; null when this page reached the end (for now). */
  next: nullable(Type.Integer()),
  progress: nullable(RunProgressSchema),
  /** The run ended: no more lines will come. */
  finished: Type.Boolean(),
});

export const LogQuery = closed({
  after: Type.Optional(Type.Integer({ minimum: 0 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000, default: 1000 })),
});

export const LogStreamQuery = closed({ after: Type.Optional(Type.Integer({ minimum: 0 })) });
