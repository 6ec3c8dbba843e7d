/**
 * Wire types of the Kairos HTTP API (`/v1/...`) and of the worker protocol, derived from the
 * schemas the node validates requests and serializes answers with (`./schemas/`): one source.
 * Times on the wire are ISO-8601 strings; durations are milliseconds or strings like `'30s'`.
 */

import type { Static } from '@sinclair/typebox';
import type {
  ApiTokenSchema,
  ApiTokenSpecSchema,
  AuditEntrySchema,
  AuthProvidersSchema,
  CreatedApiTokenSchema,
  EndedCountsSchema,
  GrantSchema,
  GrantSpecSchema,
  LoginRequestSchema,
  MeSchema,
  MinuteStatsSchema,
  NamespaceQuotasSchema,
  NamespaceQuotasViewSchema,
  NamespaceSchema,
  NamespaceSpecSchema,
  OverviewSchema,
  StatsWindowSchema,
  UserRoleSchema,
  UserSchema,
  UserSpecSchema,
  UserUpdateSchema,
} from './schemas/access.ts';
import type {
  AlertChannelSchema,
  AlertChannelSpecSchema,
  AlertDeliveryQuery,
  AlertDeliverySchema,
  AlertKindSchema,
  AlertOpenSchema,
  AlertRuleSchema,
  AlertRuleSpecSchema,
  AlertSilenceSchema,
  AlertSilenceSpecSchema,
} from './schemas/alerts.ts';
import type { DurationSchema, ErrorBodySchema, ResourceSpecSchema } from './schemas/common.ts';
import type { DoctorCheckSchema, DoctorReportSchema, DoctorStatusSchema } from './schemas/doctor.ts';
import type {
  DependencyConditionSchema,
  DstPolicySchema,
  HttpTaskSpecSchema,
  JobQuery,
  JobSchema,
  JobSpecSchema,
  MisfirePolicyKindSchema,
  MisfireSpecSchema,
  OverlapPolicySchema,
  RateLimitSpecSchema,
  RetentionPolicySchema,
  RetentionSpecSchema,
  RetryPolicySchema,
  RetrySpecSchema,
  RoutingSpecSchema,
  RoutingStrategyNameSchema,
  SchedulePolicySchema,
  ScheduleSpecSchema,
  ShellTaskSpecSchema,
  TaskSpecSchema,
  TriggerRequestSchema,
  TriggerSpecSchema,
} from './schemas/jobs.ts';
import type {
  AttemptSchema,
  AttemptStatusSchema,
  LogLevelSchema,
  QueueWaitSchema,
  RunCauseSchema,
  RunErrorSchema,
  RunLogLineSchema,
  RunLogPageSchema,
  RunProgressSchema,
  RunQuery,
  RunSchema,
  RunStatusSchema,
  RunSummarySchema,
} from './schemas/runs.ts';
import type {
  BackfillRequestSchema,
  BackfillResponseSchema,
  CalendarSchema,
  CalendarSpecSchema,
  FirePreviewSchema,
  PreviewRequestSchema,
  PreviewSchema,
  PreviewSkipSchema,
  SkippedFiresSchema,
  SkippedQuery,
  SkipReasonSchema,
} from './schemas/schedules.ts';
import type { SecretRotationSchema } from './schemas/secrets.ts';
import type { RetentionSettingsSchema } from './schemas/settings.ts';
import type {
  AssignmentSchema,
  AttemptRefSchema,
  GroupInfoSchema,
  GroupLimitRequestSchema,
  HealthSchema,
  HeartbeatRequestSchema,
  HeartbeatResponseSchema,
  NodeInfoSchema,
  PollRequestSchema,
  PollResponseSchema,
  RegisterRequestSchema,
  RegisterResponseSchema,
  ReportRequestSchema,
  ReportResponseSchema,
  ReportSchema,
  WorkerInfoSchema,
  WorkerLogEntrySchema,
  WorkerLogsRequestSchema,
  WorkerLogsResponseSchema,
  WorkerStatusSchema,
} from './schemas/workers.ts';
import type {
  EdgeConditionSchema,
  WorkflowInstanceSchema,
  WorkflowInstanceStateSchema,
  WorkflowMapItemPageSchema,
  WorkflowMapItemSchema,
  WorkflowMapItemStateSchema,
  WorkflowMapSpecSchema,
  WorkflowSchema,
  WorkflowSpecSchema,
  WorkflowStartSchema,
  WorkflowStepSpecSchema,
  WorkflowStepStateSchema,
} from './schemas/workflows.ts';

