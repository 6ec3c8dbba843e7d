import type {
  AttemptRef,
  AttemptStatus,
  Json,
  JsonObject,
  LogLevel,
  RetryPolicy,
  RunCause,
  RunError,
  RunStatus,
  WorkerStatus,
} from '@kairos/client';
import type { JobDefinition, JobRecord } from '../core/job.ts';
import type { AttemptDecision } from '../core/outcome.ts';
import type { RateLimit } from '../core/rate-limit.ts';
import type { RoutingState } from '../core/routing.ts';
import type { TaskDefinition } from '../core/task.ts';

/**
 * The storage contract of Kairos. Every dialect (SQLite, PostgreSQL) implements it and passes the
 * one conformance suite in `store/conformance.ts` unchanged.
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

  /** Applies pending migrations. Safe to call from several nodes at once. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  // Jobs ---------------------------------------------------------------------

  /** Inserts a job. Throws JOB_NAME_TAKEN when the name exists. */
  createJob(job: JobDefinition, nextFireAt: number | null, now: number): Promise<JobRecord>;
  /** Replaces a job's definition and next fire time. Null when the job does not exist. */
  updateJob(
    id: number,
    job: JobDefinition,
    nextFireAt: number | null,
    now: number,
  ): Promise<JobRecord | null>;
  getJob(name: string): Promise<JobRecord | null>;
  /** Jobs ordered by name; `after` is the last name of the previous page. */
  listJobs(filter: {
    group?: string | undefined;
    after?: string | undefined;
    limit: number;
  }): Promise<JobRecord[]>;
  /** Deletes a job with its runs and attempts; attempts still on workers become stale. */
  deleteJob(name: string): Promise<boolean>;

  // Firing -------------------------------------------------------------------

  /** Jobs of the given trigger partitions that are due (`nextFireAt <= now`, not paused), most overdue first. */
  dueJobs(partitions: Partitions, now: number, limit: number): Promise<JobRecord[]>;
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
   * Queues runs of a job outside its schedule (manual or API trigger). A request whose
   * idempotency key was used before returns the earlier run instead of a new one.
   */
  enqueueRuns(jobId: number, requests: readonly EnqueueRequest[], now: number): Promise<number[]>;
  getRun(id: number): Promise<RunRecord | null>;
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
   * Extends the lease of a worker and of its running attempts. Answers which of the attempts it
   * reported are no longer its own running attempts (cancelled, timed out, fenced out).
   * Null when the worker is unknown or was declared lost: it must register again.
   */
  heartbeat(
    workerId: string,
    running: readonly AttemptRef[],
    leaseMs: number,
    now: number,
  ): Promise<AttemptRef[] | null>;
  /**
   * Claims up to `max` queued runs of the worker's group and handlers whose time has come,
   * highest priority first, then oldest: each becomes `running` with a new attempt.
   */
  claimRuns(workerId: string, max: number, leaseMs: number, now: number): Promise<ClaimedRun[]>;
  /** Marks a worker stopped (clean shutdown). Its running attempts are left to their leases. */
  unregisterWorker(workerId: string, now: number): Promise<void>;
  listWorkers(): Promise<WorkerRecord[]>;

  // Ending attempts ----------------------------------------------------------

  /** Running attempts that need a decision: lease expired (worker lost) or deadline passed. */
  expiredAttempts(now: number, limit: number): Promise<ExpiredAttempt[]>;
  /** Running runs with their retry policy, for deciding what their reports do. */
  runsForDecision(refs: readonly AttemptRef[]): Promise<DecisionInput[]>;
  /**
   * Ends attempts as decided. Each outcome applies only if the run is still `running` with that
   * attempt number; the answer says, in order, which applied. A scheduled run of a fixed-delay
   * job that ends sets the job's next fire time to `now + delay` in the same transaction.
   */
  finishAttempts(outcomes: readonly AttemptOutcome[], now: number): Promise<boolean[]>;
  /** Marks workers whose lease expired as lost; returns their ids. */
  markLostWorkers(now: number): Promise<string[]>;

  // Trigger partition leases -------------------------------------------------

  /** Takes each named lease that is free, expired or already ours; returns those now held. */
  acquireLeases(names: readonly string[], owner: string, ttlMs: number, now: number): Promise<Lease[]>;
  /** Extends leases still held (same owner and epoch); returns those. */
  renewLeases(leases: readonly Lease[], ttlMs: number, now: number): Promise<Lease[]>;
  releaseLeases(leases: readonly Lease[]): Promise<void>;

  // Cluster membership -------------------------------------------------------

  /** The store's own clock, epoch ms: the clock every node judges "due" and "alive" by. */
  databaseTime(): Promise<number>;
  /** Inserts or refreshes a node's row; answers how many nodes are alive (expiry after `now`), this one included. */
  heartbeatNode(node: NodeHeartbeat, ttlMs: number, now: number): Promise<number>;
  /** Removes a node's row (clean shutdown), so that the others rebalance at once. */
  removeNode(id: string): Promise<void>;
  listNodes(): Promise<NodeRecord[]>;

  // Notifications ------------------------------------------------------------

  /**
   * Subscribes to store events, from this process and, where the dialect can, from other nodes:
   * `runs` (runs became available in a group), `jobs` (a job's schedule changed).
   */
  subscribe(listener: (event: StoreEvent) => void): () => void;

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
   */
  dispatchRuns(
    workerId: string,
    max: number,
    leaseMs: number,
    now: number,
    random: number,
  ): Promise<ClaimedRun[]>;
  /**
   * Marks a worker draining: it keeps heartbeating and finishing its attempts, claims nothing new,
   * and its assigned queued runs are routed elsewhere. Null when unknown; WORKER_NOT_ACTIVE when lost
   * or stopped. Draining twice is a no-op.
   */
  drainWorker(workerId: string, now: number): Promise<WorkerRecord | null>;
  /**
   * Fails queued runs that waited longer than their job's schedule-to-start timeout since they
   * became available (`ScheduleToStartTimeout`); answers the ids, at most `limit`.
   */
  expireQueuedRuns(now: number, limit: number): Promise<number[]>;
  /** Replaces a group's limits (null: none): runs running at once, and runs started per time, cluster-wide. */
  setGroupLimit(group: string, limits: GroupLimits, now: number): Promise<void>;
  listGroupLimits(): Promise<GroupLimit[]>;
  /** A job's routing state (round-robin turn, per-worker use), or null before its first routed run. */
  routingState(jobId: number): Promise<RoutingState | null>;
  /**
   * Appends a worker's log lines and progress, in order. Only lines of attempts that this worker
   * ran (its attempt rows) are kept: a late line of a finished attempt is, a stranger's is not.
   * Each run keeps at most `maxLines` lines; the first line over the limit is replaced by one
   * marker line and the rest are dropped. Answers how many lines were stored.
   */
  appendRunLogs(workerId: string, batch: RunLogBatch, maxLines: number, now: number): Promise<number>;
  /** Lines of a run with `seq > after`, oldest first, at most `limit`. */
  runLogs(runId: number, after: number, limit: number): Promise<RunLogRecord[]>;
  runProgress(runId: number): Promise<RunProgressRecord | null>;
  /** Deletes up to `limit` log lines stored before `before` (retention); answers how many. */
  pruneRunLogs(before: number, limit: number): Promise<number>;
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
  group: string;
  updatedAt: number;
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

