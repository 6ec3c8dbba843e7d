// The embedded store. Its operations live in one file per section of the Store contract
// (store/store.ts), beside their SQL; this class is their index.

import type { AttemptRef, JsonObject, TraceContext } from '@kairos/client';
import type { CalendarDefinition, CalendarRecord } from '../../core/calendar.ts';
import type { SkippedRange } from '../../core/fire-plan.ts';
import type { JobDefinition, JobRecord } from '../../core/job.ts';
import type { Resources } from '../../core/resources.ts';
import type { InstancePruneCandidate, JobRetention, PruneCandidate } from '../../core/retention.ts';
import type { RoutingState, WorkerLoad } from '../../core/routing.ts';
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
} from '../access.ts';
import type { AlertStore } from '../alerts.ts';
import { DEFAULT_RESERVE_AFTER_MS } from '../dispatch-plan.ts';
import { DEFAULT_NAMESPACE, type NamespaceStore } from '../namespaces.ts';
import type {
  AttemptOutcome,
  AttemptRecord,
  ClaimedRun,
  DecisionInput,
  DueJob,
  EnqueueRequest,
  ExpiredAttempt,
  FireEntry,
  FireResult,
  GroupLimit,
  GroupLimits,
  HeartbeatAnswer,
  JobExpectation,
  JobPruneScan,
  JobQuotaCheck,
  LateReport,
  Lease,
  MaxQueuedRuns,
  NodeHeartbeat,
  NodeHeartbeatAnswer,
  NodeRecord,
  Partitions,
  PollDispatch,
  PollHandOff,
  PruneCursor,
  RunLogBatch,
  RunLogRecord,
  RunProgressRecord,
  RunQuery,
  RunRecord,
  SecretParamsRow,
  SecretTable,
  SkippedRecord,
  SpaceUpkeep,
  Store,
  StoreEvent,
  TriggerRunRequest,
  WorkerIdentity,
  WorkerRecord,
  WorkerRegistration,
} from '../store.ts';
import type { WorkflowStore } from '../workflows.ts';
import * as access from './access.ts';
import { SqliteAlerts } from './alerts.ts';
import * as attempts from './attempts.ts';
import { WalCheckpoints } from './checkpointer.ts';
import * as cluster from './cluster.ts';
import { close, migrate, openConnection, type SqliteConnection } from './connection.ts';
import * as dispatch from './dispatch.ts';
import * as fires from './fires.ts';
import * as jobs from './jobs.ts';
import * as logs from './logs.ts';
import { SqliteNamespaces } from './namespaces.ts';
import * as overview from './overview.ts';
import * as retention from './retention.ts';
import * as runs from './runs.ts';
import * as schedules from './schedules.ts';
import { afterRunsEnded } from './schedules.ts';
import { SqliteWorkflows } from './workflows.ts';

/**
 * The embedded store: one SQLite file in WAL mode, driven synchronously by better-sqlite3.
 * Node's single thread is the single writer SQLite wants, so every operation is one short
 * transaction with no lock waits inside this process; other processes on the same file wait
 * up to `busy_timeout`.
 */
export class SqliteStore implements Store {
  readonly dialect = 'sqlite';
  readonly alerts: AlertStore;
  readonly namespaces: NamespaceStore;
  readonly workflows: WorkflowStore;
  private readonly c: SqliteConnection;
  /** Checkpoints the write-ahead log off the event loop (a database in a file). */
  private readonly checkpoints: WalCheckpoints | null;
  reserveAfterMs = DEFAULT_RESERVE_AFTER_MS;

  constructor(readonly path: string) {
    this.c = openConnection(path);
    this.checkpoints = path === ':memory:' ? null : new WalCheckpoints(this.c.db, path);
    this.alerts = new SqliteAlerts(this.c);
    this.namespaces = new SqliteNamespaces(this.c, (entry) => access.writeAudit(this.c, entry));
    this.workflows = new SqliteWorkflows(
      this.c,
      (groups) => {
        for (const group of new Set(groups)) this.c.emit({ type: 'runs', group });
      },
      (ended, now) => afterRunsEnded((text) => this.c.sql(text), ended, now),
      () => this.c.emit({ type: 'jobs' }),
    );
  }

  async migrate(): Promise<void> {
    migrate(this.c);
  }

