import { Type } from '@sinclair/typebox';
import {
  closed,
  DurationSchema,
  ItemsSchema,
  JsonObjectSchema,
  JsonSchema,
  literals,
  NameSchema,
  nullable,
  ResourceAmountsSchema,
  ResourceSpecSchema,
} from './common.ts';
import { TaskAnswer } from './jobs.ts';
import { LOG_MESSAGE_MAX_CHARS, LogLevelSchema, ShardSchema } from './runs.ts';

/** Schemas of workers: the worker protocol, the fleet and the cluster's nodes. */

/** The most a concurrency limit (of a job or a group) may be. */
export const MAX_CONCURRENCY_LIMIT = 100_000;

export const WorkerParam = closed({ id: Type.String({ minLength: 1, maxLength: 128 }) });

/** A run id is a store's bigint that JSON numbers carry exactly; an attempt number, a 32-bit integer. */
const AttemptRefFields = {
  runId: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
  attempt: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }),
};
export const AttemptRefSchema = closed(AttemptRefFields);

export const RegisterRequestSchema = closed({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  group: NameSchema,
  handlers: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { maxItems: 1000 }),
  capacity: Type.Integer({ minimum: 1, maximum: 10_000 }),
  labels: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 256 }))),
  version: Type.Optional(Type.String({ maxLength: 64 })),
  host: Type.Optional(Type.String({ maxLength: 256 })),
  /**
   * What the worker has for runs that request resources: `{ cpu: 8, memory: 17179869184, gpu: 2 }`
   * (cpu in cores, memory in bytes or `'16Gi'`, custom resources in units). Absent: nothing, so it
   * takes only runs that request none (docs/workers.md#resource-based-scheduling).
   */
  resources: Type.Optional(ResourceSpecSchema),
});

/** A host's load, as a worker's heartbeat reports it. */
export const WorkerLoadSchema = closed({
  /** The 1-minute load average. */
  loadAverage: Type.Number({ minimum: 0, maximum: 1_000_000 }),
  /** CPUs of the host. */
  cpus: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
  /** Bytes. */
  freeMemory: Type.Number({ minimum: 0, maximum: 2 ** 53 }),
  totalMemory: Type.Number({ minimum: 0, maximum: 2 ** 53 }),
});

export const RegisterResponseSchema = Type.Object({
  workerId: Type.String(),
  /** The worker must heartbeat at least this often. */
  heartbeatMs: Type.Integer(),
  /** Running attempts are lost when no heartbeat arrived for this long. */
  leaseMs: Type.Integer(),
  /** Longest wait of one poll. */
  pollWaitMs: Type.Integer(),
});

/** A worker's poll number (`PollRequest.seq`, `HeartbeatRequest.polled`): a safe integer. */
const PollSeqSchema = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });

export const HeartbeatRequestSchema = closed({
  /** Every attempt the worker holds: running, held for its instant, or with a report not acknowledged yet. */
  running: Type.Array(AttemptRefSchema, { maxItems: 10_000 }),
  /**
   * Every poll up to this number (`PollRequest.seq`) was answered or abandoned, and `running` is
   * the whole list: the node gives back (`lost`) the attempts those polls claimed for this worker
   * that `running` does not name, whose answer never reached it. Absent: nothing is given back.
   */
  polled: Type.Optional(PollSeqSchema),
  /** The host's load now: `least-loaded` routing weighs it (docs/workers.md#resource-based-scheduling). */
  load: Type.Optional(WorkerLoadSchema),
});

/**
 * The node's clock as it answered: `time`, milliseconds on a clock of the node process that never
 * steps, and `id`, which names that clock (one per node process). With the instants the request
 * left and its answer arrived, each answer bounds the offset between the node's clock and the
 * worker's (docs/workers.md#fire-ahead-prefetch).
 */
const NodeClockSchema = Type.Object({
  id: Type.String({ maxLength: 64 }),
  time: Type.Number({ minimum: 0 }),
});

export const HeartbeatResponseSchema = Type.Object({
  /** Attempts the worker should stop: cancelled, or no longer its own (fenced out). */
  cancel: Type.Array(Type.Object({ runId: Type.Integer(), attempt: Type.Integer() })),
  nodeClock: Type.Optional(NodeClockSchema),
});

