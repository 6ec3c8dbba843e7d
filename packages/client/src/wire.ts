/**
 * Wire types of the Kairos HTTP API (`/v1/...`) and of the worker protocol.
 * Times on the wire are ISO-8601 strings; durations are milliseconds or strings like `'30s'`.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** Milliseconds, or a string with a unit: `'250ms'`, `'30s'`, `'5m'`, `'2h'`, `'1d'`. */
export type Duration = number | string;

/** The "when" of a job. */
export type TriggerSpec =
  /** Cron with 5 fields (minute first) or 6 (second first), or a macro like `@daily`, in an IANA zone (default UTC). */
  | { kind: 'cron'; cron: string; timezone?: string; dst?: DstPolicy }
  /** Fixed rate: a fire every `every`, aligned to `startAt` (default: when the job was created). */
  | { kind: 'every'; every: Duration; startAt?: string }
  /** Fixed delay: the next fire comes `delay` after the previous run finished. */
  | { kind: 'delay'; delay: Duration }
  /** One shot at an instant. */
  | { kind: 'at'; at: string }
  /** No schedule: runs only when triggered through the API or CLI. */
  | { kind: 'manual' }
  /**
   * After another job: a run of this job is created, in the same transaction, whenever a run of
   * `job` ends as `on` says (default `success`); its params get `parent: { job, runId, status, result }`.
   */
  | { kind: 'after'; job: string; on?: DependencyCondition };

/** `success`: the parent run succeeded; `failure`: it failed or timed out; `always`: any end, cancel included. */
export type DependencyCondition = 'success' | 'failure' | 'always';

export type TriggerKind = TriggerSpec['kind'];

export interface RetrySpec {
  /** Total attempts, the first included. Default 3. 1 disables retries. */
  maxAttempts?: number;
  /** Default `'exponential'`. */
  backoff?: 'fixed' | 'exponential';
  /** Delay before the first retry (exponential doubles it each time). Default `'1s'`. */
  delay?: Duration;
  /** Upper bound of one retry delay. Default `'5m'`. */
  maxDelay?: Duration;
  /** Spread each delay randomly over [delay/2, delay]. Default true. */
  jitter?: boolean;
  /** Error names (`error.name` as thrown by the handler) that fail the run at once. */
  nonRetryable?: string[];
}

/** What a user sends to create or replace a job. */
export interface JobSpec {
  name: string;
  description?: string;
  /** The group of workers that runs this job. Default `'default'`. */
  group?: string;
  /** The handler name a worker registered (optional with `task`). */
  handler?: string;
  params?: JsonObject;
  trigger: TriggerSpec;
  retry?: RetrySpec;
  /** Time limit of one attempt. Default `'5m'`. */
  timeout?: Duration;
  /** Higher runs first within a group. Default 0. */
  priority?: number;
  paused?: boolean;
  /** Misfire, overlap, window, jitter and run cap (docs/schedules.md). Default: every policy at its default. */
  schedule?: ScheduleSpec;
  // Workers at scale ----
  /** Which worker of the group runs each run. Default: any worker of the group that asks first. */
  routing?: RoutingSpec;
  /** The most runs of this job running at once, across the cluster. Default: no limit. */
  maxConcurrency?: number;
  /** The most runs of this job started per `per`, across the cluster (a token bucket; bursts up to `limit`). */
  rateLimit?: RateLimitSpec;
  /** A run that no worker started within this time after it became ready fails (`ScheduleToStartTimeout`). */
  scheduleToStartTimeout?: Duration;
  /**
   * A built-in task instead of a handler of yours: a shell command or an HTTP call, run by workers
   * that enabled that kind. `handler` is then `kairos:shell` or `kairos:http` (and may be left out).
   */
  task?: TaskSpec;
}

export type TaskSpec = ShellTaskSpec | HttpTaskSpec;

/** Runs `command` with `args` (no shell unless you run one); exit code 0 is success; output is the run's log. */
export interface ShellTaskSpec {
  kind: 'shell';
  command: string;
  args?: string[];
  /** Added to the worker's environment. */
  env?: Record<string, string>;
  cwd?: string;
}