export type { Json, JsonObject } from './schemas/common.ts';

/** Milliseconds, or a string with a unit: `'250ms'`, `'30s'`, `'5m'`, `'2h'`, `'1d'`. */
export type Duration = Static<typeof DurationSchema>;

/**
 * The "when" of a job:
 * - `cron`: 5 fields (minute first) or 6 (second first), or a macro like `@daily`, in an IANA zone (default UTC);
 * - `every`: fixed rate, a fire every `every`, aligned to `startAt` (default: when the job was created);
 * - `delay`: fixed delay, the next fire comes `delay` after the previous run finished;
 * - `at`: one shot at an instant;
 * - `manual`: no schedule, runs only when triggered through the API or CLI;
 * - `after`: a run of this job is created, in the same transaction, whenever a run of `job` ends as
 *   `on` says (default `success`); its params get `parent: { job, runId, status, result }`.
 */
export type TriggerSpec = Static<typeof TriggerSpecSchema>;

/** `success`: the parent run succeeded; `failure`: it failed or timed out; `always`: any end, cancel included. */
export type DependencyCondition = Static<typeof DependencyConditionSchema>;

export type TriggerKind = TriggerSpec['kind'];

/**
 * Retries: `maxAttempts` total attempts, the first included (default 3; 1 disables retries);
 * `backoff` (default `'exponential'`) from `delay` (default `'1s'`) up to `maxDelay` (default
 * `'5m'`), spread over [delay/2, delay] when `jitter` (default true); error names in
 * `nonRetryable` fail the run at once.
 */
export type RetrySpec = Static<typeof RetrySpecSchema>;

/** What a user sends to create or replace a job. */
export type JobSpec = Static<typeof JobSpecSchema>;

export type TaskSpec = Static<typeof TaskSpecSchema>;

/** Runs `command` with `args` (no shell unless you run one); exit code 0 is success; output is the run's log. */
export type ShellTaskSpec = Static<typeof ShellTaskSpecSchema>;

/** Calls a URL; the run succeeds when the status is one of `expectStatus` (default: any 2xx). */
export type HttpTaskSpec = Static<typeof HttpTaskSpecSchema>;

/**
 * Routing strategies: `any` (whichever worker asks first), `first`, `last`, `round-robin`, `random`,
 * `consistent-hash`, `least-recently-used`, `least-frequently-used`, `least-loaded`, `failover`,
 * `busy-over`, and `broadcast` (sharding: one run per live worker). See docs/workers.md.
 */
export type RoutingStrategyName = Static<typeof RoutingStrategyNameSchema>;

export type RateLimitSpec = Static<typeof RateLimitSpecSchema>;

export type RoutingSpec = Static<typeof RoutingSpecSchema>;
export type ResourceSpec = Static<typeof ResourceSpecSchema>;

/** A partial update of a job; absent fields keep their value. */
export type JobPatch = Partial<Omit<JobSpec, 'name'>>;

export type RetryPolicy = Static<typeof RetryPolicySchema>;

/** A job as the API returns it: the spec with every default filled in and durations in ms. */
export type Job = Static<typeof JobSchema>;
/** What a key rotation of secret params did (`POST /v1/secrets/rotate`). */
export type SecretRotation = Static<typeof SecretRotationSchema>;

/**
 * Run states:
 * - `queued`: waiting for a worker (after `availableAt`, which a retry backoff may push forward);
 * - `running`: an attempt is on a worker;
 * - `succeeded`, `failed`, `timed_out`, `cancelled`: final.
 */
export type RunStatus = Static<typeof RunStatusSchema>;

/** Why a run exists: its schedule, a manual trigger, a parent run that ended (`after`), a backfill. */
export type RunCause = Static<typeof RunCauseSchema>;

export type AttemptStatus = Static<typeof AttemptStatusSchema>;

export type RunError = Static<typeof RunErrorSchema>;

export type Attempt = Static<typeof AttemptSchema>;

