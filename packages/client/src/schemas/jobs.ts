import { Type } from '@sinclair/typebox';
import {
  closed,
  DurationSchema,
  InstantSchema,
  JsonObjectSchema,
  kindsAnswer,
  literals,
  NameSchema,
  nullable,
  oneObjectOfKinds,
  PageSchema,
  ResourceAmountsSchema,
  ResourceSpecSchema,
} from './common.ts';

/** Schemas of jobs: specs as users send them, jobs as the API answers them. */

export const DstPolicySchema = literals(['once-per-day', 'literal'] as const);
export const DependencyConditionSchema = literals(['success', 'failure', 'always'] as const);

/** The kinds of trigger, one object each. */
export const TriggerKindSchemas = [
  closed({
    kind: Type.Literal('cron'),
    /** 5 fields (minute first) or 6 (second first), or a macro like `@daily`. */
    cron: Type.String({ minLength: 1, maxLength: 256 }),
    /** An IANA zone; default UTC. */
    timezone: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    dst: Type.Optional(DstPolicySchema),
  }),
  closed({
    kind: Type.Literal('every'),
    every: DurationSchema,
    /** Fires align to this instant (default: when the job was created). */
    startAt: Type.Optional(InstantSchema),
  }),
  closed({ kind: Type.Literal('delay'), delay: DurationSchema }),
  closed({ kind: Type.Literal('at'), at: InstantSchema }),
  closed({ kind: Type.Literal('manual') }),
  closed({
    kind: Type.Literal('after'),
    job: Type.String({ minLength: 1, maxLength: 128 }),
    /** Default `success`. */
    on: Type.Optional(DependencyConditionSchema),
  }),
] as const;
export const TriggerSpecSchema = Type.Union([...TriggerKindSchemas]);
/** The answer form of a trigger (see {@link kindsAnswer}). */
export const TriggerAnswer = kindsAnswer([...TriggerKindSchemas]);
/** The request form of a trigger (see {@link oneObjectOfKinds}). */
export const TriggerBody = oneObjectOfKinds([...TriggerKindSchemas]);

export const RetrySpecSchema = closed({
  maxAttempts: Type.Optional(Type.Integer()),
  backoff: Type.Optional(literals(['fixed', 'exponential'] as const)),
  delay: Type.Optional(DurationSchema),
  maxDelay: Type.Optional(DurationSchema),
  jitter: Type.Optional(Type.Boolean()),
  nonRetryable: Type.Optional(Type.Array(Type.String({ maxLength: 200 }), { maxItems: 100 })),
});

export const RetryPolicySchema = Type.Object({
  maxAttempts: Type.Integer(),
  backoff: literals(['fixed', 'exponential'] as const),
  delay: Type.Integer(),
  maxDelay: Type.Integer(),
  jitter: Type.Boolean(),
  nonRetryable: Type.Array(Type.String()),
});

export const MisfirePolicyKindSchema = literals(['skip', 'run-once', 'catch-up'] as const);
export const OverlapPolicySchema = literals([
  'allow',
  'skip',
  'buffer-one',
  'buffer-all',
  'cancel-previous',
] as const);

// Checked for shape here, for meaning (ranges, instants) by the node's core/schedule-policy.ts.
export const MisfireSpecSchema = closed({
  policy: MisfirePolicyKindSchema,
  /** `catch-up` only: the most missed fires run (the most recent ones). Default 10, at most 1000. */
  maxCatchUp: Type.Optional(Type.Integer()),
  /** `catch-up` only: missed fires older than this are skipped. Default `'1d'`. */
  catchUpWindow: Type.Optional(DurationSchema),
});

export const ScheduleSpecSchema = closed({
  misfire: Type.Optional(MisfireSpecSchema),
  overlap: Type.Optional(OverlapPolicySchema),
  startAt: Type.Optional(InstantSchema),
  endAt: Type.Optional(InstantSchema),
  jitter: Type.Optional(DurationSchema),
  maxRuns: Type.Optional(Type.Integer()),
  calendars: Type.Optional(Type.Array(NameSchema, { maxItems: 20 })),
});

