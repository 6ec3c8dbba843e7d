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
import { PostgresAlerts } from './alerts.ts';
import * as attempts from './attempts.ts';
import * as cluster from './cluster.ts';
import { PostgresConnection, type PostgresStoreOptions } from './connection.ts';
import * as dispatch from './dispatch.ts';
import * as fires from './fires.ts';
import * as jobs from './jobs.ts';
import * as logs from './logs.ts';
import { PostgresNamespaces } from './namespaces.ts';
import * as overview from './overview.ts';
import * as retention from './retention.ts';
import * as runs from './runs.ts';
import * as schedules from './schedules.ts';
import { afterRunsEnded } from './schedules.ts';
import { PostgresWorkflows } from './workflows.ts';

export type { PostgresStoreOptions } from './connection.ts';

/**
 * The cluster store on PostgreSQL. Claims use `FOR UPDATE SKIP LOCKED`; batches travel as one
 * jsonb parameter (`jsonb_to_recordset`) so that a batch is one statement; events cross nodes
 * through LISTEN/NOTIFY. This class is the index of the contract (store/store.ts): each method
 * hands its call to the file of its section, which holds the statements it runs.
 */
export class PostgresStore implements Store {
  readonly dialect = 'postgres';
  private readonly c: PostgresConnection;
  readonly alerts: AlertStore;
  readonly namespaces: NamespaceStore;
  readonly workflows: WorkflowStore;
  reserveAfterMs = DEFAULT_RESERVE_AFTER_MS;

  constructor(options: PostgresStoreOptions) {
    this.c = new PostgresConnection(options);
    this.alerts = new PostgresAlerts(this.c);
    this.namespaces = new PostgresNamespaces(this.c, (client, entry) => access.writeAudit(client, entry));
    this.workflows = new PostgresWorkflows(
      this.c,
      (groups) => this.c.notify([...new Set(groups)].map((group) => ({ type: 'runs', group }))),
      (client, runIds, now) => afterRunsEnded(client, runIds, now),
      () => this.c.notify([{ type: 'jobs' }]),
    );
  }

  // Connection (connection.ts): migrations, and change events (Notifications) ---------------------------

  migrate(): Promise<void> {
    return this.c.migrate();
  }

  close(): Promise<void> {
    return this.c.close();
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    return this.c.subscribe(listener);
  }

  // Jobs and secret params (jobs.ts) --------------------------------------------------------------------

  createJob(
    job: JobDefinition,
    nextFireAt: number | null,
    now: number,
    namespace = DEFAULT_NAMESPACE,
    quota?: JobQuotaCheck,
  ): Promise<JobRecord> {
    return jobs.createJob(this.c, job, nextFireAt, now, namespace, quota);
  }

  updateJob(
    id: number,
    job: JobDefinition,
    nextFireAt: number | null,
    now: number,
    expected?: JobExpectation,
    quota?: JobQuotaCheck,
  ): Promise<JobRecord | null> {
    return jobs.updateJob(this.c, id, job, nextFireAt, now, expected, quota);
  }

  getJob(name: string, options: { workflowJobs?: boolean } = {}): Promise<JobRecord | null> {
    return jobs.getJob(this.c, name, options);
  }

  listJobs(filter: {
    namespace?: string | undefined;
    group?: string | undefined;
    after?: string | undefined;
    limit: number;
  }): Promise<JobRecord[]> {
    return jobs.listJobs(this.c, filter);
  }

  deleteJob(name: string, version?: number, now = Date.now()): Promise<boolean> {
    return jobs.deleteJob(this.c, name, version, now);
  }

  secretParamsPage(table: SecretTable, afterId: number, limit: number): Promise<SecretParamsRow[]> {
    return jobs.secretParamsPage(this.c, table, afterId, limit);
  }

  replaceSecretParams(table: SecretTable, id: number, stored: string, params: JsonObject): Promise<boolean> {
    return jobs.replaceSecretParams(this.c, table, id, stored, params);
  }

  // Firing, and fire ahead (fires.ts) -------------------------------------------------------------------

  dueJobs(partitions: Partitions, now: number, limit: number): Promise<DueJob[]> {
    return fires.dueJobs(this.c, partitions, now, limit);
  }

  nextFireAt(partitions: Partitions): Promise<number | null> {
    return fires.nextFireAt(this.c, partitions);
  }

  fire(entries: readonly FireEntry[], leases: readonly Lease[] | null, now: number): Promise<FireResult> {
    return fires.fire(this.c, entries, leases, now);
  }

  dispatchAhead(
    workerId: string,
    max: number,
    until: number,
    now: number,
    claimSeq: number | null = null,
  ): Promise<ClaimedRun[]> {
    return fires.dispatchAhead(this.c, workerId, max, until, now, claimSeq);
  }

