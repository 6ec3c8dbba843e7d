import type {
  AttemptRef,
  AttemptStatus,
  Json,
  JsonObject,
  LogLevel,
  OverlapPolicy,
  RetryPolicy,
  RunCause,
  RunError,
  RunStatus,
  SkipReason,
  TraceContext,
  WorkerStatus,
} from '@kairos/client';
import type { CalendarDefinition, CalendarRecord } from '../core/calendar.ts';
import type { SkippedRange } from '../core/fire-plan.ts';
import type { JobDefinition, JobRecord } from '../core/job.ts';
import type { AttemptDecision } from '../core/outcome.ts';
import type { RateLimit } from '../core/rate-limit.ts';
import type { Resources } from '../core/resources.ts';
import type { InstancePruneCandidate, JobRetention, PruneCandidate } from '../core/retention.ts';
import type { RoutingState, WorkerLoad } from '../core/routing.ts';
import type { TaskDefinition } from '../core/task.ts';
import type { Trigger } from '../core/trigger.ts';
import type {
  ApiTokenRecord,
  AuditEntry,
  AuditRecord,
  ExternalUser,
  FireLateness,
  MinuteCount,
  NewApiToken,
  NewOidcLogin,
  NewSession,
  NewUser,
  OidcLoginRecord,
  OverviewCounts,
  QueuedRunCount,
  SessionRecord,
  UserPatch,
  UserRecord,
} from './access.ts';
import type { AlertStore } from './alerts.ts';
import type { NamespaceStore } from './namespaces.ts';
import type { WorkflowStore } from './workflows.ts';

/**
 * The storage contract of Kairos. Every dialect (SQLite, PostgreSQL) implements it and passes the
 * one conformance suite in `test/conformance/suite.ts` unchanged.
 *
 * Rules every operation keeps:
 * - Each operation is one transaction: it happens whole or not at all.
 * - Time is never read inside the store: every operation that judges time takes `now` (epoch ms)
 *   from the caller's clock, which in cluster mode follows the store's own clock.
 * - Writes that end or extend an attempt are fenced by (run id, attempt number); writes by a
 *   trigger-partition owner are fenced by the lease epoch. A stale writer changes nothing.
 * - Errors: {@link KairosError} with a stable code for conflicts the caller caused
 *   (JOB_NAME_TAKEN ...), {@link StoreUnavailableError} when the store cannot be reached.
 */