export const ReportErrorSchema = closed({
  name: Type.String({ maxLength: 200 }),
  message: Type.String({ maxLength: LOG_MESSAGE_MAX_CHARS }),
  stack: Type.Optional(Type.String({ maxLength: 16384 })),
});

export const ReportSchema = Type.Union([
  closed({
    ...AttemptRefFields,
    outcome: Type.Literal('succeeded'),
    result: Type.Optional(JsonSchema),
  }),
  closed({
    ...AttemptRefFields,
    /** `timed_out`: the worker stopped the handler at its time limit. */
    outcome: literals(['failed', 'timed_out'] as const),
    error: ReportErrorSchema,
    /** The handler asked for no retry (`NonRetryableError`). */
    retryable: Type.Optional(Type.Boolean()),
    /** The handler asked to retry after this many ms (`RetryAfterError`). */
    retryAfterMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 86_400_000 })),
  }),
]);

export const ReportRequestSchema = closed({
  reports: Type.Array(ReportSchema, { minItems: 1, maxItems: 1000 }),
});

export const ReportResultSchema = Type.Object({
  runId: Type.Integer(),
  attempt: Type.Integer(),
  ok: Type.Boolean(),
  code: Type.Optional(Type.String()),
});

export const ReportResponseSchema = Type.Object({
  /** One entry per report, in order: `ok`, or the code of why it changed nothing. */
  results: Type.Array(ReportResultSchema),
});

export const PollRequestSchema = closed({
  /** Free slots: the most runs to hand out. */
  max: Type.Integer({ minimum: 1, maximum: 1000 }),
  /** How long to wait for work when none is ready; capped by the node. */
  waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 120_000 })),
  /** Fire ahead: up to this many runs that become available within the node's fire-ahead window. */
  ahead: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000 })),
  /**
   * The worker's number of this poll, increasing from 1: the node keeps it with each attempt the
   * poll claims, so that a heartbeat's `polled` can tell the claims whose answer was lost.
   */
  seq: Type.Optional(PollSeqSchema),
  /**
   * Reports of attempts that ended, sent with the poll instead of a request of their own: the node
   * applies them as `POST …/report` does, beside the claim, and answers their `results`.
   */
  reports: Type.Optional(Type.Array(ReportSchema, { minItems: 1, maxItems: 1000 })),
});

export const AssignmentSchema = Type.Object({
  runId: Type.Integer(),
  attempt: Type.Integer(),
  jobName: Type.String(),
  handler: Type.String(),
  params: JsonObjectSchema,
  fireTime: nullable(Type.String()),
  /** Time limit of this attempt in ms. */
  timeout: Type.Integer(),
  maxAttempts: Type.Integer(),
  /** A built-in task (`handler` is `kairos:shell` or `kairos:http`), durations in ms. */
  task: Type.Optional(TaskAnswer),
  /** A shard of a broadcast fire: this run's index from 0, and how many shards the fire has. */
  shard: Type.Optional(ShardSchema),
  /**
   * Fire ahead: start the handler this many ms after the answer's `nodeClock.time` (without
   * `nodeClock`, after the answer arrived). Absent: start at once.
   */
  startInMs: Type.Optional(Type.Integer()),
  /** W3C trace context of the attempt's parent span (the dispatch); absent when the run is not traced. */
  traceparent: Type.Optional(Type.String()),
  tracestate: Type.Optional(Type.String()),
});

export const PollResponseSchema = Type.Object({
  runs: Type.Array(AssignmentSchema),
  /** The poll's `reports`, one entry each, in order: `ok`, or the code of why it changed nothing. */
  results: Type.Optional(Type.Array(ReportResultSchema)),
  /** The node's clock when it counted the runs' `startInMs`. */
  nodeClock: Type.Optional(NodeClockSchema),
});

export const WorkerLogEntrySchema = closed({
  ...AttemptRefFields,
  level: LogLevelSchema,
  message: Type.String({ maxLength: LOG_MESSAGE_MAX_CHARS }),
  fields: Type.Optional(JsonObjectSchema),
  /** RFC 3339 with an offset, the worker's clock. */
  time: Type.String({ minLength: 1, maxLength: 40 }),
});

export const WorkerLogsRequestSchema = closed({
  logs: Type.Array(WorkerLogEntrySchema, { maxItems: 1000 }),
  progress: Type.Optional(
    Type.Array(
      closed({
        ...AttemptRefFields,
        value: Type.Number({ minimum: 0, maximum: 1 }),
        message: Type.Optional(Type.String({ maxLength: 1000 })),
      }),
      { maxItems: 1000 },
    ),
  ),
});