export const SchedulePolicySchema = Type.Object({
  misfire: Type.Object({
    policy: MisfirePolicyKindSchema,
    maxCatchUp: Type.Integer(),
    catchUpWindow: Type.Integer(),
  }),
  overlap: OverlapPolicySchema,
  startAt: nullable(Type.String()),
  endAt: nullable(Type.String()),
  jitter: Type.Integer(),
  maxRuns: nullable(Type.Integer()),
  calendars: Type.Array(Type.String()),
});

/**
 * How long a job's finished runs are kept (docs/retention.md); a field left out or null takes the
 * node's default (`KAIROS_RETENTION_*`). An update changes the fields it names.
 */
export const RetentionSpecSchema = closed({
  /** Succeeded and cancelled runs are deleted this long after they ended; null: the node's default. */
  finished: Type.Optional(Type.Union([Type.Null(), ...DurationSchema.anyOf])),
  /** Failed and timed-out runs are deleted this long after they ended; null: the node's default. */
  failed: Type.Optional(Type.Union([Type.Null(), ...DurationSchema.anyOf])),
  /** Only the newest N finished runs are kept (failed ones stay until `failed` passes); null: no limit. */
  keepLast: Type.Optional(nullable(Type.Integer())),
});

/** A job's own retention, in ms; null fields take the node's default. */
export const RetentionPolicySchema = Type.Object({
  finished: nullable(Type.Integer()),
  failed: nullable(Type.Integer()),
  keepLast: nullable(Type.Integer()),
});

const StringMap = Type.Record(Type.String({ maxLength: 128 }), Type.String({ maxLength: 8192 }));

export const ShellTaskSpecSchema = closed({
  kind: Type.Literal('shell'),
  command: Type.String({ maxLength: 1024 }),
  args: Type.Optional(Type.Array(Type.String({ maxLength: 8192 }), { maxItems: 256 })),
  /** Added to the worker's environment. */
  env: Type.Optional(StringMap),
  cwd: Type.Optional(Type.String({ maxLength: 1024 })),
});

export const HttpMethodSchema = literals(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const);

export const HttpTaskSpecSchema = closed({
  kind: Type.Literal('http'),
  /** Default `GET`. */
  method: Type.Optional(HttpMethodSchema),
  url: Type.String({ maxLength: 4096 }),
  headers: Type.Optional(StringMap),
  body: Type.Optional(Type.String({ maxLength: 65_536 })),
  /** Time limit of the request (the attempt's timeout still applies). Default `'30s'`. */
  timeout: Type.Optional(DurationSchema),
  expectStatus: Type.Optional(Type.Array(Type.Integer(), { maxItems: 50 })),
});

export const TaskSpecSchema = Type.Union([ShellTaskSpecSchema, HttpTaskSpecSchema]);
/** The answer form of a task (see {@link kindsAnswer}). */
export const TaskAnswer = kindsAnswer([ShellTaskSpecSchema, HttpTaskSpecSchema]);
/** The request form of a task; the method is checked by the node, with a message that lists the methods. */
export const TaskBody = oneObjectOfKinds([ShellTaskSpecSchema, HttpTaskSpecSchema], {
  method: Type.Optional(Type.String({ maxLength: 16 })),
});

/** The routing strategies a job may name: which live worker of its group runs a run. */
export const ROUTING_STRATEGIES = [
  /** Any worker of the group that polls first (no routing state; the fastest path). */
  'any',
  'first',
  'last',
  'round-robin',
  'random',
  /** Rendezvous hashing of a key: one key sticks to one worker; a worker leaving moves only its keys. */
  'consistent-hash',
  'least-recently-used',
  'least-frequently-used',
  /** Most free slots. */
  'least-loaded',
  /** The first worker in order that has a free slot. */
  'failover',
  /** The first worker in order not already running this job; waits when every one is. */
  'busy-over',
  /**
   * Sharding broadcast: each fire becomes one run per live worker (shard index and total); a
   * shard whose worker is gone goes to any eligible worker. Decided when the runs are created.
   */
  'broadcast',
] as const;

export const RoutingStrategyNameSchema = literals(ROUTING_STRATEGIES);