  async close(): Promise<void> {
    await this.checkpoints?.stop();
    close(this.c);
  }

  // Jobs ---------------------------------------------------------------------

  async createJob(
    job: JobDefinition,
    nextFireAt: number | null,
    now: number,
    namespace = DEFAULT_NAMESPACE,
    quota?: JobQuotaCheck,
  ): Promise<JobRecord> {
    return jobs.createJob(this.c, job, nextFireAt, now, namespace, quota);
  }

  async updateJob(
    id: number,
    job: JobDefinition,
    nextFireAt: number | null,
    now: number,
    expected?: JobExpectation,
    quota?: JobQuotaCheck,
  ): Promise<JobRecord | null> {
    return jobs.updateJob(this.c, id, job, nextFireAt, now, expected, quota);
  }

  async getJob(name: string, options: { workflowJobs?: boolean } = {}): Promise<JobRecord | null> {
    return jobs.getJob(this.c, name, options);
  }

  async listJobs(filter: {
    namespace?: string | undefined;
    group?: string | undefined;
    after?: string | undefined;
    limit: number;
  }): Promise<JobRecord[]> {
    return jobs.listJobs(this.c, filter);
  }

  async deleteJob(name: string, version?: number, now = Date.now()): Promise<boolean> {
    return jobs.deleteJob(this.c, name, version, now);
  }

  // Secret params ------------------------------------------------------------

  async secretParamsPage(table: SecretTable, afterId: number, limit: number): Promise<SecretParamsRow[]> {
    return jobs.secretParamsPage(this.c, table, afterId, limit);
  }

  async replaceSecretParams(
    table: SecretTable,
    id: number,
    stored: string,
    params: JsonObject,
  ): Promise<boolean> {
    return jobs.replaceSecretParams(this.c, table, id, stored, params);
  }

  // Firing -------------------------------------------------------------------

  async dueJobs(partitions: Partitions, now: number, limit: number): Promise<DueJob[]> {
    return fires.dueJobs(this.c, partitions, now, limit);
  }

  async nextFireAt(partitions: Partitions): Promise<number | null> {
    return fires.nextFireAt(this.c, partitions);
  }

  async fire(
    entries: readonly FireEntry[],
    leases: readonly Lease[] | null,
    now: number,
  ): Promise<FireResult> {
    return fires.fire(this.c, entries, leases, now);
  }

  // Runs ---------------------------------------------------------------------

  async enqueueRuns(
    jobId: number,
    requests: readonly EnqueueRequest[],
    now: number,
    maxQueuedRuns?: MaxQueuedRuns,
  ): Promise<number[]> {
    return runs.enqueueRuns(this.c, jobId, requests, now, maxQueuedRuns);
  }

  async triggerRun(
    name: string,
    request: TriggerRunRequest,
    now: number,
    audit?: AuditEntry,
    maxQueuedRuns?: MaxQueuedRuns,
    handOff?: PollHandOff,
  ): Promise<RunRecord | null> {
    return runs.triggerRun(this.c, name, request, now, audit, maxQueuedRuns, handOff, this.reserveAfterMs);
  }

  async getRun(id: number): Promise<RunRecord | null> {
    return runs.getRun(this.c, id);
  }

  async getAttempts(runId: number): Promise<AttemptRecord[]> {
    return runs.getAttempts(this.c, runId);
  }

  async listRuns(filter: RunQuery): Promise<RunRecord[]> {
    return runs.listRuns(this.c, filter);
  }

  async cancelRun(id: number, now: number): Promise<RunRecord | null> {
    return runs.cancelRun(this.c, id, now);
  }

  // Worker protocol ----------------------------------------------------------

  async registerWorker(worker: WorkerRegistration, leaseMs: number, now: number): Promise<void> {
    dispatch.registerWorker(this.c, worker, leaseMs, now);
  }

  async heartbeat(
    workerId: string,
    running: readonly AttemptRef[],
    leaseMs: number,
    now: number,
    polled: number | null = null,
    load: WorkerLoad | null = null,
  ): Promise<HeartbeatAnswer | null> {
    return dispatch.heartbeat(this.c, workerId, running, leaseMs, now, polled, load);
  }

  async claimRuns(workerId: string, max: number, now: number): Promise<ClaimedRun[]> {
    return dispatch.claimRuns(this.c, workerId, max, now);
  }