export const WorkerLogsResponseSchema = Type.Object({
  /** Lines stored; lines of attempts that are not this worker's, or over the run's limit, are dropped. */
  accepted: Type.Integer(),
});

// The fleet ------------------------------------------------------------------

export const WorkerStatusSchema = literals(['active', 'draining', 'lost', 'stopped'] as const);

export const WorkerInfoSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  group: Type.String(),
  handlers: Type.Array(Type.String()),
  capacity: Type.Integer(),
  labels: Type.Record(Type.String(), Type.String()),
  version: Type.String(),
  host: Type.String(),
  status: WorkerStatusSchema,
  running: Type.Integer(),
  registeredAt: Type.String(),
  lastHeartbeatAt: Type.String(),
  /** What it advertised (`cpu` in cores, `memory` in bytes); null: nothing. */
  resources: Type.Optional(nullable(ResourceAmountsSchema)),
  /**
   * An active or draining worker that advertised resources: what the runs it runs now request in
   * all (each its own or its job's request), as a claim subtracts it from `resources`. `{}`: none.
   */
  resourcesInUse: Type.Optional(ResourceAmountsSchema),
  /** The host's load it last reported; null: never. */
  load: Type.Optional(nullable(WorkerLoadSchema)),
});

export const WorkerListSchema = ItemsSchema(WorkerInfoSchema);

export const WorkerQuery = closed({
  /** Lost and stopped workers too (default: only active and draining ones). */
  all: Type.Optional(Type.Boolean()),
});

export const NodeInfoSchema = Type.Object({
  /** The node id (`KAIROS_NODE_ID`). Two processes started with the same one are listed apart. */
  id: Type.String(),
  /**
   * A random token of the node's process, unique to it: the owner name of its partition leases.
   * A restarted node has a new one.
   */
  instance: Type.String(),
  /** The URL the node serves on. */
  address: Type.String(),
  version: Type.String(),
  /**
   * `gone`: no heartbeat within the partition lease. A gone node is listed for 5 partition leases
   * more (15 s by default), then forgotten.
   */
  status: literals(['alive', 'gone'] as const),
  /** Trigger partitions it owns (none once gone). */
  partitions: Type.Array(Type.Integer()),
  /** Its wall clock minus the store's clock, in ms. */
  clockSkewMs: Type.Number(),
  startedAt: Type.String(),
  lastHeartbeatAt: Type.String(),
});

export const NodeListSchema = ItemsSchema(NodeInfoSchema);

export const HealthSchema = Type.Object({
  status: Type.Literal('ok'),
  version: Type.String(),
  store: literals(['sqlite', 'postgres'] as const),
  nodeId: Type.String(),
});

/** `GET /livez`: the node's process answers. */
export const LiveSchema = Type.Object({ status: Type.Literal('ok') });

/** `GET /readyz`: the store answers and holds every migration this node ships. */
export const ReadySchema = Type.Object({
  status: Type.Literal('ready'),
  store: literals(['sqlite', 'postgres'] as const),
  /** The highest migration applied to the store. */
  schemaVersion: Type.Integer(),
});

export const GroupParam = closed({
  name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' }),
});

/** A group's limits in one namespace: they count and cap only that namespace's runs of the group. */
export const GroupInfoSchema = Type.Object({
  /** The namespace whose group this is (the request's). */
  namespace: Type.String(),
  group: Type.String(),
  /** The most runs of the group in its namespace running at once, cluster-wide; null for no limit. */
  maxConcurrency: nullable(Type.Integer()),
  /** The most runs of the group in its namespace started per `per` (ms), cluster-wide; null for no limit. */
  rateLimit: nullable(Type.Object({ limit: Type.Integer(), per: Type.Integer() })),
  updatedAt: Type.String(),
});

export const GroupListSchema = ItemsSchema(GroupInfoSchema);

// No `null` alternatives: the node's Ajv coerces 0 to null, which would turn a bad limit into none.
export const GroupLimitRequestSchema = closed({
  maxConcurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_CONCURRENCY_LIMIT })),
  rateLimit: Type.Optional(closed({ limit: Type.Integer(), per: DurationSchema })),
});