  withdrawFiresAhead(jobId: number, after: number): Promise<number> {
    return fires.withdrawFiresAhead(this.c, jobId, after);
  }

  dispatchForPoll(
    workerId: string,
    max: number,
    now: number,
    random: number,
    claimSeq: number | null = null,
  ): Promise<PollDispatch> {
    return fires.dispatchForPoll(this.c, workerId, max, now, random, claimSeq, this.reserveAfterMs);
  }

  nextAvailableAt(workerId: string, now: number): Promise<number | null> {
    return fires.nextAvailableAt(this.c, workerId, now);
  }

  hasQueuedRuns(group: string, until: number): Promise<boolean> {
    return fires.hasQueuedRuns(this.c, group, until);
  }

  // Runs (runs.ts) --------------------------------------------------------------------------------------

  enqueueRuns(
    jobId: number,
    requests: readonly EnqueueRequest[],
    now: number,
    maxQueuedRuns?: MaxQueuedRuns,
  ): Promise<number[]> {
    return runs.enqueueRuns(this.c, jobId, requests, now, maxQueuedRuns);
  }

  triggerRun(
    name: string,
    request: TriggerRunRequest,
    now: number,
    audit?: AuditEntry,
    maxQueuedRuns?: MaxQueuedRuns,
  ): Promise<RunRecord | null> {
    return runs.triggerRun(this.c, name, request, now, audit, maxQueuedRuns);
  }

  getRun(id: number): Promise<RunRecord | null> {
    return runs.getRun(this.c, id);
  }

  getAttempts(runId: number): Promise<AttemptRecord[]> {
    return runs.getAttempts(this.c, runId);
  }

  listRuns(filter: RunQuery): Promise<RunRecord[]> {
    return runs.listRuns(this.c, filter);
  }

  cancelRun(id: number, now: number): Promise<RunRecord | null> {
    return runs.cancelRun(this.c, id, now);
  }

  // Worker protocol, group limits, routing (dispatch.ts) ------------------------------------------------

  registerWorker(worker: WorkerRegistration, leaseMs: number, now: number): Promise<void> {
    return dispatch.registerWorker(this.c, worker, leaseMs, now);
  }

  heartbeat(
    workerId: string,
    running: readonly AttemptRef[],
    leaseMs: number,
    now: number,
    polled: number | null = null,
    load: WorkerLoad | null = null,
  ): Promise<HeartbeatAnswer | null> {
    return dispatch.heartbeat(this.c, workerId, running, leaseMs, now, polled, load);
  }

  claimRuns(workerId: string, max: number, now: number): Promise<ClaimedRun[]> {
    return dispatch.claimRuns(this.c, workerId, max, now);
  }

  dispatchRuns(
    workerId: string,
    max: number,
    now: number,
    random: number,
    claimSeq: number | null = null,
  ): Promise<ClaimedRun[]> {
    return dispatch.dispatchRuns(this.c, workerId, max, now, random, claimSeq, this.reserveAfterMs);
  }

  unregisterWorker(workerId: string, now: number): Promise<void> {
    return dispatch.unregisterWorker(this.c, workerId, now);
  }

  listWorkers(namespace?: string): Promise<WorkerRecord[]> {
    return dispatch.listWorkers(this.c, namespace);
  }

  resourcesInUse(workerIds: readonly string[]): Promise<Map<string, Resources>> {
    return dispatch.resourcesInUse(this.c, workerIds);
  }

  drainWorker(workerId: string, _now: number): Promise<WorkerRecord | null> {
    return dispatch.drainWorker(this.c, workerId, _now);
  }

  resumeWorker(workerId: string, _now: number): Promise<WorkerRecord | null> {
    return dispatch.resumeWorker(this.c, workerId, _now);
  }

  expireQueuedRuns(now: number, limit: number): Promise<number[]> {
    return dispatch.expireQueuedRuns(this.c, now, limit);
  }

  setGroupLimit(
    group: string,
    limits: GroupLimits,
    now: number,
    namespace: string = DEFAULT_NAMESPACE,
  ): Promise<void> {
    return dispatch.setGroupLimit(this.c, group, limits, now, namespace);
  }

  listGroupLimits(namespace?: string): Promise<GroupLimit[]> {
    return dispatch.listGroupLimits(this.c, namespace);
  }

  routingState(jobId: number): Promise<RoutingState | null> {
    return dispatch.routingState(this.c, jobId);
  }

  // Ending attempts (attempts.ts) -----------------------------------------------------------------------

  recordLateReports(workerId: string, reports: readonly LateReport[], now: number): Promise<number> {
    return attempts.recordLateReports(this.c, workerId, reports, now);
  }