  async unregisterWorker(workerId: string, now: number): Promise<void> {
    dispatch.unregisterWorker(this.c, workerId, now);
  }

  async listWorkers(namespace?: string): Promise<WorkerRecord[]> {
    return dispatch.listWorkers(this.c, namespace);
  }

  async resourcesInUse(workerIds: readonly string[]): Promise<Map<string, Resources>> {
    return dispatch.resourcesInUse(this.c, workerIds);
  }

  // Ending attempts ----------------------------------------------------------

  async recordLateReports(workerId: string, reports: readonly LateReport[], now: number): Promise<number> {
    return attempts.recordLateReports(this.c, workerId, reports, now);
  }

  async expiredAttempts(now: number, limit: number): Promise<ExpiredAttempt[]> {
    return attempts.expiredAttempts(this.c, now, limit);
  }

  async runsForDecision(refs: readonly AttemptRef[]): Promise<DecisionInput[]> {
    return attempts.runsForDecision(this.c, refs);
  }

  async finishAttempts(outcomes: readonly AttemptOutcome[], now: number): Promise<boolean[]> {
    return attempts.finishAttempts(this.c, outcomes, now);
  }

  async markLostWorkers(now: number): Promise<string[]> {
    return attempts.markLostWorkers(this.c, now);
  }

  async pruneWorkers(before: number, limit: number): Promise<number> {
    return attempts.pruneWorkers(this.c, before, limit);
  }

  // Leases -------------------------------------------------------------------

  async acquireLeases(names: readonly string[], owner: string, ttlMs: number, now: number): Promise<Lease[]> {
    return cluster.acquireLeases(this.c, names, owner, ttlMs, now);
  }

  async renewLeases(leases: readonly Lease[], ttlMs: number, now: number): Promise<Lease[]> {
    return cluster.renewLeases(this.c, leases, ttlMs, now);
  }

  async releaseLeases(leases: readonly Lease[]): Promise<void> {
    cluster.releaseLeases(this.c, leases);
  }

  // Cluster membership -------------------------------------------------------

  async databaseTime(): Promise<number> {
    return cluster.databaseTime(this.c);
  }

  async schemaVersion(): Promise<number> {
    return cluster.schemaVersion(this.c);
  }

  async heartbeatNode(node: NodeHeartbeat, ttlMs: number, now: number): Promise<NodeHeartbeatAnswer> {
    return cluster.heartbeatNode(this.c, node, ttlMs, now);
  }

  async removeNode(instance: string): Promise<void> {
    cluster.removeNode(this.c, instance);
  }

  async listNodes(): Promise<NodeRecord[]> {
    return cluster.listNodes(this.c);
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    return this.c.subscribe(listener);
  }

  // Schedules ----------------------------------------------------------------

  async listSkipped(
    jobId: number,
    query: { before?: number | undefined; limit: number },
  ): Promise<SkippedRecord[]> {
    return schedules.listSkipped(this.c, jobId, query);
  }

  async resumeJob(
    id: number,
    job: JobDefinition,
    nextFireAt: number | null,
    skipped: SkippedRange | null,
    now: number,
    expected?: JobExpectation,
    quota?: JobQuotaCheck,
  ): Promise<JobRecord | null> {
    return schedules.resumeJob(this.c, id, job, nextFireAt, skipped, now, expected, quota);
  }

  async backfillRuns(
    jobId: number,
    fireTimes: readonly number[],
    overlap: 'allow' | 'buffer-all',
    now: number,
    traceContext: TraceContext | null = null,
    maxQueuedRuns?: MaxQueuedRuns,
  ): Promise<{ created: Array<{ runId: number; fireTime: number }>; existing: number[] }> {
    return schedules.backfillRuns(this.c, jobId, fireTimes, overlap, now, traceContext, maxQueuedRuns);
  }

  async putCalendar(
    calendar: CalendarDefinition,
    now: number,
    namespace = DEFAULT_NAMESPACE,
  ): Promise<{ calendar: CalendarRecord; created: boolean }> {
    return schedules.putCalendar(this.c, calendar, now, namespace);
  }

  async getCalendars(names: readonly string[]): Promise<CalendarRecord[]> {
    return schedules.getCalendars(this.c, names);
  }

  async listCalendars(namespace?: string): Promise<CalendarRecord[]> {
    return schedules.listCalendars(this.c, namespace);
  }