const Selector = Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 256 }), {
  maxProperties: 32,
});

export const RoutingSpecSchema = closed({
  strategy: RoutingStrategyNameSchema,
  /** `consistent-hash`: the params field whose value is the key (default: the job name). */
  key: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  /** Only workers whose labels carry all of these, e.g. `{ region: 'eu' }`. */
  selector: Type.Optional(Selector),
});
/** The request form of routing: the node answers INVALID_ROUTING with the list of strategies. */
const RoutingBody = closed({
  ...RoutingSpecSchema.properties,
  strategy: Type.String({ minLength: 1, maxLength: 64 }),
});

export const RateLimitSpecSchema = closed({ limit: Type.Integer(), per: DurationSchema });

/** Dotted paths into params (`db.password`): each segment a key of letters, digits, `_` and `-`. */
export const SecretParamsSchema = Type.Array(
  Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$' }),
  { maxItems: 64 },
);

/** What the API answers in place of a secret value; sent back in an update, it keeps the stored value. */
export const SECRET_MASK = '***';

export const JobSpecSchema = closed({
  name: NameSchema,
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  /** The group of workers that runs this job. Default `'default'`. */
  group: Type.Optional(NameSchema),
  /** The handler name a worker registered (optional with `task`). */
  handler: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  params: Type.Optional(JsonObjectSchema),
  /**
   * Fields of `params` that are secret, as dotted paths (`apiKey`, `db.password`): stored encrypted,
   * answered as `"***"`, given decrypted only to the worker that claims a run (docs/security.md).
   */
  secretParams: Type.Optional(SecretParamsSchema),
  trigger: TriggerSpecSchema,
  retry: Type.Optional(RetrySpecSchema),
  /** Time limit of one attempt. Default `'5m'`. */
  timeout: Type.Optional(DurationSchema),
  /** Higher runs first within a group. Default 0. */
  priority: Type.Optional(Type.Integer()),
  paused: Type.Optional(Type.Boolean()),
  /** Misfire, overlap, window, jitter and run cap (docs/schedules.md). */
  schedule: Type.Optional(ScheduleSpecSchema),
  /** Which worker of the group runs each run. Default: any worker of the group that asks first. */
  routing: Type.Optional(RoutingSpecSchema),
  /** The most runs of this job running at once, across the cluster. Default: no limit. */
  maxConcurrency: Type.Optional(Type.Integer()),
  /** The most runs of this job started per `per`, across the cluster (a token bucket). */
  rateLimit: Type.Optional(RateLimitSpecSchema),
  /** A run that no worker started within this time after it became ready fails. */
  scheduleToStartTimeout: Type.Optional(DurationSchema),
  /**
   * What each run needs free on its worker: `{ cpu: 2, memory: '4Gi', gpu: 1 }`. A run is placed
   * only on a worker whose free capacity fits it. Default: nothing (slots only).
   */
  resources: Type.Optional(ResourceSpecSchema),
  /** A built-in task instead of a handler of yours: a shell command or an HTTP call. */
  task: Type.Optional(TaskSpecSchema),
  /**
   * On a replace or update: the version of the job this change was decided on (as `If-Match`). The
   * change applies only while the job is at that version; 409 `VERSION_CONFLICT` otherwise.
   */
  version: Type.Optional(Type.Integer({ minimum: 1 })),
  /** How long finished runs of this job are kept (default: the node's retention). */
  retention: Type.Optional(RetentionSpecSchema),
  /**
   * Who manages the job: the owner that `kairos apply` records (a name like `team-billing`), so that
   * `--prune` removes only jobs of its own file; null or absent for a job made by hand.
   */
  owner: Type.Optional(nullable(NameSchema)),
  /**
   * The revision of the owner's definition (a number that grows with each release of the code or
   * file that declares the job): a write of the same owner with a lower revision than the job's is
   * refused with 409 `STALE_REVISION`, so the newest definition wins whatever the order of writes.
   */
  revision: Type.Optional(nullable(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }))),
});

/** The request form of a job spec: trigger, task and routing in their request forms. */
export const JobSpecBody = closed({
  ...JobSpecSchema.properties,
  trigger: TriggerBody,
  task: Type.Optional(TaskBody),
  routing: Type.Optional(RoutingBody),
});