export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  /** Alert rules, channels, silences, the outbox and the delivery history (store/alerts.ts). */
  readonly alerts: AlertStore;
  /** Namespaces and the roles users hold in them (store/namespaces.ts). */
  readonly namespaces: NamespaceStore;
  /** Workflow definitions and instances, and how an instance advances (store/workflows.ts). */
  readonly workflows: WorkflowStore;

  /**
   * Applies pending migrations and records the schema version (`schema_meta`). Safe to call from
   * several nodes at once. On a schema a newer release migrated, changes nothing; throws
   * SCHEMA_UNSUPPORTED when that schema no longer supports this code, or (PostgreSQL) when a
   * contract step would break live nodes of an older release (store/migrations.ts).
   */
  migrate(): Promise<void>;
  close(): Promise<void>;

  // Jobs ---------------------------------------------------------------------

  /**
   * Inserts a job into a namespace (absent: `default`). Throws JOB_NAME_TAKEN when the name exists:
   * in this release in any namespace (the global index stays until a contract step; migration
   * `namespaces`). With `quota`, it is run in the insert's transaction (see {@link JobQuotaCheck}).
   */
  createJob(
    job: JobDefinition,
    nextFireAt: number | null,
    now: number,
    namespace?: string,
    quota?: JobQuotaCheck,
  ): Promise<JobRecord>;
  /**
   * Replaces a job's definition and next fire time and bumps its version, in one conditional write.
   * With `expected`, applies only while the job still has that version and next fire time (what the
   * edit read and computed from): a concurrent edit, pause, or the schedule moving the next fire
   * makes it change nothing. Null when the job does not exist or no longer matches `expected`.
   * With `quota`, the write that applies is judged in its transaction with the triggers of the
   * namespace's other jobs (see {@link JobQuotaCheck}); a refusal writes nothing.
   */
  updateJob(
    id: number,
    job: JobDefinition,
    nextFireAt: number | null,
    now: number,
    expected?: JobExpectation,
    quota?: JobQuotaCheck,
  ): Promise<JobRecord | null>;
  /**
   * A job by name. A workflow's own job (store/workflows.ts) is found only with `workflowJobs`: it
   * is no job of the API's, but its pause and resume are a job's (scheduler/job-service.ts).
   */
  getJob(name: string, options?: { workflowJobs?: boolean }): Promise<JobRecord | null>;
  /** Jobs ordered by name; `after` is the last name of the previous page. */
  listJobs(filter: {
    /** Only jobs of this namespace; absent: every namespace. */
    namespace?: string | undefined;
    group?: string | undefined;
    after?: string | undefined;
    limit: number;
  }): Promise<JobRecord[]>;
  /**
   * Deletes a job with its runs and attempts (attempts still on workers become stale); with
   * `version`, only while the job is at that version. A workflow step's queued or running run of
   * the job ends `cancelled` first, at `now`, in the same transaction, so its instance advances
   * (the step fails, docs/workflows.md) rather than wait on a run that is gone.
   */
  deleteJob(name: string, version?: number, now?: number): Promise<boolean>;

  // Secret params (docs/security.md) ---------------------------------------------

  /**
   * Rows of `table` whose params hold a secret (an envelope, core/secret-params.ts), in id order after
   * `afterId`, at most `limit`: what a key rotation re-encrypts, batch by batch. Each row comes with its
   * params as stored (`stored`), to hand back to {@link replaceSecretParams}.
   */
  secretParamsPage(table: SecretTable, afterId: number, limit: number): Promise<SecretParamsRow[]>;
  /**
   * Writes `params` over a row's params only while they are still `stored` (as
   * {@link secretParamsPage} answered them), in one conditional statement: a concurrent edit of the
   * job (or a run's end) is never overwritten. Changes nothing else: a job's version stays. Answers
   * whether it applied.
   */
  replaceSecretParams(table: SecretTable, id: number, stored: string, params: JsonObject): Promise<boolean>;

  // Firing -------------------------------------------------------------------

  /** Jobs of the given trigger partitions that are due (`nextFireAt <= now`, not paused), most overdue first. */
  dueJobs(partitions: Partitions, now: number, limit: number): Promise<DueJob[]>;
  /** The earliest next fire time among the given partitions, or null when nothing is scheduled. */
  nextFireAt(partitions: Partitions): Promise<number | null>;
  /**
   * Turns due fires into runs, in one transaction:
   * for each entry, compare-and-set the job's `nextFireAt` from `expected` to `next` and, when
   * that succeeded, insert one run per fire time (UNIQUE(job, fire time): a fire is never doubled).
   * When `leases` is given, every lease must still be held (owner, epoch, not expired at `now`),
   * otherwise nothing is written and {@link LeaseLostError} is thrown.
   */
  fire(entries: readonly FireEntry[], leases: readonly Lease[] | null, now: number): Promise<FireResult>;

  // Runs ---------------------------------------------------------------------

  /**
   * Queues runs of a job outside its schedule (manual or API trigger), all or none. A request whose
   * idempotency key holds a run returns that run instead of a new one (see {@link RunTimingRequest}:
   * other params throw IDEMPOTENCY_CONFLICT and nothing is queued; an expired key is reused).
   * With `maxQueuedRuns`, the runs it inserts are counted with the namespace's queued runs (see
   * {@link MaxQueuedRuns}): the runs keys hold count for nothing, so a repeated request is answered.
   */
  enqueueRuns(
    jobId: number,
    requests: readonly EnqueueRequest[],
    now: number,
    maxQueuedRuns?: MaxQueuedRuns,
  ): Promise<number[]>;
  /**
   * The queued runs of a namespace's jobs, counted up to `upTo` (a bound on the work: the quota
   * check needs only to know whether the limit is reached). A pass over the partial index of queued
   * runs (every namespace's), stopped at `upTo` of this one's.
   */
  countQueuedRuns(namespace: string, upTo: number): Promise<number>;
  /**
   * Queues one run of the job named `name` (manual or API trigger) and answers it, in one write: the
   * job read by name, its defaults applied (`params` or `priority` null take the job's), the run
   * queued or, when its idempotency key holds a run, that run returned (IDEMPOTENCY_CONFLICT with
   * other params or priority; see {@link RunTimingRequest}), and `audit` committed with it. Null when no job has that name (nothing written). The trigger route's path:
   * one round trip to PostgreSQL where reading the job, inserting, reading the run back and auditing
   * took four. `maxQueuedRuns` as for {@link enqueueRuns}.
   *
   * With `handOff` (SQLite), a run inserted and available at `now` goes straight to a poll of its
   * group that waits, when there is one: the store asks `handOff` for it by the run's group, claims
   * for that poll's worker in the same transaction (as {@link dispatchRuns} would; the run may go to
   * another worker, or nowhere, as routing and limits say), and hands what it claimed to the poll
   * after the commit (`give`, called exactly once for a poll taken, with nothing when the write
   * failed; a claim that failed leaves the trigger written and gives nothing). A run handed is
   * answered running; the group's event goes out as without a hand-off unless the run went to the
   * poll, alone (not a broadcast's shards) and with room to spare in the poll. One claim, one commit and one wake fewer between a trigger and its start.
   * PostgreSQL ignores `handOff`: a transaction around the two statements takes four round trips
   * where they take two alone, and costs more than the commit it saves.
   */
  triggerRun(
    name: string,
    request: TriggerRunRequest,
    now: number,
    audit?: AuditEntry,
    maxQueuedRuns?: MaxQueuedRuns,
    handOff?: PollHandOff,
  ): Promise<RunRecord | null>;
  getRun(id: number): Promise<RunRecord | null>;
  /**
   * A run's attempts in order: those that ended (each stored once, at its end) and, while the run is
   * running, its current attempt as the run describes it (status `running`, no finish).
   */
  getAttempts(runId: number): Promise<AttemptRecord[]>;
  /** Runs newest first; `before` is the last id of the previous page. */
  listRuns(filter: RunQuery): Promise<RunRecord[]>;
  /**
   * Cancels a queued or running run at once; a running attempt becomes `cancelled` and its
   * worker learns it on its next heartbeat. Null when the run does not exist; throws RUN_FINISHED
   * when it already ended.
   */
  cancelRun(id: number, now: number): Promise<RunRecord | null>;

  // Worker protocol ----------------------------------------------------------

  /** Inserts or refreshes a worker, with its lease. */
  registerWorker(worker: WorkerRegistration, leaseMs: number, now: number): Promise<void>;
  /**
   * Extends the lease of a worker, which is the lease of each of its running attempts: no run is
   * written. Answers which of the attempts it listed are no longer its own running attempts
   * (cancelled, timed out, fenced out), and, when `polled` is given (every poll of the worker up to
   * that number was answered or abandoned, and `running` is all it holds), which of its running
   * attempts claimed by those polls it does not list: their answer never reached it. Attempts
   * claimed by later polls, or by polls without a number, are never in `unheld`. Null when the
   * worker is unknown or was declared lost: it must register again.
   */
  heartbeat(
    workerId: string,
    running: readonly AttemptRef[],
    leaseMs: number,
    now: number,
    polled?: number | null,
    /** The host's load the worker reports (kept on its row for `least-loaded`); absent: keep the last. */
    load?: WorkerLoad | null,
  ): Promise<HeartbeatAnswer | null>;
  /**
   * Claims up to `max` queued runs of the worker's group and handlers whose time has come,
   * highest priority first, then oldest: each becomes `running` with a new attempt, alive as long
   * as the worker's lease.
   */
  claimRuns(workerId: string, max: number, now: number): Promise<ClaimedRun[]>;
  /**
   * Marks a worker stopped (clean shutdown) and ends its lease: an attempt it still holds (a report
   * it gave up sending) is lost at the reaper's next sweep.
   */
  unregisterWorker(workerId: string, now: number): Promise<void>;
  /** Workers of one namespace, or of all. */
  listWorkers(namespace?: string): Promise<WorkerRecord[]>;
  /**
   * What the running runs of each of these workers request in all (each its own, a workflow step's,
   * else its job's; core/resources.ts units): what a claim subtracts from the worker's advertised
   * capacity. A worker that runs nothing with a request is absent.
   */
  resourcesInUse(workerIds: readonly string[]): Promise<Map<string, Resources>>;

  // Ending attempts ----------------------------------------------------------

  /**
   * Running attempts that need a decision: their worker's lease ended (lost: no heartbeat, declared
   * lost or stopped) or their deadline passed (timed out, which wins when both hold).
   */
  expiredAttempts(now: number, limit: number): Promise<ExpiredAttempt[]>;
  /** Running runs with their retry policy and holder, for deciding what their reports do. */
  runsForDecision(refs: readonly AttemptRef[]): Promise<DecisionInput[]>;
  /**
   * Ends attempts as decided. Each outcome applies only if the run is still `running` with that
   * attempt number; the answer says, in order, which applied. The outcomes name distinct runs (the
   * caller decides each attempt once). A scheduled run of a fixed-delay
   * job that ends sets the job's next fire time to `now + delay` in the same transaction.
   */
  finishAttempts(outcomes: readonly AttemptOutcome[], now: number): Promise<boolean[]>;
  /**
   * Keeps reports of a worker that came too late: its attempt had been ended by the node (lost,
   * timed out, cancelled) and the fence refused the report, yet the attempt ran on, so its run
   * executed more than once. A report is kept only for an attempt of this worker that the node
   * ended, once per attempt (the first), and not when it says what the attempt's end already says
   * (a report repeated after a lost answer). Answers how many were kept. The run's attempts show it
   * ({@link AttemptRecord.lateReport}).
   */
  recordLateReports(workerId: string, reports: readonly LateReport[], now: number): Promise<number>;
  /** Marks workers whose lease expired as lost; returns their ids. */
  markLostWorkers(now: number): Promise<string[]>;
  /**
   * Deletes up to `limit` stopped or lost workers whose lease ended before `before` and that hold no
   * running attempt any more; answers how many. Every sweep reads each worker whose lease ended (its
   * running attempts are lost), so workers gone for good must not pile up.
   */
  pruneWorkers(before: number, limit: number): Promise<number>;

  // Trigger partition leases -------------------------------------------------

  /** Takes each named lease that is free, expired or already ours; returns those now held. */
  acquireLeases(names: readonly string[], owner: string, ttlMs: number, now: number): Promise<Lease[]>;
  /** Extends leases still held (same owner and epoch); returns those. */
  renewLeases(leases: readonly Lease[], ttlMs: number, now: number): Promise<Lease[]>;
  releaseLeases(leases: readonly Lease[]): Promise<void>;

  // Cluster membership -------------------------------------------------------

  /** The store's own clock, epoch ms: the clock every node judges "due" and "alive" by. */
  databaseTime(): Promise<number>;
  /** One trivial read for readiness probes: the highest migration applied to the store (0 when none). */
  schemaVersion(): Promise<number>;
  /**
   * Inserts or refreshes a node's row (keyed by its instance), valid until `now + ttlMs`; deletes
   * the rows of other nodes expired for longer than {@link GONE_NODE_KEPT_LEASES} × `ttlMs`. Answers
   * how many nodes are alive (expiry after `now`), this one included, and how many other live
   * instances carry the same node id (a configuration mistake the node warns about).
   */
  heartbeatNode(node: NodeHeartbeat, ttlMs: number, now: number): Promise<NodeHeartbeatAnswer>;
  /** Removes a node's row by its instance (clean shutdown), so that the others rebalance at once. */
  removeNode(instance: string): Promise<void>;
  listNodes(): Promise<NodeRecord[]>;

  // Notifications ------------------------------------------------------------

  /**
   * Subscribes to store events, from this process and, where the dialect can, from other nodes:
   * `runs` (runs became available in a group), `jobs` (a job's schedule changed).
   */
  subscribe(listener: (event: StoreEvent) => void): () => void;

  // Schedules ----------------------------------------------------------------

  /** The ledger of a job: ranges of fire times that did not run, newest first; `before` is the last id of the previous page. */
  listSkipped(jobId: number, query: { before?: number | undefined; limit: number }): Promise<SkippedRecord[]>;
  /**
   * Resumes a paused job, in one transaction: replaces its definition and next fire time and records
   * the fires it missed while paused (`skipped`, reason `paused`), and bumps its version. Applies only
   * if the job is still paused (and matches `expected`, as {@link updateJob}); null otherwise (missing,
   * or changed or resumed by someone else first: nothing is recorded twice). `quota` as for
   * {@link updateJob}.
   */
  resumeJob(
    id: number,
    job: JobDefinition,
    nextFireAt: number | null,
    skipped: SkippedRange | null,
    now: number,
    expected?: JobExpectation,
    quota?: JobQuotaCheck,
  ): Promise<JobRecord | null>;
  /**
   * Creates backfill runs (cause `backfill`) for past fire times of a job, in one transaction. A fire
   * time that already has a run keeps it (UNIQUE(job, fire time)) and is answered in `existing`.
   * `buffer-all` queues them behind each other and behind any active run of the job: one runs at a
   * time, oldest first. Every run created keeps `traceContext` (the API request's span), as a
   * trigger's runs do. Throws JOB_NOT_FOUND. With `maxQueuedRuns`, the runs it creates are counted
   * with the namespace's queued runs (see {@link MaxQueuedRuns}).
   */
  backfillRuns(
    jobId: number,
    fireTimes: readonly number[],
    overlap: 'allow' | 'buffer-all',
    now: number,
    traceContext?: TraceContext | null,
    maxQueuedRuns?: MaxQueuedRuns,
  ): Promise<{ created: Array<{ runId: number; fireTime: number }>; existing: number[] }>;
  /**
   * Creates or replaces a calendar of a namespace (absent: `default`); `created` tells which. Throws
   * NAME_TAKEN when another namespace has a calendar of that name.
   */
  putCalendar(
    calendar: CalendarDefinition,
    now: number,
    namespace?: string,
  ): Promise<{ calendar: CalendarRecord; created: boolean }>;
  /** The calendars of these names that exist, in name order. */
  getCalendars(names: readonly string[]): Promise<CalendarRecord[]>;
  /** Calendars ordered by name: of one namespace, or of all. */
  listCalendars(namespace?: string): Promise<CalendarRecord[]>;
  /** Deletes a calendar; false when there is none. Throws CALENDAR_IN_USE while a job names it. */
  deleteCalendar(name: string): Promise<boolean>;

  // Access -------------------------------------------------------------------
  // Users, sessions, API tokens and the audit log (store/access.ts has the types), and the
  // counts the console's overview reads. Writes that change access take an optional audit entry
  // and write it in the same transaction.

  /** Inserts a user. Throws USER_NAME_TAKEN when the name exists. */
  createUser(user: NewUser, now: number, audit?: AuditEntry): Promise<UserRecord>;
  getUser(name: string): Promise<UserRecord | null>;
  /** Users ordered by name. */
  listUsers(): Promise<UserRecord[]>;
  /**
   * Changes a user's role or password; a new password ends the user's sessions. Null when the
   * user does not exist; throws LAST_ADMIN when the change would leave no admin user.
   */
  updateUser(name: string, patch: UserPatch, now: number, audit?: AuditEntry): Promise<UserRecord | null>;
  /**
   * Signs in a user of an OpenID provider: the user with that (issuer, subject) gets the given name
   * and role, or is created (password hash `EXTERNAL_PASSWORD_HASH`). Found by identity, never
   * by name: throws USER_NAME_TAKEN, writing nothing, when the name belongs to another user (a local
   * one or another identity). The provider decides the role, but, as for updateUser, throws
   * LAST_ADMIN, writing nothing, when the login would demote the last admin user.
   */
  upsertExternalUser(user: ExternalUser, now: number, audit?: AuditEntry): Promise<UserRecord>;
  /** Deletes a user with their sessions. Throws LAST_ADMIN for the last admin user. */
  deleteUser(name: string, audit?: AuditEntry): Promise<boolean>;
  /** Inserts a session, and removes sessions expired at `now`. */
  createSession(session: NewSession, now: number): Promise<void>;
  /** The session with that id hash and its user, unless it expired at `now`. */
  getSession(idHash: string, now: number): Promise<SessionRecord | null>;
  deleteSession(idHash: string): Promise<void>;
  /** Records a login under way at the OpenID provider, and removes those expired at `now`. */
  createOidcLogin(login: NewOidcLogin, now: number): Promise<void>;
  /**
   * Takes (deletes and answers) the login under way with that id hash: once only. Null when there
   * is none or it expired at `now`.
   */
  takeOidcLogin(idHash: string, now: number): Promise<OidcLoginRecord | null>;
  createApiToken(token: NewApiToken, now: number, audit?: AuditEntry): Promise<ApiTokenRecord>;
  /** The token with that SHA-256 hash (hex), or null. */
  findApiToken(tokenHash: string): Promise<ApiTokenRecord | null>;
  /** Tokens newest first: of one namespace (global tokens are of `*`), or all. */
  listApiTokens(namespace?: string): Promise<ApiTokenRecord[]>;
  deleteApiToken(id: number, audit?: AuditEntry): Promise<boolean>;
  appendAudit(entry: AuditEntry): Promise<void>;
  /** Audit entries newest first, of some namespaces or all; `before` is the last id of the previous page. */
  listAudit(filter: {
    namespaces?: readonly string[] | undefined;
    before?: number | undefined;
    limit: number;
  }): Promise<AuditRecord[]>;
  /** The group of a registered worker (whatever its status) and who registered it, or null. */
  workerIdentity(workerId: string): Promise<WorkerIdentity | null>;
  /** Runs running and queued now, runs ended since `since` by outcome, workers and nodes alive at `now`. */
  overviewCounts(since: number, now: number, namespace?: string): Promise<OverviewCounts>;
  /** Runs ended since `since`, counted by minute (start of the minute, epoch ms) and final status. */
  runsPerMinute(since: number, namespace?: string): Promise<MinuteCount[]>;
  /**
   * How late scheduled runs started against their fire time: `first attempt start − fire time` of
   * runs with cause `schedule` whose first attempt started in [since, now], the newest `limit` of
   * them, folded by {@link latenessFromSample} (nearest rank, the same on every dialect).
   */
  fireLateness(since: number, now: number, limit: number): Promise<FireLateness>;
  /**
   * Queued runs counted by group, job and handler, for the queue metrics and `kairos doctor`: how
   * many, the earliest `availableAt` among those whose time has come, and whether a live worker
   * (active, lease not expired at `now`) of the job's namespace and group exists and declares the
   * handler (a worker serves its own namespace only). One statement
   * over the `runs_queued_by_job` index; at most `limit` rows, the largest counts first.
   */
  queuedRunCounts(now: number, limit: number): Promise<QueuedRunCount[]>;

  // Workers at scale ----

  /**
   * Claims up to `max` queued runs for a worker, honouring each job's dispatch policy in one
   * transaction (`store/dispatch-plan.ts` decides, every dialect reads and writes):
   * - label selector: only workers whose labels match take the job's runs;
   * - routing: a routed run is assigned to one live worker by its job's strategy over the live
   *   workers of the group, with the job's routing state (shared by every node); only that worker
   *   claims it, and it is routed again when that worker is no longer alive or eligible;
   * - limits: at most `maxConcurrency` runs of a job and the group's limit running cluster-wide.
   * Runs of plain jobs are claimed as {@link claimRuns} does. A draining worker claims nothing;
   * an unknown or lost one gets WORKER_NOT_FOUND. `random` in [0, 1) seeds `random` routing.
   * `claimSeq` is the number of the worker's poll that claims (null: not numbered), kept with each
   * attempt claimed, for {@link heartbeat}'s `polled`; every claim writes it.
   */
  /**
   * Resource-based scheduling: how long the oldest run that fits no live worker's free capacity
   * waits before one worker reserves for it (store/dispatch-plan.ts). Default 30 s.
   */
  reserveAfterMs: number;
  dispatchRuns(
    workerId: string,
    max: number,
    now: number,
    random: number,
    claimSeq?: number | null,
  ): Promise<ClaimedRun[]>;
  /**
   * A long poll's claim: {@link dispatchRuns}, and when it takes nothing, {@link nextAvailableAt}
   * at the same `now` (null: none waiting), which the poll needs before it waits. PostgreSQL answers
   * both in the claim's statement; every poll that finds nothing ready saves a round trip.
   */
  dispatchForPoll(
    workerId: string,
    max: number,
    now: number,
    random: number,
    claimSeq?: number | null,
  ): Promise<PollDispatch>;
  /**
   * Fire ahead: claims for a worker up to `max` queued runs that become available after `now` and
   * at or before `until`, soonest first, for the worker to hold and start at their instant. Each
   * attempt starts at the run's `available_at` (its `startAt`, also its `started_at`), and its
   * deadline counts from then; it lives on its worker's lease, as any attempt. Only runs any worker of
   * the group may take are claimed this way: unassigned runs of jobs without routing, label
   * selector or limits, in a group without limits (the others wait for their instant and
   * {@link dispatchRuns}). A worker that is not active (draining, lost, unknown) claims nothing.
   */
  dispatchAhead(
    workerId: string,
    max: number,
    until: number,
    now: number,
    claimSeq?: number | null,
  ): Promise<ClaimedRun[]>;
  /**
   * The earliest instant after `now` at which a queued run of the worker's group becomes available
   * (a run fired ahead, a retry, a jittered fire), or null when none is waiting: a long poll with
   * nothing to claim sleeps until then at most. One index probe (`runs_ahead`).
   */
  nextAvailableAt(workerId: string, now: number): Promise<number | null>;
  /**
   * Whether a queued run of `group` (any namespace) is available at or before `until`: ready now or
   * soon. The dispatcher asks it before it passes a wake on from a poll that took less than it
   * could to the next waiting poll of the group. One probe of an index of queued runs.
   */
  hasQueuedRuns(group: string, until: number): Promise<boolean>;
  /**
   * Takes back the fires of a paused job that were made ahead of time, are due after `after` and
   * that no worker holds: its scheduled runs still queued and never claimed at this moment (fenced:
   * a claim in flight wins, and its run stays) are deleted, and the job's next fire moves back to the
   * earliest of them, so that resuming counts them among the fires the pause skipped. A run a worker
   * holds until its instant is never deleted: it runs (a cancel could reach the worker after the
   * handler started). Only runs later than every run of the job kept after `after` are taken back,
   * so the next fire never moves to or before an instant that has a run. Answers how many.
   */
  withdrawFiresAhead(jobId: number, after: number): Promise<number>;
  /**
   * Marks a worker draining: it keeps heartbeating and finishing its attempts, claims nothing new,
   * and its assigned queued runs are routed elsewhere. Null when unknown; WORKER_NOT_ACTIVE when lost
   * or stopped. Draining twice is a no-op.
   */
  drainWorker(workerId: string, now: number): Promise<WorkerRecord | null>;
  /**
   * Undoes a drain: a draining worker is active again and claims runs; long polls of its group are
   * woken. Null when unknown; WORKER_NOT_ACTIVE when lost or stopped. Resuming an active worker is a
   * no-op.
   */
  resumeWorker(workerId: string, now: number): Promise<WorkerRecord | null>;
  /**
   * Fails queued runs that waited longer than their job's schedule-to-start timeout since they
   * became available (`ScheduleToStartTimeout`); answers the ids, at most `limit`.
   */
  expireQueuedRuns(now: number, limit: number): Promise<number[]>;
  /**
   * Replaces the limits of a group of one namespace (null: none): its runs running at once, and
   * started per time, cluster-wide. They count and cap only that namespace's runs of the group
   * (docs/tenancy.md); every claim path honours them. `default`'s are also written where nodes of
   * the previous release read them (docs/operations.md, upgrade notes).
   */
  setGroupLimit(group: string, limits: GroupLimits, now: number, namespace?: string): Promise<void>;
  /** Group limits of one namespace, or of all; by namespace, then group. */
  listGroupLimits(namespace?: string): Promise<GroupLimit[]>;
  /** A job's routing state (round-robin turn, per-worker use), or null before its first routed run. */
  routingState(jobId: number): Promise<RoutingState | null>;
  /**
   * Appends a worker's log lines and progress, in order. Only lines of attempts that this worker
   * ran (its running attempt, or ones that ended) are kept: a late line of a finished attempt is, a
   * stranger's is not.
   * Each run keeps at most `maxLines` lines; the first line over the limit is replaced by one
   * marker line and the rest are dropped. Answers how many lines were stored.
   */
  appendRunLogs(workerId: string, batch: RunLogBatch, maxLines: number, now: number): Promise<number>;
  /** Lines of a run with `seq > after`, oldest first, at most `limit`. */
  runLogs(runId: number, after: number, limit: number): Promise<RunLogRecord[]>;
  runProgress(runId: number): Promise<RunProgressRecord | null>;
  /** Deletes up to `limit` log lines stored before `before` (retention); answers how many. */
  pruneRunLogs(before: number, limit: number): Promise<number>;

  // Retention (docs/retention.md; the pruner in scheduler/pruner.ts decides, core/retention.ts) ----

  /**
   * The pruner's age pass: runs with an end time before `until`, in end order (`finished_at`, id)
   * after `after`, at most `limit`, each with its job's retention and whether a later finished run
   * of its job exists. One range of the `runs_finished` index. A retry waiting may carry its last
   * attempt's end time: it is `queued`, and never deleted.
   */
  runsToPrune(after: PruneCursor | null, until: number, limit: number): Promise<PruneCandidate[]>;
  /**
   * The pruner's pass over one job with a retention of its own: the job's runs with an id above
   * `after`, oldest first, at most `limit` (a range of `runs_job`), and `keepFrom`, the id of its
   * `keepLast`-th newest finished run (1 when it keeps no count): runs below it are superseded.
   * `keepFrom` is null when the job has fewer finished runs than that.
   */
  jobRunsToPrune(jobId: number, keepLast: number, after: number, limit: number): Promise<JobPruneScan>;
  /** Jobs with a retention of their own (a full read of `jobs`, once per pruner cycle). */
  jobsWithRetention(): Promise<Array<{ jobId: number; retention: JobRetention }>>;
  /**
   * Deletes the runs named that are finished (succeeded, failed, timed out, cancelled), with their
   * attempts, log lines, progress and late reports; a run that is not finished stays, and so does a
   * step run of a workflow instance that is still running or paused (its instance may read it). Answers how
   * many runs went. One short transaction: the caller passes a bounded batch.
   */
  deleteFinishedRuns(ids: readonly number[]): Promise<number>;
  /**
   * The pruner's pass over workflow instances: instances that ended (`finished_at`) before `until`,
   * in end order after `after`, at most `limit` (one range of `workflow_instances_finished`), each
   * with its state and its number of step rows. A running or paused instance has no end time.
   */
  workflowInstancesToPrune(
    after: PruneCursor | null,
    until: number,
    limit: number,
  ): Promise<InstancePruneCandidate[]>;
  /**
   * Deletes up to `limit` map item rows of the instances named that are still ended (succeeded,
   * failed, cancelled); answers how many. One short statement: a repair that brought an instance back
   * meanwhile keeps its items.
   */
  pruneWorkflowMapItems(instanceIds: readonly number[], limit: number): Promise<number>;
  /**
   * Deletes the instances named that are still ended and hold no map item any more, with their step
   * rows, in one short transaction; answers how many instances went. Their runs stay, under the
   * runs' own retention.
   */
  deleteEndedWorkflowInstances(instanceIds: readonly number[]): Promise<number>;
  /** Deletes up to `limit` rows of the skipped-fire ledger last written before `before`; answers how many. */
  pruneSkippedFires(before: number, limit: number): Promise<number>;
  /** Deletes up to `limit` audit entries written before `before`; answers how many. */
  pruneAuditLog(before: number, limit: number): Promise<number>;
  /**
   * Gives space that deletes freed back to the file system: at most `maxPages` pages in one short
   * transaction, and only when at least `minFreeShare` (0..1) of the database is free. SQLite: an
   * incremental vacuum, on a database created with `auto_vacuum = INCREMENTAL` (every new one);
   * PostgreSQL: nothing (autovacuum's work). Answers the pages given back.
   */
  reclaimSpace(maxPages: number, minFreeShare: number): Promise<number>;
  /**
   * Whether the space of the rows retention deletes is reused and given back (docs/retention.md), for
   * `kairos doctor`. SQLite: the database was created with `auto_vacuum = INCREMENTAL` (every database
   * since 0.2.0). PostgreSQL: autovacuum is on, with the statistics that drive it (`track_counts`).
   */
  spaceUpkeep(): Promise<SpaceUpkeep>;
}