export type Run = Static<typeof RunSchema>;
export type QueueWait = Static<typeof QueueWaitSchema>;
export type DoctorStatus = Static<typeof DoctorStatusSchema>;
export type DoctorCheck = Static<typeof DoctorCheckSchema>;
export type DoctorReport = Static<typeof DoctorReportSchema>;
export type RetentionSettings = Static<typeof RetentionSettingsSchema>;

/** A run as lists answer it: no params or result unless asked for (`include: 'params'`). */
export type RunSummary = Static<typeof RunSummarySchema>;

export type TriggerRequest = Static<typeof TriggerRequestSchema>;

export interface Page<T> {
  items: T[];
  /** Pass as `cursor` to get the next page; null on the last page. */
  nextCursor: string | null;
}

export type RunFilter = Static<typeof RunQuery>;

export type JobFilter = Static<typeof JobQuery>;

export type WorkerStatus = Static<typeof WorkerStatusSchema>;

export type WorkerInfo = Static<typeof WorkerInfoSchema>;

/** A scheduler node of the cluster. */
export type NodeInfo = Static<typeof NodeInfoSchema>;

export type Health = Static<typeof HealthSchema>;

/** `{ error: { code, message, details } }`: the body of every non-2xx answer. */
export type ErrorBody = Static<typeof ErrorBodySchema>;

// ---------------------------------------------------------------------------
// Worker protocol: workers connect out; every call carries the worker token.

export type RegisterRequest = Static<typeof RegisterRequestSchema>;

export type RegisterResponse = Static<typeof RegisterResponseSchema>;

export type AttemptRef = Static<typeof AttemptRefSchema>;

export type HeartbeatRequest = Static<typeof HeartbeatRequestSchema>;

export type HeartbeatResponse = Static<typeof HeartbeatResponseSchema>;

/**
 * `max` free slots; `waitMs` how long to wait for work (capped by the node); fire ahead: besides
 * `max` runs ready now, up to `ahead` runs that become available within the node's fire-ahead
 * window, to hold and start at their instant (`startInMs`). Default 0.
 */
export type PollRequest = Static<typeof PollRequestSchema>;

/**
 * One attempt handed to a worker. Fire ahead: `startInMs` says to start the handler this many ms
 * after the answer arrived (the run's instant, counted on the node's clock when it answered);
 * absent: start at once. The time limit counts from then.
 */
export type Assignment = Static<typeof AssignmentSchema>;

export type PollResponse = Static<typeof PollResponseSchema>;

export type Report = Static<typeof ReportSchema>;

export type ReportRequest = Static<typeof ReportRequestSchema>;

export type ReportResponse = Static<typeof ReportResponseSchema>;

// ---------------------------------------------------------------------------
// Schedules: policies, the ledger of fires that did not run, previews. See docs/schedules.md.

/**
 * What a cron job does with a wall-clock time that does not exist (spring forward) or occurs twice
 * (fall back):
 * - `once-per-day` (default, like classic cron): a fixed-time job fires once per local day, at the
 *   first instant after the gap, and on the first occurrence of a repeated time;
 * - `literal`: a time that does not exist is skipped; a time that occurs twice fires twice.
 * Patterns with a wildcard or step in second, minute or hour follow absolute time under both.
 */
export type DstPolicy = Static<typeof DstPolicySchema>;

/** `skip` (default): drop missed fires; `run-once`: one run for the latest; `catch-up`: run them, oldest first. */
export type MisfirePolicyKind = Static<typeof MisfirePolicyKindSchema>;

export type MisfireSpec = Static<typeof MisfireSpecSchema>;

/**
 * What a fire does while a previous run of the job is queued or running: `allow` (a run per fire),
 * `skip`, `buffer-one` (keep one waiting run, skip the rest), `buffer-all` (a serial queue),
 * `cancel-previous`.
 */
export type OverlapPolicy = Static<typeof OverlapPolicySchema>;

/**
 * Misfire (default `{ policy: 'skip' }`), overlap (default `'allow'`), a window (`startAt`,
 * `endAt`), a reproducible `jitter`, a run cap (`maxRuns`) and excluding `calendars`.
 */
export type ScheduleSpec = Static<typeof ScheduleSpecSchema>;