  expiredAttempts(now: number, limit: number): Promise<ExpiredAttempt[]> {
    return attempts.expiredAttempts(this.c, now, limit);
  }

  runsForDecision(refs: readonly AttemptRef[]): Promise<DecisionInput[]> {
    return attempts.runsForDecision(this.c, refs);
  }

  finishAttempts(outcomes: readonly AttemptOutcome[], now: number): Promise<boolean[]> {
    return attempts.finishAttempts(this.c, outcomes, now);
  }

  markLostWorkers(now: number): Promise<string[]> {
    return attempts.markLostWorkers(this.c, now);
  }

  pruneWorkers(before: number, limit: number): Promise<number> {
    return attempts.pruneWorkers(this.c, before, limit);
  }

  // Trigger partition leases and cluster membership (cluster.ts) ----------------------------------------

  acquireLeases(names: readonly string[], owner: string, ttlMs: number, now: number): Promise<Lease[]> {
    return cluster.acquireLeases(this.c, names, owner, ttlMs, now);
  }

  renewLeases(leases: readonly Lease[], ttlMs: number, now: number): Promise<Lease[]> {
    return cluster.renewLeases(this.c, leases, ttlMs, now);
  }

  releaseLeases(leases: readonly Lease[]): Promise<void> {
    return cluster.releaseLeases(this.c, leases);
  }

  databaseTime(): Promise<number> {
    return cluster.databaseTime(this.c);
  }

  schemaVersion(): Promise<number> {
    return cluster.schemaVersion(this.c);
  }

  heartbeatNode(node: NodeHeartbeat, ttlMs: number, now: number): Promise<NodeHeartbeatAnswer> {
    return cluster.heartbeatNode(this.c, node, ttlMs, now);
  }

  removeNode(instance: string): Promise<void> {
    return cluster.removeNode(this.c, instance);
  }

  listNodes(): Promise<NodeRecord[]> {
    return cluster.listNodes(this.c);
  }

  // Schedules (schedules.ts) ----------------------------------------------------------------------------

  listSkipped(
    jobId: number,
    query: { before?: number | undefined; limit: number },
  ): Promise<SkippedRecord[]> {
    return schedules.listSkipped(this.c, jobId, query);
  }