/** What {@link Store.spaceUpkeep} read: `ok` false when the database grows however much is pruned. */
export interface SpaceUpkeep {
  ok: boolean;
  detail: string;
}

/** Where the age pass of the pruner stopped: the last run it read, in end order. */
export interface PruneCursor {
  finishedAt: number;
  id: number;
}

/** What {@link Store.jobRunsToPrune} answers. */
export interface JobPruneScan {
  runs: PruneCandidate[];
  keepFrom: number | null;
}

export interface RunLogBatch {
  logs: ReadonlyArray<{
    runId: number;
    attempt: number;
    level: LogLevel;
    message: string;
    fields: JsonObject | null;
    time: number;
  }>;
  progress: ReadonlyArray<{ runId: number; attempt: number; value: number; message: string | null }>;
}

export interface RunLogRecord {
  seq: number;
  attempt: number;
  time: number;
  level: LogLevel;
  message: string;
  fields: JsonObject | null;
}

export interface RunProgressRecord {
  attempt: number;
  value: number;
  message: string | null;
  updatedAt: number;
}

export interface GroupLimits {
  maxConcurrency: number | null;
  rateLimit: RateLimit | null;
}

export interface GroupLimit extends GroupLimits {
  namespace: string;
  group: string;
  updatedAt: number;
}