/** A resolved schedule policy: every default filled in, durations in ms, instants ISO-8601 or null. */
export type SchedulePolicy = Static<typeof SchedulePolicySchema>;

/**
 * How long a job's finished runs are kept: `finished` (succeeded, cancelled) and `failed` (failed,
 * timed out) as durations after the run ended, `keepLast` the newest N finished runs. A field left
 * out takes the node's default (docs/retention.md).
 */
export type RetentionSpec = Static<typeof RetentionSpecSchema>;

/** A job's own retention as the API answers it: ms, null for the node's default. */
export type RetentionPolicy = Static<typeof RetentionPolicySchema>;

/**
 * Why a fire did not become a run: `misfire` (no node could fire it in time), `overlap` (a previous
 * run was still active), `paused`, `max-runs` (the cap was reached), `outside-window` (after
 * `endAt`), `calendar` (an excluded date), `overloaded` (the node was behind and ran only the
 * latest of several due fires of the job), `quota` (a workflow's scheduled start while its
 * namespace held `maxQueuedRuns` queued runs).
 */
export type SkipReason = Static<typeof SkipReasonSchema>;

/** One ledger entry: a range of fire times of one job that did not run, for one reason. */
export type SkippedFires = Static<typeof SkippedFiresSchema>;

export type SkippedFilter = Static<typeof SkippedQuery>;

/**
 * One upcoming fire of a preview. `note` is set when a rule changes this fire: `dst-moved` (the
 * wall-clock time does not exist that day; it fires after the gap), `dst-repeated` (second
 * occurrence of a repeated time, `literal` only).
 */
export type FirePreview = Static<typeof FirePreviewSchema>;

/** A fire time a rule removes, shown so that a preview explains itself. */
export type PreviewSkip = Static<typeof PreviewSkipSchema>;

export type Preview = Static<typeof PreviewSchema>;

/** `POST /v1/preview`: the next fires of a spec that is not saved. */
export type PreviewRequest = Static<typeof PreviewRequestSchema>;

/** `POST /v1/jobs/:name/backfill`: run a job for every fire time of its trigger in a past range. */
export type BackfillRequest = Static<typeof BackfillRequestSchema>;

export type BackfillResponse = Static<typeof BackfillResponseSchema>;

/**
 * A named set of excluded dates and times (holidays, weekends, nights) that jobs attach with
 * `schedule.calendars`; a fire it excludes is recorded as skipped with reason `calendar`.
 */
export type CalendarSpec = Static<typeof CalendarSpecSchema>;

export type Calendar = Static<typeof CalendarSchema>;

// Console and access control: users, sessions, API tokens, audit log, overview stats, previews.

/** `admin`: everything; `operator`: jobs and runs, no users; `viewer`: read only. */
export type UserRole = Static<typeof UserRoleSchema>;

export type User = Static<typeof UserSchema>;

export type UserSpec = Static<typeof UserSpecSchema>;

export type UserUpdate = Static<typeof UserUpdateSchema>;

export type LoginRequest = Static<typeof LoginRequestSchema>;

export type AuthProviders = Static<typeof AuthProvidersSchema>;

/** Who the caller is. Session callers get the CSRF token to send in `x-csrf-token` on changes. */
export type Me = Static<typeof MeSchema>;

export type ApiToken = Static<typeof ApiTokenSchema>;

export type ApiTokenSpec = Static<typeof ApiTokenSpecSchema>;

/** The answer to creating a token: the only time the token itself is shown. */
export type CreatedApiToken = Static<typeof CreatedApiTokenSchema>;

export type AuditEntry = Static<typeof AuditEntrySchema>;

/** A namespace the caller may see, with the caller's role in it (docs/tenancy.md). */
export type Namespace = Static<typeof NamespaceSchema>;
export type NamespaceQuotas = Static<typeof NamespaceQuotasSchema>;
export type NamespaceQuotasView = Static<typeof NamespaceQuotasViewSchema>;

export type NamespaceSpec = Static<typeof NamespaceSpecSchema>;

/** A user's role in one namespace, beside the user's global role. */
export type Grant = Static<typeof GrantSchema>;

export type GrantSpec = Static<typeof GrantSpecSchema>;