  async deleteCalendar(name: string): Promise<boolean> {
    return schedules.deleteCalendar(this.c, name);
  }

  // Access -------------------------------------------------------------------

  async createUser(user: NewUser, now: number, audit?: AuditEntry): Promise<UserRecord> {
    return access.createUser(this.c, user, now, audit);
  }

  async getUser(name: string): Promise<UserRecord | null> {
    return access.getUser(this.c, name);
  }

  async listUsers(): Promise<UserRecord[]> {
    return access.listUsers(this.c);
  }

  async updateUser(
    name: string,
    patch: UserPatch,
    now: number,
    audit?: AuditEntry,
  ): Promise<UserRecord | null> {
    return access.updateUser(this.c, name, patch, now, audit);
  }

  async upsertExternalUser(user: ExternalUser, now: number, audit?: AuditEntry): Promise<UserRecord> {
    return access.upsertExternalUser(this.c, user, now, audit);
  }

  async deleteUser(name: string, audit?: AuditEntry): Promise<boolean> {
    return access.deleteUser(this.c, name, audit);
  }

  async createSession(session: NewSession, now: number): Promise<void> {
    access.createSession(this.c, session, now);
  }

  async getSession(idHash: string, now: number): Promise<SessionRecord | null> {
    return access.getSession(this.c, idHash, now);
  }

  async deleteSession(idHash: string): Promise<void> {
    access.deleteSession(this.c, idHash);
  }

  async createOidcLogin(login: NewOidcLogin, now: number): Promise<void> {
    access.createOidcLogin(this.c, login, now);
  }

  async takeOidcLogin(idHash: string, now: number): Promise<OidcLoginRecord | null> {
    return access.takeOidcLogin(this.c, idHash, now);
  }

  async createApiToken(token: NewApiToken, now: number, audit?: AuditEntry): Promise<ApiTokenRecord> {
    return access.createApiToken(this.c, token, now, audit);
  }

  async findApiToken(tokenHash: string): Promise<ApiTokenRecord | null> {
    return access.findApiToken(this.c, tokenHash);
  }

  async listApiTokens(namespace?: string): Promise<ApiTokenRecord[]> {
    return access.listApiTokens(this.c, namespace);
  }

  async deleteApiToken(id: number, audit?: AuditEntry): Promise<boolean> {
    return access.deleteApiToken(this.c, id, audit);
  }

  async appendAudit(entry: AuditEntry): Promise<void> {
    access.appendAudit(this.c, entry);
  }

  async listAudit(filter: {
    namespaces?: readonly string[] | undefined;
    before?: number | undefined;
    limit: number;
  }): Promise<AuditRecord[]> {
    return access.listAudit(this.c, filter);
  }

  async workerIdentity(workerId: string): Promise<WorkerIdentity | null> {
    return access.workerIdentity(this.c, workerId);
  }

  // Overview (overview.ts) ----

  async overviewCounts(since: number, now: number, namespace?: string): Promise<OverviewCounts> {
    return overview.overviewCounts(this.c, since, now, namespace);
  }

  async countQueuedRuns(namespace: string, upTo: number): Promise<number> {
    return overview.countQueuedRuns(this.c, namespace, upTo);
  }

  async queuedRunCounts(now: number, limit: number): Promise<QueuedRunCount[]> {
    return overview.queuedRunCounts(this.c, now, limit);
  }

  async runsPerMinute(since: number, namespace?: string): Promise<MinuteCount[]> {
    return overview.runsPerMinute(this.c, since, namespace);
  }

  async fireLateness(since: number, now: number, limit: number): Promise<FireLateness> {
    return overview.fireLateness(this.c, since, now, limit);
  }

  // Workers at scale ----

  async dispatchRuns(
    workerId: string,
    max: number,
    now: number,
    random: number,
    claimSeq: number | null = null,
  ): Promise<ClaimedRun[]> {
    return dispatch.dispatchRuns(this.c, workerId, max, now, random, claimSeq, this.reserveAfterMs);
  }

  async drainWorker(workerId: string, _now: number): Promise<WorkerRecord | null> {
    return dispatch.drainWorker(this.c, workerId, _now);
  }

  async resumeWorker(workerId: string, _now: number): Promise<WorkerRecord | null> {
    return dispatch.resumeWorker(this.c, workerId, _now);
  }