/** One ledger row: fire times `first..last` of a job that did not become runs, for one reason. */
export interface SkippedRecord extends SkippedRange {
  id: number;
  jobId: number;
  jobName: string;
  recordedAt: number;
}

/** A ledger row the store wrote, for metrics. */
export interface SkipWritten {
  jobId: number;
  reason: SkipReason;
  count: number | null;
}

/**
 * `runs`: runs became available in a group; `jobs`: a schedule changed; `leases`: a node released
 * its partitions (the others take them now rather than at their next renewal).
 */
export type StoreEvent =
  | { type: 'runs'; group: string }
  | { type: 'jobs' }
  | { type: 'leases' }
  /** Workers at scale: lines were added to a run's log (log followers read them). */
  | { type: 'logs'; runId: number };

/**
 * A node that stopped renewing stays listed (as gone) for this many of its leases after its row
 * expired, then the next heartbeat of any node deletes its row.
 */
export const GONE_NODE_KEPT_LEASES = 5;

export interface NodeHeartbeat {
  /**
   * A random token of the process, unique to it: the key of its row and the owner name of its
   * partition leases. Two processes started with the same node id have different instances.
   */
  instance: string;
  /** The node id people read (`KAIROS_NODE_ID`). */
  id: string;
  address: string;
  version: string;
  startedAt: number;
  partitions: number[];
  clockSkewMs: number;
}

