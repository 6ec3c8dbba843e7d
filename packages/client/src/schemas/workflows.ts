import { type Static, Type } from '@sinclair/typebox';
import {
  closed,
  DurationSchema,
  JsonObjectSchema,
  JsonSchema,
  literals,
  NameSchema,
  nullable,
  PageSchema,
  ResourceAmountsSchema,
  ResourceSpecSchema,
} from './common.ts';
import {
  LimitSchema,
  RetryPolicySchema,
  RetrySpecSchema,
  SchedulePolicySchema,
  ScheduleSpecSchema,
  TaskAnswer,
  TaskBody,
  TaskSpecSchema,
  TriggerAnswer,
  TriggerSpecSchema,
} from './jobs.ts';

/** Schemas of workflows (docs/workflows.md): definitions, instances and their steps. */

/** When an edge lets its child run: how the parent ended, or a value of its result after a success. */
export const EdgeConditionSchema = Type.Union([
  literals(['success', 'failure', 'always'] as const),
  closed({
    /** A dotted path into the parent's result (`a.b.0`). */
    path: Type.String({ minLength: 1, maxLength: 256 }),
    /** The JSON value the result must hold there. */
    equals: JsonSchema,
  }),
]);

/**
 * An edge condition in an answer: `success`, `failure`, `always`, or `{ path, equals }`. Not a union
 * (`anyOf`): the serializer would validate each value against every branch.
 */
const EdgeConditionViewSchema = Type.Unsafe<Static<typeof EdgeConditionSchema>>({
  description: "'success', 'failure', 'always', or { path, equals }",
});

export const WorkflowEdgeSpecSchema = Type.Union([
  /** A parent step's id: runs after its success. */
  Type.String({ minLength: 1, maxLength: 64 }),
  closed({ step: Type.String({ minLength: 1, maxLength: 64 }), on: Type.Optional(EdgeConditionSchema) }),
]);

/**
 * A map step (docs/workflows.md#map-and-reduce): one run per item of a list, at most `maxParallel`
 * queued or running at once; the step's result is the items' results in index order.
 */
export const WorkflowMapSpecSchema = closed({
  /** The parent step whose result holds the list, or `$context` (the instance context). */
  from: Type.String({ minLength: 1, maxLength: 64 }),
  /** A dotted path into that result (`a.b`); none: the result itself is the list. */
  path: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  /** How many item runs may be queued or running at once. Default 10, at most 1,000. */
  maxParallel: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  /** The most items the list may hold (a longer list fails the step). Default and at most 10,000. */
  maxItems: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })),
  /** How many items may fail with the step still succeeding (their results are null). Default 0. */
  tolerateFailures: Type.Optional(Type.Integer({ minimum: 0, maximum: 10000 })),
});

export const WorkflowStepSpecSchema = closed({
  id: Type.String({ minLength: 1, maxLength: 64 }),
  /** A handler to run (with group, retry, timeout, priority); or `job`, or `task`. */
  handler: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  /** An existing job of the namespace to run, its params merged under the step's; or `handler`, or `task`. */
  job: Type.Optional(NameSchema),
  /**
   * A built-in task to run, a shell command or an HTTP call (as a job's `task`), with the step's
   * own group, retry, timeout and priority; or `handler`, or `job`. Not on a map step.
   */
  task: Type.Optional(TaskSpecSchema),
  params: Type.Optional(JsonObjectSchema),
  group: Type.Optional(NameSchema),
  retry: Type.Optional(RetrySpecSchema),
  timeout: Type.Optional(DurationSchema),
  priority: Type.Optional(Type.Integer()),
  /** `handler` and `task` steps: what the step's run needs free on its worker (as a job's `resources`). */
  resources: Type.Optional(ResourceSpecSchema),
  /** Incoming edges; none: the step runs when the instance starts. */
  after: Type.Optional(Type.Array(WorkflowEdgeSpecSchema, { maxItems: 1000 })),
  /** `all` (default): every edge met; `any`: one edge met. */
  join: Type.Optional(literals(['all', 'any'] as const)),
  /** Runs the step once per item of a list (a map step). */
  map: Type.Optional(WorkflowMapSpecSchema),
});