  async expireQueuedRuns(now: number, limit: number): Promise<number[]> {
    return dispatch.expireQueuedRuns(this.c, now, limit);
  }

  async setGroupLimit(
    group: string,
    limits: GroupLimits,
    now: number,
    namespace: string = DEFAULT_NAMESPACE,
  ): Promise<void> {
    dispatch.setGroupLimit(this.c, group, limits, now, namespace);
  }

  async listGroupLimits(namespace?: string): Promise<GroupLimit[]> {
    return dispatch.listGroupLimits(this.c, namespace);
  }

  async routingState(jobId: number): Promise<RoutingState | null> {
    return dispatch.routingState(this.c, jobId);
  }

  // Run logs (logs.ts) ----

  async appendRunLogs(workerId: string, batch: RunLogBatch, maxLines: number, now: number): Promise<number> {
    return logs.appendRunLogs(this.c, workerId, batch, maxLines, now);
  }

  async runLogs(runId: number, after: number, limit: number): Promise<RunLogRecord[]> {
    return logs.runLogs(this.c, runId, after, limit);
  }

  async runProgress(runId: number): Promise<RunProgressRecord | null> {
    return logs.runProgress(this.c, runId);
  }

  async pruneRunLogs(before: number, limit: number): Promise<number> {
    return logs.pruneRunLogs(this.c, before, limit);
  }

  // Retention ----

  async runsToPrune(after: PruneCursor | null, until: number, limit: number): Promise<PruneCandidate[]> {
    return retention.runsToPrune(this.c, after, until, limit);
  }

  async jobRunsToPrune(jobId: number, keepLast: number, after: number, limit: number): Promise<JobPruneScan> {
    return retention.jobRunsToPrune(this.c, jobId, keepLast, after, limit);
  }

  async jobsWithRetention(): Promise<Array<{ jobId: number; retention: JobRetention }>> {
    return retention.jobsWithRetention(this.c);
  }

  async deleteFinishedRuns(ids: readonly number[]): Promise<number> {
    return retention.deleteFinishedRuns(this.c, ids);
  }

  async workflowInstancesToPrune(
    after: PruneCursor | null,
    until: number,
    limit: number,
  ): Promise<InstancePruneCandidate[]> {
    return retention.workflowInstancesToPrune(this.c, after, until, limit);
  }

  async pruneWorkflowMapItems(instanceIds: readonly number[], limit: number): Promise<number> {
    return retention.pruneWorkflowMapItems(this.c, instanceIds, limit);
  }

  async deleteEndedWorkflowInstances(instanceIds: readonly number[]): Promise<number> {
    return retention.deleteEndedWorkflowInstances(this.c, instanceIds);
  }

  async pruneSkippedFires(before: number, limit: number): Promise<number> {
    return retention.pruneSkippedFires(this.c, before, limit);
  }

  async pruneAuditLog(before: number, limit: number): Promise<number> {
    return retention.pruneAuditLog(this.c, before, limit);
  }

  async reclaimSpace(maxPages: number, minFreeShare: number): Promise<number> {
    return retention.reclaimSpace(this.c, maxPages, minFreeShare);
  }

  async spaceUpkeep(): Promise<SpaceUpkeep> {
    return retention.spaceUpkeep(this.c);
  }

  // Fire ahead ----

  async dispatchAhead(
    workerId: string,
    max: number,
    until: number,
    now: number,
    claimSeq: number | null = null,
  ): Promise<ClaimedRun[]> {
    return fires.dispatchAhead(this.c, workerId, max, until, now, claimSeq);
  }

  async withdrawFiresAhead(jobId: number, after: number): Promise<number> {
    return fires.withdrawFiresAhead(this.c, jobId, after);
  }

  async dispatchForPoll(
    workerId: string,
    max: number,
    now: number,
    random: number,
    claimSeq: number | null = null,
  ): Promise<PollDispatch> {
    return fires.dispatchForPoll(this.c, workerId, max, now, random, claimSeq, this.reserveAfterMs);
  }

  async nextAvailableAt(workerId: string, now: number): Promise<number | null> {
    return fires.nextAvailableAt(this.c, workerId, now);
  }

  async hasQueuedRuns(group: string, until: number): Promise<boolean> {
    return fires.hasQueuedRuns(this.c, group, until);
  }
}