export interface NodeHeartbeatAnswer {
  /** Live nodes, this one included. */
  alive: number;
  /** Other live instances with this node's id. */
  namesakes: number;
}

export interface NodeRecord extends NodeHeartbeat {
  heartbeatAt: number;
  expiresAt: number;
}

/**
 * A namespace quota check run inside a job create's or edit's transaction, after the namespace is
 * locked against other quota-checked writes (SQLite: the write lock of an immediate transaction;
 * PostgreSQL: the namespace row `FOR UPDATE`, taken first): it gets the triggers of the namespace's
 * jobs (on an edit, all but the job edited) and throws to refuse, and then nothing is written. Two
 * concurrent creates or edits are checked one after the other.
 */
export type JobQuotaCheck = (triggers: readonly Trigger[]) => void;

/**
 * The namespace's maxQueuedRuns (docs/tenancy.md#quotas), checked inside a write that queues runs,
 * under the same lock as {@link JobQuotaCheck}: the runs the write inserts, counted with the queued
 * runs of the job's namespace, may not pass it (QUOTA_EXCEEDED, 429; nothing written). Absent or
 * null: not checked, no lock taken.
 */
export type MaxQueuedRuns = number | null;

/** What an edit read of a job, that must still hold when it writes (Store.updateJob). */
export interface JobExpectation {
  version: number;
  nextFireAt: number | null;
}