export const WorkflowSpecSchema = closed({
  name: NameSchema,
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  steps: Type.Array(WorkflowStepSpecSchema, { maxItems: 1000 }),
  /** When instances start by themselves: a job's trigger but `after` and `delay`; default manual. */
  trigger: Type.Optional(TriggerSpecSchema),
  /** Misfire, overlap, window, jitter, maxRuns, calendars, as for a job (overlap judges unfinished instances). */
  schedule: Type.Optional(ScheduleSpecSchema),
});
/** The request form of a step: its task in the request form, checked by the node (`INVALID_TASK`). */
export const WorkflowStepBody = closed({
  ...WorkflowStepSpecSchema.properties,
  task: Type.Optional(TaskBody),
});
/** The body of `PUT /v1/workflows/:name`: its name comes from the path. */
export const WorkflowBody = closed({
  ...WorkflowSpecSchema.properties,
  steps: Type.Array(WorkflowStepBody, { maxItems: 1000 }),
  name: Type.Optional(NameSchema),
});

export const WorkflowStepSchema = Type.Object({
  id: Type.String(),
  handler: Type.Optional(Type.String()),
  job: Type.Optional(Type.String()),
  /** A built-in task (`shell` or `http`); its run's handler is `kairos:<kind>`. */
  task: Type.Optional(TaskAnswer),
  params: JsonObjectSchema,
  group: Type.Optional(Type.String()),
  retry: Type.Optional(RetryPolicySchema),
  timeout: Type.Optional(Type.Integer()),
  priority: Type.Optional(Type.Integer()),
  resources: Type.Optional(ResourceAmountsSchema),
  after: Type.Array(Type.Object({ step: Type.String(), on: EdgeConditionViewSchema })),
  join: literals(['all', 'any'] as const),
  map: Type.Optional(
    Type.Object({
      from: Type.String(),
      path: Type.Optional(Type.String()),
      maxParallel: Type.Integer(),
      maxItems: Type.Integer(),
      tolerateFailures: Type.Integer(),
    }),
  ),
});

export const WorkflowSchema = Type.Object({
  name: Type.String(),
  namespace: Type.String(),
  description: Type.String(),
  /** Bumped by every replace; an instance keeps the version it started with. */
  version: Type.Integer(),
  steps: Type.Array(WorkflowStepSchema),
  trigger: TriggerAnswer,
  schedule: SchedulePolicySchema,
  /** A paused workflow's trigger does not fire (`POST /v1/workflows/:name/pause`); starts through the API still work. */
  paused: Type.Boolean(),
  /** The next fire time, or null when the trigger has no more fires (or is manual). */
  nextFireAt: nullable(Type.String()),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});

export const WorkflowPageSchema = PageSchema(WorkflowSchema);

export const WorkflowInstanceStateSchema = literals([
  'running',
  'paused',
  'succeeded',
  'failed',
  'cancelled',
] as const);
export const WorkflowStepStateSchema = literals([
  'waiting',
  'ready',
  'succeeded',
  'failed',
  'skipped',
  'cancelled',
] as const);