  resumeJob(
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

  backfillRuns(
    jobId: number,
    fireTimes: readonly number[],
    overlap: 'allow' | 'buffer-all',
    now: number,
    traceContext: TraceContext | null = null,
    maxQueuedRuns?: MaxQueuedRuns,
  ): Promise<{ created: Array<{ runId: number; fireTime: number }>; existing: number[] }> {
    return schedules.backfillRuns(this.c, jobId, fireTimes, overlap, now, traceContext, maxQueuedRuns);
  }

  putCalendar(
    calendar: CalendarDefinition,
    now: number,
    namespace = DEFAULT_NAMESPACE,
  ): Promise<{ calendar: CalendarRecord; created: boolean }> {
    return schedules.putCalendar(this.c, calendar, now, namespace);
  }

  getCalendars(names: readonly string[]): Promise<CalendarRecord[]> {
    return schedules.getCalendars(this.c, names);
  }

  listCalendars(namespace?: string): Promise<CalendarRecord[]> {
    return schedules.listCalendars(this.c, namespace);
  }

  deleteCalendar(name: string): Promise<boolean> {
    return schedules.deleteCalendar(this.c, name);
  }

  // Access (access.ts) ----------------------------------------------------------------------------------

  createUser(user: NewUser, now: number, audit?: AuditEntry): Promise<UserRecord> {
    return access.createUser(this.c, user, now, audit);
  }

  getUser(name: string): Promise<UserRecord | null> {
    return access.getUser(this.c, name);
  }

  listUsers(): Promise<UserRecord[]> {
    return access.listUsers(this.c);
  }

  updateUser(name: string, patch: UserPatch, now: number, audit?: AuditEntry): Promise<UserRecord | null> {
    return access.updateUser(this.c, name, patch, now, audit);
  }

  upsertExternalUser(user: ExternalUser, now: number, audit?: AuditEntry): Promise<UserRecord> {
    return access.upsertExternalUser(this.c, user, now, audit);
  }

  deleteUser(name: string, audit?: AuditEntry): Promise<boolean> {
    return access.deleteUser(this.c, name, audit);
  }

  createSession(session: NewSession, now: number): Promise<void> {
    return access.createSession(this.c, session, now);
  }

  getSession(idHash: string, now: number): Promise<SessionRecord | null> {
    return access.getSession(this.c, idHash, now);
  }

  deleteSession(idHash: string): Promise<void> {
    return access.deleteSession(this.c, idHash);
  }

  createOidcLogin(login: NewOidcLogin, now: number): Promise<void> {
    return access.createOidcLogin(this.c, login, now);
  }

  takeOidcLogin(idHash: string, now: number): Promise<OidcLoginRecord | null> {
    return access.takeOidcLogin(this.c, idHash, now);
  }

  createApiToken(token: NewApiToken, now: number, audit?: AuditEntry): Promise<ApiTokenRecord> {
    return access.createApiToken(this.c, token, now, audit);
  }

  findApiToken(tokenHash: string): Promise<ApiTokenRecord | null> {
    return access.findApiToken(this.c, tokenHash);
  }

  listApiTokens(namespace?: string): Promise<ApiTokenRecord[]> {
    return access.listApiTokens(this.c, namespace);
  }

  deleteApiToken(id: number, audit?: AuditEntry): Promise<boolean> {
    return access.deleteApiToken(this.c, id, audit);
  }

  appendAudit(entry: AuditEntry): Promise<void> {
    return access.appendAudit(this.c, entry);
  }

  listAudit(filter: {
    namespaces?: readonly string[] | undefined;
    before?: number | undefined;
    limit: number;
  }): Promise<AuditRecord[]> {
    return access.listAudit(this.c, filter);
  }

  workerIdentity(workerId: string): Promise<WorkerIdentity | null> {
    return access.workerIdentity(this.c, workerId);
  }

  // Overview and queue counts (overview.ts) -------------------------------------------------------------

  overviewCounts(since: number, now: number, namespace?: string): Promise<OverviewCounts> {
    return overview.overviewCounts(this.c, since, now, namespace);
  }

  countQueuedRuns(namespace: string, upTo: number): Promise<number> {
    return overview.countQueuedRuns(this.c, namespace, upTo);
  }

  queuedRunCounts(now: number, limit: number): Promise<QueuedRunCount[]> {
    return overview.queuedRunCounts(this.c, now, limit);
  }

  runsPerMinute(since: number, namespace?: string): Promise<MinuteCount[]> {
    return overview.runsPerMinute(this.c, since, namespace);
  }

  fireLateness(since: number, now: number, limit: number): Promise<FireLateness> {
    return overview.fireLateness(this.c, since, now, limit);
  }

  // Run logs and progress (logs.ts) ---------------------------------------------------------------------

  appendRunLogs(workerId: string, batch: RunLogBatch, maxLines: number, now: number): Promise<number> {
    return logs.appendRunLogs(this.c, workerId, batch, maxLines, now);
  }

  runLogs(runId: number, after: number, limit: number): Promise<RunLogRecord[]> {
    return logs.runLogs(this.c, runId, after, limit);
  }

  runProgress(runId: number): Promise<RunProgressRecord | null> {
    return logs.runProgress(this.c, runId);
  }

  pruneRunLogs(before: number, limit: number): Promise<number> {
    return logs.pruneRunLogs(this.c, before, limit);
  }

  // Retention (retention.ts) ----------------------------------------------------------------------------

  runsToPrune(after: PruneCursor | null, until: number, limit: number): Promise<PruneCandidate[]> {
    return retention.runsToPrune(this.c, after, until, limit);
  }

  jobRunsToPrune(jobId: number, keepLast: number, after: number, limit: number): Promise<JobPruneScan> {
    return retention.jobRunsToPrune(this.c, jobId, keepLast, after, limit);
  }

  jobsWithRetention(): Promise<Array<{ jobId: number; retention: JobRetention }>> {
    return retention.jobsWithRetention(this.c);
  }

  deleteFinishedRuns(ids: readonly number[]): Promise<number> {
    return retention.deleteFinishedRuns(this.c, ids);
  }

  workflowInstancesToPrune(
    after: PruneCursor | null,
    until: number,
    limit: number,
  ): Promise<InstancePruneCandidate[]> {
    return retention.workflowInstancesToPrune(this.c, after, until, limit);
  }

  pruneWorkflowMapItems(instanceIds: readonly number[], limit: number): Promise<number> {
    return retention.pruneWorkflowMapItems(this.c, instanceIds, limit);
  }

  deleteEndedWorkflowInstances(instanceIds: readonly number[]): Promise<number> {
    return retention.deleteEndedWorkflowInstances(this.c, instanceIds);
  }

  pruneSkippedFires(before: number, limit: number): Promise<number> {
    return retention.pruneSkippedFires(this.c, before, limit);
  }

  pruneAuditLog(before: number, limit: number): Promise<number> {
    return retention.pruneAuditLog(this.c, before, limit);
  }

  reclaimSpace(maxPages: number, minFreeShare: number): Promise<number> {
    return retention.reclaimSpace(this.c, maxPages, minFreeShare);
  }

  spaceUpkeep(): Promise<SpaceUpkeep> {
    return retention.spaceUpkeep(this.c);
  }
}