export interface NodeHeartbeat {
  id: string;
  address: string;
  version: string;
  startedAt: number;
  partitions: number[];
  clockSkewMs: number;
}

export interface NodeRecord extends NodeHeartbeat {
  heartbeatAt: number;
  expiresAt: number;
}

/** A job belongs to trigger partition `id % count`; a trigger loop fires the partitions it owns. */
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
}

export interface FireResult {
  /** Runs created. */
  runs: number;
  /** Entries whose compare-and-set lost (another writer fired or changed the job first). */
  conflicts: number;
  /** Groups that got runs. */
  groups: string[];
}

export interface EnqueueRequest {
  params: JsonObject;
  priority: number;
  idempotencyKey?: string | undefined;
}

export interface RunRecord {
  id: number;
  jobId: number;
  jobName: string;
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
}

export interface RunQuery {
  jobId?: number | undefined;
  status?: RunStatus | undefined;
  workerId?: string | undefined;
  /** Only runs with a smaller id (paging). */
  before?: number | undefined;
  limit: number;
}

export interface AttemptRecord {
  runId: number;
  attempt: number;
  workerId: string;
  status: AttemptStatus;
  startedAt: number;
  finishedAt: number | null;
  error: RunError | null;
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
}

export interface WorkerRecord extends WorkerRegistration {
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
  /** Workers at scale: the built-in task of the job, if any. */
  task?: TaskDefinition | null;
  /** Workers at scale: a shard of a broadcast fire. */
  shard?: { index: number; total: number };
}

/** What deciding the end of an attempt needs to know. */
export interface DecisionInput {
  runId: number;
  attempt: number;
  jobId: number;
  group: string;
  cause: RunCause;
  retry: RetryPolicy;
}

export interface ExpiredAttempt extends DecisionInput {
  /** `lost`: the worker stopped heartbeating; `timed_out`: the attempt passed its deadline. */
  reason: 'lost' | 'timed_out';
  workerId: string;
}

/** The decided end of one attempt (see `decideOutcome` in core). */
export interface AttemptOutcome extends AttemptDecision {
  runId: number;
  attempt: number;
  /** The run's group, to wake pollers when it is queued again. */
  group: string;
}