const { name: _name, ...patchFields } = JobSpecBody.properties;
/** The request form of a partial update: every field of a spec but the name, all optional. */
export const JobPatchBody = closed({ ...patchFields, trigger: Type.Optional(TriggerBody) });

export const JobSchema = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  description: Type.String(),
  group: Type.String(),
  handler: Type.String(),
  /** Secret fields are answered as `"***"` (see `secretParams`). */
  params: JsonObjectSchema,
  /** The fields of params that are secret (dotted paths). */
  secretParams: Type.Array(Type.String()),
  trigger: TriggerAnswer,
  retry: RetryPolicySchema,
  timeout: Type.Integer(),
  priority: Type.Integer(),
  paused: Type.Boolean(),
  schedule: SchedulePolicySchema,
  /** Runs created by the schedule so far (what `maxRuns` counts). */
  runsFired: Type.Integer(),
  /**
   * Bumped by every change of the job (edit, pause, resume), not by firing; also its `ETag`. Send it
   * back (`If-Match` or `version`) so that a change applies only to the job as you read it.
   */
  version: Type.Integer(),
  routing: Type.Object({
    strategy: RoutingStrategyNameSchema,
    key: nullable(Type.String()),
    selector: Type.Record(Type.String(), Type.String()),
  }),
  maxConcurrency: nullable(Type.Integer()),
  /** `per` in ms. */
  rateLimit: nullable(Type.Object({ limit: Type.Integer(), per: Type.Integer() })),
  /** In ms; null when runs wait for a worker as long as it takes. */
  scheduleToStartTimeout: nullable(Type.Integer()),
  /** What each run requests (`cpu` in cores, `memory` in bytes); null: nothing. */
  resources: nullable(ResourceAmountsSchema),
  /** The built-in task, durations in ms; null for a handler of yours. */
  task: nullable(TaskAnswer),
  /** The job's own retention (ms); null fields take the node's default. */
  retention: RetentionPolicySchema,
  /** Who manages the job (`kairos apply`'s owner); null for a job made by hand. */
  owner: nullable(Type.String()),
  /** The revision of the owner's definition that wrote the job; null without one. */
  revision: nullable(Type.Integer()),
  /** The next fire time, or null when the trigger has no more fires. */
  nextFireAt: nullable(Type.String()),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});

export const JobPageSchema = PageSchema(JobSchema);

export const TriggerRequestSchema = closed({
  /** Replaces the job's params for this run (merged over them when `mergeParams` is true). */
  params: Type.Optional(JsonObjectSchema),
  mergeParams: Type.Optional(Type.Boolean()),
  /** Fields of this run's params that are secret, besides the job's own `secretParams`. */
  secretParams: Type.Optional(SecretParamsSchema),
  priority: Type.Optional(Type.Integer()),
  /**
   * A second trigger with the same key and params returns the first run instead of creating another;
   * with other params or priority it answers 409 `IDEMPOTENCY_CONFLICT`. The key holds its run for
   * `idempotencyTtl`, then may be used again.
   */
  idempotencyKey: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  /** How long the idempotency key holds its run: 1 s to 30 days, default `'24h'`. */
  idempotencyTtl: Type.Optional(DurationSchema),
  /** The run starts at this instant (RFC 3339, e.g. `2030-01-01T09:00:00Z`), not before; one already past starts at once. */
  runAt: Type.Optional(InstantSchema),
  /** The run starts this long after the trigger (`'30s'` or ms), not before. Not with `runAt`. */
  delay: Type.Optional(DurationSchema),
});

export const TriggerBatchSchema = closed({
  runs: Type.Array(TriggerRequestSchema, { minItems: 1, maxItems: 1000 }),
});

export const TriggerBatchResponseSchema = Type.Object({ runIds: Type.Array(Type.Integer()) });

// Path and query parameters --------------------------------------------------

export const NameParam = closed({ name: NameSchema });

export const LimitSchema = Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 }));

export const JobQuery = closed({
  group: Type.Optional(NameSchema),
  limit: LimitSchema,
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
});