/** A job belongs to trigger partition `id % count`; a trigger loop fires the partitions it owns. */
/**
 * What firing reads of a due job. Jobs of one answer that have the same trigger or schedule may
 * share one object for it (a storm of one pattern parses it once): read them, never change them.
 */
export type DueJob = Pick<JobRecord, 'id' | 'name' | 'trigger' | 'schedule' | 'runsFired' | 'nextFireAt'> & {
  /** Set for a workflow's own job: its fires start instances of that workflow (docs/workflows.md#triggers). */
  workflowId?: number | null;
};

export interface Partitions {
  count: number;
  owned: readonly number[];
}

export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
}

export interface Lease {
  name: string;
  owner: string;
  epoch: number;
  expiresAt: number;
}

export interface FireEntry {
  jobId: number;
  /** The `nextFireAt` read from the store; the write happens only if it still is. */
  expected: number;
  next: number | null;
  /** Fire times that become runs. */
  fires: readonly number[];
  // Schedules ----
  /** When each run becomes available (its fire time plus jitter), parallel to `fires`; default the fire time. */
  availableAt?: readonly number[] | undefined;
  /** Fire times that will not run, written to the ledger in the same transaction when the compare-and-set won. */
  skipped?: readonly SkippedRange[] | undefined;
  /**
   * The job's overlap policy, applied in the transaction from the job's active (queued or running)
   * runs (see `decideOverlap` in core/overlap.ts): `skip` creates a run only when none is active
   * (the rest go to the ledger, `overlap`); `buffer-one`/`buffer-all` queue runs behind the active
   * one (promoted when it ends); `cancel-previous` cancels the active runs and creates one for the
   * latest fire. Absent: allow.
   */
  overlap?: Exclude<OverlapPolicy, 'allow'> | undefined;
  /** Add the runs created to the job's `runsFired` (jobs with `maxRuns`). */
  countRuns?: boolean | undefined;
  /** The job's fire just before `fires[0]`, so that fires the overlap policy drops extend the ledger row that ends there. */
  previousFire?: number | undefined;
  /** Tracing: the trace context of each fire's span, parallel to `fires`, kept on its run; absent: not traced. */
  traceContexts?: ReadonlyArray<TraceContext | null> | undefined;
  /**
   * The job is a workflow's own job: each fire that runs starts an instance of the workflow (cause
   * `schedule`, one per fire time), never a run of the job; the overlap policy judges its running
   * instances and `countRuns` counts instances (store/workflows.ts).
   */
  workflow?: boolean | undefined;
}