/** Calls a URL; the run succeeds when the status is one of `expectStatus` (default: any 2xx). */
export interface HttpTaskSpec {
  kind: 'http';
  /** Default `GET`. */
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: string;
  /** Time limit of the request (the attempt's timeout still applies). Default `'30s'`. */
  timeout?: Duration;
  expectStatus?: number[];
}

/**
 * Routing strategies: `any` (whichever worker asks first), `first`, `last`, `round-robin`, `random`,
 * `consistent-hash`, `least-recently-used`, `least-frequently-used`, `least-loaded`, `failover`,
 * `busy-over`, and `broadcast` (sharding: one run per live worker). See docs/workers.md.
 */
export type RoutingStrategyName =
  | 'any'
  | 'first'
  | 'last'
  | 'round-robin'
  | 'random'
  | 'consistent-hash'
  | 'least-recently-used'
  | 'least-frequently-used'
  | 'least-loaded'
  | 'failover'
  | 'busy-over'
  | 'broadcast';

export interface RateLimitSpec {
  limit: number;
  per: Duration;
}

export interface RoutingSpec {
  strategy: RoutingStrategyName;
  /** `consistent-hash`: the params field whose value is the key (default: the job name). */
  key?: string;
  /** Only workers whose labels carry all of these, e.g. `{ region: 'eu' }`. */
  selector?: Record<string, string>;
}

/** A partial update of a job; absent fields keep their value. */
export type JobPatch = Partial<Omit<JobSpec, 'name'>>;

export interface RetryPolicy {
  maxAttempts: number;
  backoff: 'fixed' | 'exponential';
  delay: number;
  maxDelay: number;
  jitter: boolean;
  nonRetryable: string[];
}