export const WorkflowInstanceSchema = Type.Object({
  id: Type.Integer(),
  workflow: Type.String(),
  namespace: Type.String(),
  version: Type.Integer(),
  state: WorkflowInstanceStateSchema,
  context: JsonObjectSchema,
  /** What started it: `manual` (the API) or `schedule` (a fire of the workflow's trigger). */
  cause: literals(['manual', 'schedule'] as const),
  /** The fire time that started it; null for a `manual` start. */
  scheduledFor: nullable(Type.String()),
  createdAt: Type.String(),
  startedAt: Type.String(),
  finishedAt: nullable(Type.String()),
  /**
   * Each step's state and its run (null until it is queued, for skipped steps, and for map steps,
   * whose runs are their items'; a retry puts it back to null). `skipped: true` on a step skipped by
   * hand (`succeeded`, result null). `error` says why a step failed without a failed run of its own
   * (docs/errors.md#workflow-step-failures), null otherwise.
   */
  steps: Type.Array(
    Type.Object({
      id: Type.String(),
      state: WorkflowStepStateSchema,
      runId: nullable(Type.Integer()),
      /** When its run's first attempt started; null before, when the run is gone (retention), and for a map step. */
      startedAt: nullable(Type.String()),
      /** When its run ended for good; null while it may still run, and when the run is gone. */
      finishedAt: nullable(Type.String()),
      /** The attempts its run has started: 0 before its first, and when the run is gone. */
      attempts: Type.Integer(),
      /** True when an operator skipped it by hand (it counts as succeeded with a null result). */
      skipped: Type.Optional(Type.Boolean()),
      error: Type.Optional(nullable(Type.Object({ code: Type.String(), message: Type.String() }))),
    }),
  ),
});

/** The path of a step's repair: `/v1/workflow-instances/:id/steps/:step/{rerun,skip}`. */
export const WorkflowStepParam = closed({
  id: Type.Integer({ minimum: 1 }),
  step: Type.String({ minLength: 1, maxLength: 64 }),
});

export const WorkflowStartSchema = closed({
  /** Given to every step as `params.$workflow.context`. */
  context: Type.Optional(JsonObjectSchema),
  /** A second start with the same key answers the instance the first started. */
  idempotencyKey: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
});

export const WorkflowInstancePageSchema = PageSchema(WorkflowInstanceSchema);

/** A page of workflows (cursor: the last name) or of one workflow's instances (cursor: the last id). */
export const WorkflowPageQuery = closed({
  limit: LimitSchema,
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
});

/** A map step's item state (docs/workflows.md#the-items-of-a-map-step). */
export const WorkflowMapItemStateSchema = literals([
  'waiting',
  'ready',
  'succeeded',
  'failed',
  'skipped',
  'cancelled',
] as const);

/** `GET /v1/workflow-instances/:id/steps/:step/items`: a page of a map step's items, in index order. */
export const WorkflowMapItemQuery = closed({
  limit: LimitSchema,
  /** The `nextCursor` of the previous page: the index the page starts from. */
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
  /** Only the items in this state. */
  state: Type.Optional(WorkflowMapItemStateSchema),
  /** `result`: each item carries its result (a page then ends early at its size bound). */
  include: Type.Optional(literals(['result'] as const)),
});

export const WorkflowMapItemSchema = Type.Object({
  /** Its place in the list, from 0. */
  index: Type.Integer(),
  state: WorkflowMapItemStateSchema,
  /** Its run (in the step's current fan-out); null while waiting and for an item that never ran. */
  runId: nullable(Type.Integer()),
  /** Attempts its run started; 0 before its first, and once retention deleted the run. */
  attempts: Type.Integer(),
  /** The size of its result in bytes of JSON once it succeeded; null otherwise. */
  resultBytes: nullable(Type.Integer()),
  /** Its result, with `include=result` only. */
  result: Type.Optional(JsonSchema),
  /** Why its run failed (the run's error); null otherwise, and once retention deleted the run. */
  error: nullable(Type.Object({ name: Type.String(), message: Type.String() })),
});

export const WorkflowMapItemPageSchema = Type.Object({
  items: Type.Array(WorkflowMapItemSchema),
  nextCursor: nullable(Type.String()),
  /** Every item of the step by state, whatever the page and its filter. */
  counts: Type.Object({
    waiting: Type.Integer(),
    ready: Type.Integer(),
    succeeded: Type.Integer(),
    failed: Type.Integer(),
    skipped: Type.Integer(),
    cancelled: Type.Integer(),
  }),
});