export interface FireResult {
  /** Runs created. */
  runs: number;
  /** Entries whose compare-and-set lost (another writer fired or changed the job first). */
  conflicts: number;
  /** Groups that got runs. */
  groups: string[];
  /** Ledger rows written (Schedules), for metrics. */
  skipped?: SkipWritten[];
}

/** What {@link Store.dispatchForPoll} answers: `nextAvailableAt` is null when runs were claimed. */
export interface PollDispatch {
  runs: ClaimedRun[];
  nextAvailableAt: number | null;
}

/** The tables that hold params: a job's defaults, and each run's own. */
export type SecretTable = 'jobs' | 'runs';
export const SECRET_TABLES: readonly SecretTable[] = ['jobs', 'runs'];

/** `table` when it is one of SECRET_TABLES: the only table names the secret queries are built with. */
export function checkedTable(table: SecretTable): SecretTable {
  if (!SECRET_TABLES.includes(table)) throw new TypeError(`not a table with params: ${String(table)}`);
  return table;
}

/** A row whose params hold a secret: `stored` is its params as the store holds them (opaque). */
export interface SecretParamsRow {
  id: number;
  params: JsonObject;
  stored: string;
}

/**
 * Where {@link Store.triggerRun} finds a waiting poll for the run it inserts (the dispatcher). A
 * poll taken is out of the waiting, and its wait has no end, until `give`: the store takes it, claims
 * and gives with no await between (SQLite's one synchronous transaction), so no hang-up, close or
 * timer comes between. Runs given after the poll ended anyway are dropped, as a lost poll answer is,
 * and the worker's next heartbeat gives them back (`unheld`).
 */
export interface PollHandOff {
  /**
   * A poll of `group` waiting for runs, taken from the waiting (no event reaches it); null: none.
   * By group alone: a poll whose worker may not take the run (another namespace or handler) is
   * given nothing and claims again itself.
   */
  take(group: string): WaitingPoll | null;
}

/** A poll taken by {@link PollHandOff.take}: whose it is, what it asks for, and its answer. */
export interface WaitingPoll {
  readonly workerId: string;
  readonly max: number;
  /** The worker's number of the poll (`claimSeq`). */
  readonly seq: number | null;
  /** For `random` routing. */
  readonly random: number;
  /** After the commit: what was claimed for the poll. Nothing: the poll claims again itself. */
  give(runs: ClaimedRun[]): void;
}

/** One run of {@link Store.triggerRun}: null `params` or `priority` take the job's. */
export interface TriggerRunRequest extends RunTimingRequest {
  params: JsonObject | null;
  priority: number | null;
}

export interface EnqueueRequest extends RunTimingRequest {
  params: JsonObject;
  priority: number;
}

/**
 * When a manual run may start and its idempotency key. A key holds its run until
 * `idempotencyExpiresAt`: a request with that key answers the run while its params and priority are
 * the same, and throws IDEMPOTENCY_CONFLICT (writing nothing) while they differ; after it, the key
 * is taken from the old run for a new one.
 */