/** The span the overview's counts and lateness cover: the last hour or the last day. */
export type StatsWindow = Static<typeof StatsWindowSchema>;

export type EndedCounts = Static<typeof EndedCountsSchema>;

/**
 * The console's overview. `lateness`: how late scheduled runs started against their fire time
 * (first attempt's start − fire time, ms) among those that started in the window: nearest-rank
 * p50 and p99 of the newest `count` starts (`sampled` when the window held more); null without any.
 */
export type Overview = Static<typeof OverviewSchema>;

/** Runs that ended in one minute, by outcome. */
export type MinuteStats = Static<typeof MinuteStatsSchema>;

// Workers at scale ----

/** A group's limits (`PUT /v1/groups/:name`). */
export type GroupInfo = Static<typeof GroupInfoSchema>;

/** Replaces a group's limits; an absent limit is removed. */
export type GroupLimitRequest = Static<typeof GroupLimitRequestSchema>;

export type LogLevel = Static<typeof LogLevelSchema>;

/** One line of a run's log, numbered from 1 in the order the node stored it. */
export type RunLogLine = Static<typeof RunLogLineSchema>;

/** The last progress an attempt reported (`ctx.progress(0.4, 'step 2')`). */
export type RunProgress = Static<typeof RunProgressSchema>;

/** `GET /v1/runs/:id/logs?after=seq`: lines after `after`, oldest first. */
export type RunLogPage = Static<typeof RunLogPageSchema>;

/** One log line of an attempt as a worker sends it. */
export type WorkerLogEntry = Static<typeof WorkerLogEntrySchema>;

/** `POST /v1/worker/:id/logs`: log lines and progress of the worker's attempts, in order. */
export type WorkerLogsRequest = Static<typeof WorkerLogsRequestSchema>;

export type WorkerLogsResponse = Static<typeof WorkerLogsResponseSchema>;

// Alerts: rules, channels, silences, deliveries (docs/alerts.md).

/** What alerts, where, and for which jobs: one alert per rule and subject per window. */
export type AlertRuleSpec = Static<typeof AlertRuleSpecSchema>;

export type AlertRule = Static<typeof AlertRuleSchema>;

export type AlertKind = Static<typeof AlertKindSchema>;

/** Where alerts go: a webhook, a chat bot or email. Secrets are write-only. */
export type AlertChannelSpec = Static<typeof AlertChannelSpecSchema>;

export type AlertChannel = Static<typeof AlertChannelSchema>;

export type AlertSilenceSpec = Static<typeof AlertSilenceSpecSchema>;

export type AlertSilence = Static<typeof AlertSilenceSchema>;

/** One alert (or test message) to one channel, with its sending attempts. */
export type AlertDelivery = Static<typeof AlertDeliverySchema>;

export type AlertDeliveryFilter = Static<typeof AlertDeliveryQuery>;

/** An alert firing now. */
export type AlertOpen = Static<typeof AlertOpenSchema>;

/** When a workflow edge lets its child run (docs/workflows.md). */
export type EdgeCondition = Static<typeof EdgeConditionSchema>;
/** One step of a workflow: a handler or an existing job, its incoming edges and its join. */
export type WorkflowStepSpec = Static<typeof WorkflowStepSpecSchema>;
/** How a map step fans out over a list (docs/workflows.md#map-and-reduce). */
export type WorkflowMapSpec = Static<typeof WorkflowMapSpecSchema>;
/** A workflow as `PUT /v1/workflows/:name` takes it. */
export type WorkflowSpec = Static<typeof WorkflowSpecSchema>;
export type Workflow = Static<typeof WorkflowSchema>;
export type WorkflowStart = Static<typeof WorkflowStartSchema>;
export type WorkflowInstance = Static<typeof WorkflowInstanceSchema>;
export type WorkflowInstanceState = Static<typeof WorkflowInstanceStateSchema>;
export type WorkflowStepState = Static<typeof WorkflowStepStateSchema>;
/** One item of a map step (`GET /v1/workflow-instances/:id/steps/:step/items`). */
export type WorkflowMapItem = Static<typeof WorkflowMapItemSchema>;
export type WorkflowMapItemState = Static<typeof WorkflowMapItemStateSchema>;
export type WorkflowMapItemPage = Static<typeof WorkflowMapItemPageSchema>;