/** A job as the API returns it: the spec with every default filled in and durations in ms. */
export interface Job {
  id: number;
  name: string;
  description: string;
  group: string;
  handler: string;
  params: JsonObject;
  trigger: TriggerSpec;
  retry: RetryPolicy;
  timeout: number;
  priority: number;
  paused: boolean;
  schedule: SchedulePolicy;
  /** Runs created by the schedule so far (what `maxRuns` counts). */
  runsFired: number;
  routing: { strategy: RoutingStrategyName; key: string | null; selector: Record<string, string> };
  maxConcurrency: number | null;
  /** `per` in ms. */
  rateLimit: { limit: number; per: number } | null;
  /** In ms; null when runs wait for a worker as long as it takes. */
  scheduleToStartTimeout: number | null;
  /** The built-in task, durations in ms; null for a handler of yours. */
  task: TaskSpec | null;
  /** The next fire time, or null when the trigger has no more fires (manual, `at` done, paused delay). */
  nextFireAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/**
 * Run states:
 * - `queued`: waiting for a worker (after `availableAt`, which a retry backoff may push forward);
 * - `running`: an attempt is on a worker;
 * - `succeeded`, `failed`, `timed_out`, `cancelled`: final.
 */
export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'timed_out' | 'cancelled';

/** Why a run exists: its schedule, a manual trigger, a parent run that ended (`after`), a backfill. */
export type RunCause = 'schedule' | 'manual' | 'dependency' | 'backfill';

export type AttemptStatus = 'running' | 'succeeded' | 'failed' | 'timed_out' | 'lost' | 'cancelled';

export interface RunError {
  message: string;
  /** `error.name` as the handler threw it, or a Kairos reason: `Timeout`, `WorkerLost`, `Cancelled`. */
  name: string;
  stack?: string;
}

export interface Attempt {
  attempt: number;
  workerId: string;
  status: AttemptStatus;
  startedAt: string;
  finishedAt: string | null;
  error: RunError | null;
  /**
   * Present when the worker reported this attempt's end after the node had ended it (`lost`,
   * `timed_out`, `cancelled`): the attempt was fenced out but ran on, so the run executed more than
   * once. What the worker reported, and when.
   */
  lateReport?: { outcome: 'succeeded' | 'failed' | 'timed_out'; reportedAt: string; error: RunError | null };
}

export interface Run {
  id: number;
  jobId: number;
  jobName: string;
  group: string;
  handler: string;
  cause: RunCause;
  /** The nominal fire time for scheduled runs. */
  fireTime: string | null;
  params: JsonObject;
  priority: number;
  status: RunStatus;
  /** Number of attempts started so far. */
  attempt: number;
  maxAttempts: number;
  timeout: number;
  workerId: string | null;
  createdAt: string;
  /** Not dispatched before this instant (retry backoff). */
  availableAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  result: Json | null;
  error: RunError | null;
  /** A shard of a broadcast fire: its index from 0 and the number of shards. */
  shard?: { index: number; total: number };
  /** A queued routed run: the worker it waits for (routing decided it). */
  assignedWorkerId?: string;
  attempts?: Attempt[];
}

export interface TriggerRequest {
  /** Replaces the job's params for this run (merged over them when `mergeParams` is true). */
  params?: JsonObject;
  mergeParams?: boolean;
  priority?: number;
  /** A second trigger with the same key returns the first run instead of creating another. */
  idempotencyKey?: string;
}

export interface Page<T> {
  items: T[];
  /** Pass as `cursor` to get the next page; null on the last page. */
  nextCursor: string | null;
}

export interface RunFilter {
  job?: string;
  status?: RunStatus;
  worker?: string;
  /** Only runs created at or after this ISO-8601 instant. */
  since?: string;
  /** Only runs created before this ISO-8601 instant. */
  until?: string;
  limit?: number;
  cursor?: string;
}

export interface JobFilter {
  group?: string;
  limit?: number;
  cursor?: string;
}

export type WorkerStatus = 'active' | 'draining' | 'lost' | 'stopped';

export interface WorkerInfo {
  id: string;
  name: string;
  group: string;
  handlers: string[];
  capacity: number;
  labels: Record<string, string>;
  version: string;
  host: string;
  status: WorkerStatus;
  running: number;
  registeredAt: string;
  lastHeartbeatAt: string;
}

/** A scheduler node of the cluster. */
export interface NodeInfo {
  id: string;
  /** The URL the node serves on. */
  address: string;
  version: string;
  /** `gone`: no heartbeat within the partition lease; kept until it comes back or is cleaned up. */
  status: 'alive' | 'gone';
  /** Trigger partitions it owns. */
  partitions: number[];
  /** Its wall clock minus the store's clock, in ms. */
  clockSkewMs: number;
  startedAt: string;
  lastHeartbeatAt: string;
}

export interface Health {
  status: 'ok';
  version: string;
  store: 'sqlite' | 'postgres';
  nodeId: string;
}

/** `{ error: { code, message, details } }`: the body of every non-2xx answer. */
export interface ErrorBody {
  error: { code: string; message: string; details?: Json };
}

// ---------------------------------------------------------------------------
// Worker protocol: workers connect out; every call carries the worker token.

export interface RegisterRequest {
  name?: string;
  group: string;
  handlers: string[];
  capacity: number;
  labels?: Record<string, string>;
  version?: string;
  host?: string;
}

export interface RegisterResponse {
  workerId: string;
  /** The worker must heartbeat at least this often. */
  heartbeatMs: number;
  /** Running attempts are lost when no heartbeat arrived for this long. */
  leaseMs: number;
  /** Longest wait of one poll. */
  pollWaitMs: number;
}

export interface AttemptRef {
  runId: number;
  attempt: number;
}

export interface HeartbeatRequest {
  /** Every attempt the worker holds: running, held for its instant, or with a report not acknowledged yet. */
  running: AttemptRef[];
  /**
   * Every poll up to this number (`PollRequest.seq`) was answered or abandoned, and `running` is
   * the whole list: the node gives back (`lost`) the attempts those polls claimed for this worker
   * that `running` does not name, whose answer never reached it. Absent: nothing is given back.
   */
  polled?: number;
}

export interface HeartbeatResponse {
  /** Attempts the worker should stop: cancelled, or no longer its own (fenced out). */
  cancel: AttemptRef[];
}

export interface PollRequest {
  /** Free slots: the most runs to hand out. */
  max: number;
  /** How long to wait for work when none is ready; capped by the node. */
  waitMs?: number;
  /**
   * Fire ahead: besides `max` runs ready now, up to this many runs that become available within
   * the node's fire-ahead window, to hold and start at their instant (`startInMs`). Default 0.
   */
  ahead?: number;
  /**
   * The worker's number of this poll, increasing from 1: the node keeps it with each attempt the
   * poll claims, so that a heartbeat's `polled` can tell the claims whose answer was lost.
   */
  seq?: number;
}

/** One attempt handed to a worker. */
export interface Assignment {
  runId: number;
  attempt: number;
  jobName: string;
  handler: string;
  params: JsonObject;
  fireTime: string | null;
  /** Time limit of this attempt in ms. */
  timeout: number;
  maxAttempts: number;
  /** A built-in task (`handler` is `kairos:shell` or `kairos:http`), durations in ms. */
  task?: TaskSpec;
  /** A shard of a broadcast fire: this run's index from 0, and how many shards the fire has. */
  shard?: { index: number; total: number };
  /**
   * Fire ahead: start the handler this many ms after the answer arrived (the run's instant, counted
   * on the node's clock when it answered). Absent: start at once. The time limit counts from then.
   */
  startInMs?: number;
}

export interface PollResponse {
  runs: Assignment[];
}

export type Report =
  | (AttemptRef & { outcome: 'succeeded'; result?: Json })
  | (AttemptRef & {
      /** `timed_out`: the worker stopped the handler at its time limit. */
      outcome: 'failed' | 'timed_out';
      error: RunError;
      /** The handler asked for no retry (`NonRetryableError`). */
      retryable?: boolean;
      /** The handler asked to retry after this many ms (`RetryAfterError`). */
      retryAfterMs?: number;
    });

export interface ReportRequest {
  reports: Report[];
}

export interface ReportResponse {
  /** One entry per report, in order: `ok`, or the code of why it changed nothing. */
  results: Array<{ runId: number; attempt: number; ok: boolean; code?: string }>;
}

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
export type DstPolicy = 'once-per-day' | 'literal';

/** `skip` (default): drop missed fires; `run-once`: one run for the latest; `catch-up`: run them, oldest first. */
export type MisfirePolicyKind = 'skip' | 'run-once' | 'catch-up';

export interface MisfireSpec {
  policy: MisfirePolicyKind;
  /** `catch-up` only: the most missed fires run (the most recent ones). Default 10, at most 1000. */
  maxCatchUp?: number;
  /** `catch-up` only: missed fires older than this are skipped. Default `'1d'`. */
  catchUpWindow?: Duration;
}

/**
 * What a fire does while a previous run of the job is queued or running: `allow` (a run per fire),
 * `skip`, `buffer-one` (keep one waiting run, skip the rest), `buffer-all` (a serial queue),
 * `cancel-previous`.
 */
export type OverlapPolicy = 'allow' | 'skip' | 'buffer-one' | 'buffer-all' | 'cancel-previous';

export interface ScheduleSpec {
  /** Default `{ policy: 'skip' }`. */
  misfire?: MisfireSpec;
  /** Default `'allow'`. */
  overlap?: OverlapPolicy;
  /** No fire before this instant (ISO-8601). */
  startAt?: string;
  /** No fire after this instant (ISO-8601). */
  endAt?: string;
  /** Delay each run by a random but reproducible amount up to this (derived from job and fire time). */
  jitter?: Duration;
  /** The schedule stops after this many runs. */
  maxRuns?: number;
  /** Names of calendars whose excluded dates and times this job does not fire on. */
  calendars?: string[];
}

/** A resolved schedule policy: every default filled in, durations in ms, instants ISO-8601 or null. */
export interface SchedulePolicy {
  misfire: { policy: MisfirePolicyKind; maxCatchUp: number; catchUpWindow: number };
  overlap: OverlapPolicy;
  startAt: string | null;
  endAt: string | null;
  jitter: number;
  maxRuns: number | null;
  calendars: string[];
}

/**
 * Why a fire did not become a run: `misfire` (no node could fire it in time), `overlap` (a previous
 * run was still active), `paused`, `max-runs` (the cap was reached), `outside-window` (after
 * `endAt`), `calendar` (an excluded date).
 */
export type SkipReason = 'misfire' | 'overlap' | 'paused' | 'max-runs' | 'outside-window' | 'calendar';

/** One ledger entry: a range of fire times of one job that did not run, for one reason. */
export interface SkippedFires {
  id: number;
  jobName: string;
  reason: SkipReason;
  /** The first and last fire time of the range (equal for a single fire). */
  firstFireTime: string;
  lastFireTime: string;
  /** Fire times in the range; null when there were too many to count cheaply (a long cron outage). */
  count: number | null;
  recordedAt: string;
}

export interface SkippedFilter {
  limit?: number;
  cursor?: string;
}

/** One upcoming fire of a preview. */
export interface FirePreview {
  fireTime: string;
  /** When the run becomes available: the fire time plus its jitter. */
  runAt: string;
  /**
   * Set when a rule changes this fire: `dst-moved` (the wall-clock time does not exist that day;
   * it fires after the gap), `dst-repeated` (second occurrence of a repeated time, `literal` only).
   */
  note?: 'dst-moved' | 'dst-repeated';
}

/** A fire time a rule removes, shown so that a preview explains itself. */
export interface PreviewSkip {
  fireTime: string;
  reason: SkipReason | 'dst';
}

export interface Preview {
  fires: FirePreview[];
  /** Fire times within the previewed span that will not run, with the reason. */
  skipped: PreviewSkip[];
}

/** `POST /v1/preview`: the next fires of a spec that is not saved. */
export interface PreviewRequest {
  trigger: TriggerSpec;
  schedule?: ScheduleSpec;
  /** Default 10, at most 100. */
  count?: number;
  /** Start after this instant (default now). */
  from?: string;
}

/** `POST /v1/jobs/:name/backfill`: run a job for every fire time of its trigger in a past range. */
export interface BackfillRequest {
  /** The range, inclusive, ISO-8601; `to` at most now. */
  from: string;
  to: string;
  /**
   * `buffer-all` (default): one backfill run at a time, oldest first, behind any active run of the
   * job; `allow`: every run at once.
   */
  overlap?: 'allow' | 'buffer-all';
  /** The most runs to create (default 100, at most 1000); the answer says where to continue. */
  max?: number;
}

export interface BackfillResponse {
  /** Runs created, oldest fire first. */
  runs: Array<{ runId: number; fireTime: string }>;
  /** Fire times in the range that already had a run (from the schedule or an earlier backfill). */
  existing: string[];
  /** Set when the range held more fires than `max`: pass it as `from` to continue. */
  nextFrom: string | null;
}

/**
 * A named set of excluded dates and times (holidays, weekends, nights) that jobs attach with
 * `schedule.calendars`; a fire it excludes is recorded as skipped with reason `calendar`.
 */
export interface CalendarSpec {
  name: string;
  description?: string;
  /** The zone in which dates, weekdays and the cron exclusion are read. Default `UTC`. */
  timezone?: string;
  /** Whole local days excluded, `YYYY-MM-DD`. */
  dates?: string[];
  /** Local date ranges excluded, both ends included: `{ from: '2026-12-24', to: '2026-12-26' }`. */
  periods?: Array<{ from: string; to: string }>;
  /** Weekdays excluded: 0 Sunday … 6 Saturday. */
  weekdays?: number[];
  /** A cron expression: the fire times it matches are excluded (e.g. `* 0-6 * * *`: nights). */
  cron?: string;
}

export interface Calendar {
  name: string;
  description: string;
  timezone: string;
  dates: string[];
  periods: Array<{ from: string; to: string }>;
  weekdays: number[];
  cron: string | null;
  createdAt: string;
  updatedAt: string;
}

// Console and access control: users, sessions, API tokens, audit log, overview stats, previews.

/** `admin`: everything; `operator`: jobs and runs, no users; `viewer`: read only. */
export type UserRole = 'admin' | 'operator' | 'viewer';

export interface User {
  name: string;
  role: UserRole;
  createdAt: string;
  updatedAt: string;
}

export interface UserSpec {
  name: string;
  role: UserRole;
  /** 8 to 200 characters. */
  password: string;
}

export interface UserUpdate {
  role?: UserRole;
  password?: string;
}

export interface LoginRequest {
  name: string;
  password: string;
}

/** Who the caller is. Session callers get the CSRF token to send in `x-csrf-token` on changes. */
export interface Me {
  actor: string;
  role: UserRole | 'worker';
  user: string | null;
  csrfToken: string | null;
}

export interface ApiToken {
  id: number;
  name: string;
  role: UserRole | 'worker';
  /** Worker tokens: the groups they may serve; null for every group. */
  groups: string[] | null;
  createdBy: string;
  createdAt: string;
}

export interface ApiTokenSpec {
  name: string;
  role: UserRole | 'worker';
  /** Worker tokens only: limit the token to these groups. */
  groups?: string[];
}

/** The answer to creating a token: the only time the token itself is shown. */
export interface CreatedApiToken extends ApiToken {
  token: string;
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  details: JsonObject;
}

/** The span the overview's counts and lateness cover: the last hour or the last day. */
export type StatsWindow = '1h' | '24h';

export interface EndedCounts {
  succeeded: number;
  failed: number;
  timedOut: number;
  cancelled: number;
}

export interface Overview {
  running: number;
  queued: number;
  window: StatsWindow;
  /** Runs that ended in the window, by outcome. */
  ended: EndedCounts;
  /** The same counts as `ended` (the name is from before the window could be a day). */
  lastHour: EndedCounts;
  /** Succeeded / (succeeded + failed + timed out) over the window; null without ended runs. */
  successRate: number | null;
  /**
   * How late scheduled runs started against their fire time (first attempt's start − fire time, ms)
   * among those that started in the window: nearest-rank p50 and p99 of the newest `count` starts
   * (`sampled` when the window held more); null without any.
   */
  lateness: { count: number; p50Ms: number | null; p99Ms: number | null; sampled: boolean };
  workersOnline: number;
  nodesOnline: number;
  /** The latest failed or timed-out runs. */
  recentFailures: Run[];
}

/** Runs that ended in one minute, by outcome. */
export interface MinuteStats {
  minute: string;
  succeeded: number;
  failed: number;
  timedOut: number;
  cancelled: number;
}

// Workers at scale ----

/** A group's limits (`PUT /v1/groups/:name`). */
export interface GroupInfo {
  group: string;
  /** The most runs of the group running at once, cluster-wide; null for no limit. */
  maxConcurrency: number | null;
  /** The most runs of the group started per `per` (ms), cluster-wide; null for no limit. */
  rateLimit: { limit: number; per: number } | null;
  updatedAt: string;
}

/** Replaces a group's limits; an absent limit is removed. */
export interface GroupLimitRequest {
  maxConcurrency?: number;
  rateLimit?: RateLimitSpec;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** One line of a run's log, numbered from 1 in the order the node stored it. */
export interface RunLogLine {
  seq: number;
  attempt: number;
  time: string;
  level: LogLevel;
  message: string;
  fields?: JsonObject;
}

/** The last progress an attempt reported (`ctx.progress(0.4, 'step 2')`). */
export interface RunProgress {
  attempt: number;
  /** From 0 to 1. */
  value: number;
  message: string | null;
  updatedAt: string;
}

/** `GET /v1/runs/:id/logs?after=seq`: lines after `after`, oldest first. */
export interface RunLogPage {
  items: RunLogLine[];
  /** Pass as `after` for the next page; null when this page reached the end (for now). */
  next: number | null;
  progress: RunProgress | null;
  /** The run ended: no more lines will come. */
  finished: boolean;
}

/** One log line of an attempt as a worker sends it. */
export interface WorkerLogEntry extends AttemptRef {
  level: LogLevel;
  message: string;
  fields?: JsonObject;
  /** ISO-8601, the worker's clock. */
  time: string;
}

/** `POST /v1/worker/:id/logs`: log lines and progress of the worker's attempts, in order. */
export interface WorkerLogsRequest {
  logs: WorkerLogEntry[];
  progress?: Array<AttemptRef & { value: number; message?: string }>;
}

export interface WorkerLogsResponse {
  /** Lines stored; lines of attempts that are not this worker's, or over the run's limit, are dropped. */
  accepted: number;
}