export interface RunTimingRequest {
  idempotencyKey?: string | undefined;
  /** Epoch ms; null or absent with no expiry (keys written before expiry existed). */
  idempotencyExpiresAt?: number | null | undefined;
  /** Not handed to a worker before this instant (`availableAt`); absent: now. */
  availableAt?: number | undefined;
  /** Tracing: the context of the span that created the run (the API request), kept on the run. */
  traceContext?: TraceContext | null | undefined;
}

export interface RunRecord {
  id: number;
  jobId: number;
  jobName: string;
  /** Its job's namespace, copied when the run was made. */
  namespace: string;
  group: string;
  handler: string;
  cause: RunCause;
  fireTime: number | null;
  params: JsonObject;
  priority: number;
  status: RunStatus;
  attempt: number;
  maxAttempts: number;
  timeoutMs: number;
  workerId: string | null;
  createdAt: number;
  availableAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  result: Json | null;
  error: RunError | null;
  /** Workers at scale: the shard of a broadcast fire; null otherwise. */
  shard: { index: number; total: number } | null;
  /** Workers at scale: the worker a queued routed run waits for; null when any may take it. */
  assignedWorkerId: string | null;
  /** What the run requests (core/resources.ts): its own (a workflow step's), else its job's; null: nothing. */
  resources?: Resources | null;
}

export interface RunQuery {
  /** Only runs of this namespace; absent: every namespace. */
  namespace?: string | undefined;
  jobId?: number | undefined;
  status?: RunStatus | undefined;
  workerId?: string | undefined;
  /** Only runs with a smaller id (paging). */
  before?: number | undefined;
  /** Only runs created at or after this instant (epoch ms). */
  createdSince?: number | undefined;
  /** Only runs created before this instant (epoch ms). */
  createdUntil?: number | undefined;
  limit: number;
  /**
   * Leave out each run's params and result (answered as `{}` and null): a list shows summaries, and
   * a page of 500 runs with 64 KiB of params each is 32 MB read and held for nothing.
   */
  summary?: boolean | undefined;
}

export interface AttemptRecord {
  runId: number;
  attempt: number;
  workerId: string;
  status: AttemptStatus;
  startedAt: number;
  finishedAt: number | null;
  error: RunError | null;
  /** The worker's report that came after the node ended the attempt: it ran on (see {@link Store.recordLateReports}). */
  lateReport: { outcome: LateReport['outcome']; reportedAt: number; error: RunError | null } | null;
}

/** A worker's report of how an attempt ended, refused by the fence (see {@link Store.recordLateReports}). */
export interface LateReport extends AttemptRef {
  outcome: 'succeeded' | 'failed' | 'timed_out';
  error: RunError | null;
}

/** What {@link Store.heartbeat} answers. */
export interface HeartbeatAnswer {
  /** Attempts the worker listed that are no longer its own running attempts: it must stop them. */
  cancel: AttemptRef[];
  /** The worker's running attempts whose claim's answer never reached it: to give back (lost). */
  unheld: AttemptRef[];
}

export interface WorkerRegistration {
  id: string;
  name: string;
  group: string;
  handlers: string[];
  capacity: number;
  labels: Record<string, string>;
  version: string;
  host: string;
  /**
   * The actor of the token that registered it (`worker-token`, `token:<name>`); empty for workers
   * registered before this was kept. See {@link Store.workerIdentity}.
   */
  registeredBy?: string;
  /** The namespace it serves (its token's); absent: `default`. It claims only runs of it. */
  namespace?: string;
  /** What it advertised (core/resources.ts: cpu in millicores, memory in bytes); absent or null: none. */
  resources?: Resources | null;
  /** The host's load it last reported; null: never. */
  load?: WorkerLoad | null;
}

/** Who a worker is, for checking who may act as it. */
export interface WorkerIdentity {
  namespace: string;
  group: string;
  /** The actor of the token that registered it; empty: not known (any worker token may act). */
  registeredBy: string;
}

export interface WorkerRecord extends WorkerRegistration {
  namespace: string;
  status: WorkerStatus;
  running: number;
  registeredAt: number;
  lastHeartbeatAt: number;
  leaseExpiresAt: number;
}

export interface ClaimedRun {
  runId: number;
  attempt: number;
  jobName: string;
  handler: string;
  params: JsonObject;
  fireTime: number | null;
  timeoutMs: number;
  maxAttempts: number;
  /** Workers at scale: the built-in task of the run (a workflow task step's) or of its job, if any. */
  task?: TaskDefinition | null;
  /** Workers at scale: a shard of a broadcast fire. */
  shard?: { index: number; total: number };
  /** Fire ahead: the instant the attempt starts, when it was claimed before it (see `dispatchAhead`). */
  startAt?: number;
  /** Tracing: the trace context kept on the run (see {@link RunTimingRequest.traceContext}); absent: none. */
  traceContext?: TraceContext;
}

/** What deciding the end of an attempt needs to know. */
export interface DecisionInput {
  runId: number;
  attempt: number;
  jobId: number;
  group: string;
  cause: RunCause;
  retry: RetryPolicy;
  /** The worker that holds the attempt. */
  workerId: string;
}

export interface ExpiredAttempt extends DecisionInput {
  /** `lost`: the worker stopped heartbeating; `timed_out`: the attempt passed its deadline. */
  reason: 'lost' | 'timed_out';
}

/** The decided end of one attempt (see `decideOutcome` in core). */
export interface AttemptOutcome extends AttemptDecision {
  runId: number;
  attempt: number;
  /** The run's group, to wake pollers when it is queued again. */
  group: string;
  /**
   * A lost end the reaper decided at this instant: written only if the attempt's worker's lease
   * still ended at or before it, checked in the write itself. A heartbeat that reached the store
   * after the sweep read the lease (the sweep's node stalled, or its link to the database hung)
   * keeps the attempt running.
   */
  leaseEndedBy?: number;
  /**
   * A worker's report: written only if this worker holds the attempt, checked in the write itself.
   * An attempt number is claimed by one worker only, so a report naming another worker's attempt
   * (a peer in its group, a guessed run id) changes nothing.
   */
  workerId?: string;
}
