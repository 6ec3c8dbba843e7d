import { KairosApiError } from './errors.ts';
import { type RunLogEvent, readRunLogEvents } from './sse.ts';
import { checkTaskParams, type Task, type TaskReturn, type TaskRun } from './tasks.ts';
import { inClientSpan } from './tracing.ts';
import type {
  AlertChannel,
  AlertChannelSpec,
  AlertDelivery,
  AlertDeliveryFilter,
  AlertOpen,
  AlertRule,
  AlertRuleSpec,
  AlertSilence,
  AlertSilenceSpec,
  ApiToken,
  ApiTokenSpec,
  AuditEntry,
  AuthProviders,
  BackfillRequest,
  BackfillResponse,
  Calendar,
  CalendarSpec,
  CreatedApiToken,
  DoctorReport,
  ErrorBody,
  Grant,
  GrantSpec,
  GroupInfo,
  GroupLimitRequest,
  Health,
  HeartbeatRequest,
  HeartbeatResponse,
  Job,
  JobFilter,
  JobPatch,
  JobSpec,
  JsonObject,
  LoginRequest,
  Me,
  MinuteStats,
  Namespace,
  NamespaceQuotas,
  NamespaceSpec,
  NodeInfo,
  Overview,
  Page,
  PollRequest,
  PollResponse,
  Preview,
  PreviewRequest,
  RegisterRequest,
  RegisterResponse,
  ReportRequest,
  ReportResponse,
  RetentionSettings,
  Run,
  RunFilter,
  RunLogPage,
  RunSummary,
  SecretRotation,
  SkippedFilter,
  SkippedFires,
  StatsWindow,
  TriggerRequest,
  User,
  UserSpec,
  UserUpdate,
  WorkerInfo,
  WorkerLogsRequest,
  WorkerLogsResponse,
  Workflow,
  WorkflowInstance,
  WorkflowMapItemPage,
  WorkflowMapItemState,
  WorkflowSpec,
  WorkflowStart,
} from './wire.ts';

export interface ClientOptions {
  /** Base URL of a node, e.g. `http://127.0.0.1:7070`. */
  url: string;
  /** API or worker token, sent as `Authorization: Bearer <token>`. */
  token?: string;
  /**
   * The namespace every request acts in, sent as `Kairos-Namespace` (docs/tenancy.md). Absent: the
   * node's `default`. Worker tokens act in their own namespace whatever this says.
   */
  namespace?: string;
  /** Per-request time limit in ms (long polls add their wait). Default 30 000. */
  timeoutMs?: number;
  /** Extra headers for each request, read at each call (the console sends its CSRF token this way). */
  headers?: () => Record<string, string>;
  /** How requests travel; `fetch` by default (the worker SDK passes one built on `node:http`). */
  transport?: Transport;
}

/** One request as the client sends it: the body is already JSON. */
export interface TransportRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
  /** The caller's abort, if any: rejects the request. */
  signal: AbortSignal | undefined;
  /** The whole request's time limit: rejects it when passed. */
  timeoutMs: number;
}

export interface TransportResponse {
  status: number;
  statusText: string;
  text: string;
}

/** Sends one request; rejects only when no answer came (network, abort, time limit). */
export type Transport = (request: TransportRequest) => Promise<TransportResponse>;

/** The default transport: `fetch`, in browsers and Node.js alike. */
export const fetchTransport: Transport = async ({ method, url, headers, body, signal, timeoutMs }) => {
  const timeout = AbortSignal.timeout(timeoutMs);
  const response = await fetch(url, {
    method,
    headers,
    body,
    signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
  });
  return { status: response.status, statusText: response.statusText, text: await response.text() };
};

type Query = Record<string, string | number | boolean | undefined>;

/**
 * Typed client of the Kairos REST API and worker protocol.
 *
 * ```ts
 * const kairos = new KairosClient({ url: 'http://127.0.0.1:7070', token });
 * await kairos.createJob({ name: 'report', handler: 'send-report', trigger: { kind: 'cron', cron: '0 9 * * *' } });
 * ```
 */
export class KairosClient {
  readonly url: string;
  private readonly token: string | undefined;
  /** The namespace of every request; undefined: `default`. */
  readonly namespace: string | undefined;
  private readonly timeoutMs: number;
  private readonly headers: (() => Record<string, string>) | undefined;
  private readonly transport: Transport;

  constructor(options: ClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.token = options.token;
    this.namespace = options.namespace;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.headers = options.headers;
    this.transport = options.transport ?? fetchTransport;
  }

  health(): Promise<Health> {
    return this.request('GET', '/v1/health');
  }

  createJob(spec: JobSpec): Promise<Job> {
    return this.request('POST', '/v1/jobs', spec);
  }

  /**
   * Creates the job or replaces its definition: safe to call on every deploy (a spec without
   * `paused` keeps the job paused or not, as it is). With `spec.version` or `options.ifMatch`,
   * replaces only that version of the job (409 `VERSION_CONFLICT` otherwise).
   */
  putJob(spec: JobSpec, options: JobEditOptions = {}): Promise<Job> {
    return this.request('PUT', `/v1/jobs/${enc(spec.name)}`, spec, undefined, ifMatch(options));
  }

  /**
   * Changes the fields `patch` names. With `patch.version` or `options.ifMatch` (a `Job.version`
   * you read), applies only while the job is still at that version: another change in between
   * answers 409 `VERSION_CONFLICT`, with the current job in `details.job`.
   *
   * @example
   * const job = await client.getJob('report');
   * await client.updateJob('report', { priority: 5 }, { ifMatch: job.version });
   */
  updateJob(name: string, patch: JobPatch, options: JobEditOptions = {}): Promise<Job> {
    return this.request('PATCH', `/v1/jobs/${enc(name)}`, patch, undefined, ifMatch(options));
  }

  getJob(name: string): Promise<Job> {
    return this.request('GET', `/v1/jobs/${enc(name)}`);
  }

  listJobs(filter: JobFilter = {}): Promise<Page<Job>> {
    return this.request('GET', '/v1/jobs', undefined, { ...filter });
  }

  /** Deletes a job and its runs; with `options.ifMatch`, only that version of it (VERSION_CONFLICT otherwise). */
  async deleteJob(name: string, options: JobEditOptions = {}): Promise<void> {
    await this.request('DELETE', `/v1/jobs/${enc(name)}`, undefined, undefined, ifMatch(options));
  }

  pauseJob(name: string, options: JobEditOptions = {}): Promise<Job> {
    return this.request('POST', `/v1/jobs/${enc(name)}/pause`, {}, undefined, ifMatch(options));
  }

  resumeJob(name: string, options: JobEditOptions = {}): Promise<Job> {
    return this.request('POST', `/v1/jobs/${enc(name)}/resume`, {}, undefined, ifMatch(options));
  }

  /**
   * Queues a run of a job. Traced: a client span `kairos.trigger`, whose context travels to the
   * node in `traceparent`/`tracestate` headers and from there with the run to its attempts.
   */
  triggerJob(name: string, request: TriggerRequest = {}): Promise<Run> {
    return inClientSpan('kairos.trigger', name, (headers) =>
      this.request('POST', `/v1/jobs/${enc(name)}/trigger`, request, undefined, { headers }),
    );
  }

  /**
   * Triggers a typed task's job: params are checked against the task's type (and its schema, if
   * it has one, before anything is sent; {@link TaskParamsError}).
   */
  async trigger<Params extends JsonObject, Result extends TaskReturn>(
    task: Task<Params, Result>,
    params: Params,
    request: Omit<TriggerRequest, 'params'> = {},
  ): Promise<TaskRun<Result>> {
    // Checked here, sent as given: the worker reads them through the schema (its output may differ).
    await checkTaskParams(task, params);
    return (await this.triggerJob(task.job, { ...request, params })) as TaskRun<Result>;
  }

  /** A run of a typed task, its result typed. */
  async getTaskRun<Result extends TaskReturn>(
    _task: Task<JsonObject, Result>,
    id: number,
  ): Promise<TaskRun<Result>> {
    return (await this.getRun(id)) as TaskRun<Result>;
  }

  /** Triggers a job many times in one durable write. */
  triggerJobBatch(name: string, runs: TriggerRequest[]): Promise<{ runIds: number[] }> {
    return inClientSpan('kairos.trigger-batch', name, (headers) =>
      this.request('POST', `/v1/jobs/${enc(name)}/trigger-batch`, { runs }, undefined, { headers }),
    );
  }

  /** The ledger of a job: fires that did not become runs, with the reason, newest first. */
  listSkipped(name: string, filter: SkippedFilter = {}): Promise<Page<SkippedFires>> {
    return this.request('GET', `/v1/jobs/${enc(name)}/skipped`, undefined, { ...filter });
  }

  /** The next fires of a saved job (default 20), marking those a DST rule changes. */
  previewJob(name: string, count?: number): Promise<Preview> {
    return this.request('GET', `/v1/jobs/${enc(name)}/preview`, undefined, { count });
  }

  /**
   * Runs a job for every fire time of its trigger in a past range, with a cap. Traced like
   * {@link triggerJob}: a client span `kairos.backfill`, whose context every run it creates carries.
   */
  backfill(name: string, request: BackfillRequest): Promise<BackfillResponse> {
    return inClientSpan('kairos.backfill', name, (headers) =>
      this.request('POST', `/v1/jobs/${enc(name)}/backfill`, request, undefined, { headers }),
    );
  }

  listCalendars(): Promise<{ items: Calendar[] }> {
    return this.request('GET', '/v1/calendars');
  }

  getCalendar(name: string): Promise<Calendar> {
    return this.request('GET', `/v1/calendars/${enc(name)}`);
  }

  createCalendar(spec: CalendarSpec): Promise<Calendar> {
    return this.request('POST', '/v1/calendars', spec);
  }

  /** Creates the calendar or replaces it; jobs that name it follow the new one at their next fire. */
  putCalendar(spec: CalendarSpec): Promise<Calendar> {
    return this.request('PUT', `/v1/calendars/${enc(spec.name)}`, spec);
  }

  async deleteCalendar(name: string): Promise<void> {
    await this.request('DELETE', `/v1/calendars/${enc(name)}`);
  }

  // Alerts (docs/alerts.md) -------------------------------------------------

  listAlertRules(): Promise<{ items: AlertRule[] }> {
    return this.request('GET', '/v1/alert-rules');
  }

  getAlertRule(name: string): Promise<AlertRule> {
    return this.request('GET', `/v1/alert-rules/${enc(name)}`);
  }

  createAlertRule(spec: AlertRuleSpec): Promise<AlertRule> {
    return this.request('POST', '/v1/alert-rules', spec);
  }

  /** Creates the rule or replaces it. */
  putAlertRule(spec: AlertRuleSpec): Promise<AlertRule> {
    return this.request('PUT', `/v1/alert-rules/${enc(spec.name)}`, spec);
  }

  async deleteAlertRule(name: string): Promise<void> {
    await this.request('DELETE', `/v1/alert-rules/${enc(name)}`);
  }

  listAlertChannels(): Promise<{ items: AlertChannel[] }> {
    return this.request('GET', '/v1/alert-channels');
  }

  getAlertChannel(name: string): Promise<AlertChannel> {
    return this.request('GET', `/v1/alert-channels/${enc(name)}`);
  }

  createAlertChannel(spec: AlertChannelSpec): Promise<AlertChannel> {
    return this.request('POST', '/v1/alert-channels', spec);
  }

  /** Creates the channel or replaces it; a secret or URL left out keeps the stored one. */
  putAlertChannel(spec: AlertChannelSpec): Promise<AlertChannel> {
    return this.request('PUT', `/v1/alert-channels/${enc(spec.name)}`, spec);
  }

  async deleteAlertChannel(name: string): Promise<void> {
    await this.request('DELETE', `/v1/alert-channels/${enc(name)}`);
  }

  /** Sends a test message through the channel now and answers its delivery (sent or failed). */
  testAlertChannel(name: string): Promise<AlertDelivery> {
    return this.request('POST', `/v1/alert-channels/${enc(name)}/test`);
  }

  listAlertSilences(): Promise<{ items: AlertSilence[] }> {
    return this.request('GET', '/v1/alert-silences');
  }

  createAlertSilence(spec: AlertSilenceSpec): Promise<AlertSilence> {
    return this.request('POST', '/v1/alert-silences', spec);
  }

  async deleteAlertSilence(id: number): Promise<void> {
    await this.request('DELETE', `/v1/alert-silences/${id}`);
  }

  /** The delivery history, newest first. */
  listAlertDeliveries(filter: AlertDeliveryFilter = {}): Promise<{ items: AlertDelivery[] }> {
    return this.request('GET', '/v1/alert-deliveries', undefined, filter);
  }

  /** Alerts firing now, one per rule and subject. */
  listOpenAlerts(): Promise<{ items: AlertOpen[] }> {
    return this.request('GET', '/v1/alerts');
  }

  /** The next fires of a trigger and schedule policy that are not saved (default 10). */
  preview(request: PreviewRequest): Promise<Preview> {
    return this.request('POST', '/v1/preview', request);
  }

  listRuns(filter: RunFilter = {}): Promise<Page<RunSummary>> {
    return this.request('GET', '/v1/runs', undefined, { ...filter });
  }

  getRun(id: number): Promise<Run> {
    return this.request('GET', `/v1/runs/${id}`);
  }

  cancelRun(id: number): Promise<Run> {
    return this.request('POST', `/v1/runs/${id}/cancel`, {});
  }

  listNodes(): Promise<{ items: NodeInfo[] }> {
    return this.request('GET', '/v1/nodes');
  }

  /** Active and draining workers; with `all`, lost and stopped ones too (until they are pruned). */
  listWorkers(filter: { all?: boolean } = {}): Promise<{ items: WorkerInfo[] }> {
    return this.request('GET', '/v1/workers', undefined, { all: filter.all || undefined });
  }

  // Worker protocol -------------------------------------------------------

  register(request: RegisterRequest): Promise<RegisterResponse> {
    return this.request('POST', '/v1/worker/register', request);
  }

  heartbeat(workerId: string, request: HeartbeatRequest): Promise<HeartbeatResponse> {
    return this.request('POST', `/v1/worker/${enc(workerId)}/heartbeat`, request);
  }

  /** `answerTimeoutMs`: how long to wait for the answer beyond the poll's wait (default: the client's time limit). */
  poll(
    workerId: string,
    request: PollRequest,
    signal?: AbortSignal,
    answerTimeoutMs?: number,
  ): Promise<PollResponse> {
    return this.request('POST', `/v1/worker/${enc(workerId)}/poll`, request, undefined, {
      signal,
      timeoutMs: answerTimeoutMs,
      extraTimeoutMs: request.waitMs ?? 0,
    });
  }

  report(workerId: string, request: ReportRequest): Promise<ReportResponse> {
    return this.request('POST', `/v1/worker/${enc(workerId)}/report`, request, undefined, {
      okStatuses: [409],
    });
  }

  async unregister(workerId: string): Promise<void> {
    await this.request('POST', `/v1/worker/${enc(workerId)}/unregister`, {});
  }

  // Workflows (docs/workflows.md) ------------------------------------------

  /**
   * Creates the workflow or replaces it (its `version` + 1); instances already started keep the
   * version they started with. A broken graph answers 422 `WORKFLOW_INVALID`, every problem in
   * `details.problems`.
   *
   * @example
   * await kairos.putWorkflow(workflow('nightly-etl').step('extract', { handler: 'extract' }).build());
   */
  putWorkflow(spec: WorkflowSpec): Promise<Workflow> {
    return this.request('PUT', `/v1/workflows/${enc(spec.name)}`, spec);
  }

  /** One workflow with its steps, as stored (defaults written out). */
  getWorkflow(name: string): Promise<Workflow> {
    return this.request('GET', `/v1/workflows/${enc(name)}`);
  }

  /** The namespace's workflows by name, one page (`nextCursor` for the next). */
  listWorkflows(filter: PageFilter = {}): Promise<Page<Workflow>> {
    return this.request('GET', '/v1/workflows', undefined, { ...filter });
  }

  /** Deletes a workflow with its instances and its handler steps' runs. */
  async deleteWorkflow(name: string): Promise<void> {
    await this.request('DELETE', `/v1/workflows/${enc(name)}`);
  }

  /**
   * Starts an instance: its root steps' runs are queued at once. A second start with the same
   * `idempotencyKey` answers the instance the first started, whatever its `context`.
   *
   * @example
   * const instance = await kairos.startWorkflow('nightly-etl', { context: { day: '2026-12-05' } });
   */
  startWorkflow(name: string, request: WorkflowStart = {}): Promise<WorkflowInstance> {
    return this.request('POST', `/v1/workflows/${enc(name)}/instances`, request);
  }

  /** A workflow's instances, newest first, one page. */
  listWorkflowInstances(name: string, filter: PageFilter = {}): Promise<Page<WorkflowInstance>> {
    return this.request('GET', `/v1/workflows/${enc(name)}/instances`, undefined, { ...filter });
  }

  /** An instance with each step's state and run id. */
  getWorkflowInstance(id: number): Promise<WorkflowInstance> {
    return this.request('GET', `/v1/workflow-instances/${id}`);
  }

  /**
   * A page of a map step's items, in index order (docs/workflows.md#the-items-of-a-map-step): each
   * item's state, run id, attempts, result size and error, and `counts` of all its items by state.
   * `state` keeps the items in that state; `include: 'result'` adds each item's result. A step that
   * is not a map step answers 409 `WORKFLOW_STEP_NOT_MAP`; one the instance does not have, 404
   * `WORKFLOW_STEP_NOT_FOUND`.
   *
   * ```ts
   * const failed = await kairos.listWorkflowMapItems(17, 'resize', { state: 'failed', limit: 100 });
   * ```
   */
  listWorkflowMapItems(
    id: number,
    step: string,
    filter: PageFilter & { state?: WorkflowMapItemState | undefined; include?: 'result' | undefined } = {},
  ): Promise<WorkflowMapItemPage> {
    return this.request('GET', `/v1/workflow-instances/${id}/steps/${enc(step)}/items`, undefined, {
      ...filter,
    });
  }

  /**
   * Cancels a running instance: its queued and running step runs are cancelled, its waiting and
   * ready steps end `cancelled`. An instance that ended answers 409 `WORKFLOW_INSTANCE_FINISHED`.
   */
  cancelWorkflowInstance(id: number): Promise<WorkflowInstance> {
    return this.request('POST', `/v1/workflow-instances/${id}/cancel`, {});
  }

  /**
   * Pauses a workflow's trigger: it no longer fires (`paused: true`); starts through the API still
   * work, and instances already running go on. Not an instance's pause ({@link pauseWorkflowInstance}).
   */
  pauseWorkflow(name: string): Promise<Workflow> {
    return this.request('POST', `/v1/workflows/${enc(name)}/pause`, {});
  }

  /** Resumes a workflow's trigger; the fires missed meanwhile are recorded in its ledger (`paused`). */
  resumeWorkflow(name: string): Promise<Workflow> {
    return this.request('POST', `/v1/workflows/${enc(name)}/resume`, {});
  }

  /** The ledger of a workflow's trigger: fires that did not start an instance, with the reason, newest first. */
  listWorkflowSkipped(name: string, filter: SkippedFilter = {}): Promise<Page<SkippedFires>> {
    return this.request('GET', `/v1/workflows/${enc(name)}/skipped`, undefined, { ...filter });
  }

  /**
   * Pauses a running instance (state `paused`): runs already queued go on, but no further step is
   * queued until {@link resumeWorkflowInstance}. An ended instance answers 409
   * `WORKFLOW_INSTANCE_FINISHED`.
   */
  pauseWorkflowInstance(id: number): Promise<WorkflowInstance> {
    return this.request('POST', `/v1/workflow-instances/${id}/pause`, {});
  }

  /** Resumes a paused instance (state `running`): the steps held while it was paused are queued. */
  resumeWorkflowInstance(id: number): Promise<WorkflowInstance> {
    return this.request('POST', `/v1/workflow-instances/${id}/resume`, {});
  }

  /**
   * Retries a failed or cancelled instance from where it stopped: its failed and cancelled steps,
   * and the steps skipped because of them, run again as their edges decide. Another state answers
   * 409 `WORKFLOW_INSTANCE_NOT_RETRYABLE`.
   */
  retryWorkflowInstance(id: number): Promise<WorkflowInstance> {
    return this.request('POST', `/v1/workflow-instances/${id}/retry`, {});
  }

  /**
   * Runs an ended step again, with a new run, and the steps after it as their edges then decide. A
   * step still waiting or ready answers 409 `WORKFLOW_STEP_NOT_ENDED`; an unknown one 404
   * `WORKFLOW_STEP_NOT_FOUND`.
   */
  rerunWorkflowStep(id: number, step: string): Promise<WorkflowInstance> {
    return this.request('POST', `/v1/workflow-instances/${id}/steps/${enc(step)}/rerun`, {});
  }

  /**
   * Skips a step by hand: it ends as a success with a null result (`skipped: true` on its entry; a
   * run of it is cancelled), and its children go on. A step that cannot be skipped answers 409
   * `WORKFLOW_STEP_NOT_SKIPPABLE`.
   */
  skipWorkflowStep(id: number, step: string): Promise<WorkflowInstance> {
    return this.request('POST', `/v1/workflow-instances/${id}/steps/${enc(step)}/skip`, {});
  }

  // Console and access ------------------------------------------------------

  /** How the node lets users log in: password, single sign-on (public). */
  authProviders(): Promise<AuthProviders> {
    return this.request('GET', '/v1/auth/providers');
  }

  /** Console login: sets the session cookie; answers the CSRF token to send on changes. */
  login(request: LoginRequest): Promise<Me> {
    return this.request('POST', '/v1/auth/login', request);
  }

  async logout(): Promise<void> {
    await this.request('POST', '/v1/auth/logout', {});
  }

  me(): Promise<Me> {
    return this.request('GET', '/v1/auth/me');
  }

  listUsers(): Promise<{ items: User[] }> {
    return this.request('GET', '/v1/users');
  }

  createUser(spec: UserSpec): Promise<User> {
    return this.request('POST', '/v1/users', spec);
  }

  updateUser(name: string, update: UserUpdate): Promise<User> {
    return this.request('PATCH', `/v1/users/${enc(name)}`, update);
  }

  async deleteUser(name: string): Promise<void> {
    await this.request('DELETE', `/v1/users/${enc(name)}`);
  }

  /**
   * Re-encrypts every stored secret param with the node's first secret key (admin). Run it after
   * adding a new key first in every node's `KAIROS_SECRET_KEYS`, before removing the old one.
   */
  rotateSecrets(): Promise<SecretRotation> {
    return this.request('POST', '/v1/secrets/rotate');
  }

  listTokens(): Promise<{ items: ApiToken[] }> {
    return this.request('GET', '/v1/tokens');
  }

  /** The answer holds the token itself; it is never shown again. */
  createToken(spec: ApiTokenSpec): Promise<CreatedApiToken> {
    return this.request('POST', '/v1/tokens', spec);
  }

  async deleteToken(id: number): Promise<void> {
    await this.request('DELETE', `/v1/tokens/${id}`);
  }

  listAudit(filter: { limit?: number; cursor?: string } = {}): Promise<Page<AuditEntry>> {
    return this.request('GET', '/v1/audit', undefined, { ...filter });
  }

  /** The namespaces the caller may see, each with the caller's role in it. */
  listNamespaces(): Promise<{ items: Namespace[] }> {
    return this.request('GET', '/v1/namespaces');
  }

  /** Global admins only. */
  createNamespace(spec: NamespaceSpec): Promise<Namespace> {
    return this.request('POST', '/v1/namespaces', spec);
  }

  /** One namespace the caller may see, with its quotas. */
  getNamespace(name: string): Promise<Namespace> {
    return this.request('GET', `/v1/namespaces/${enc(name)}`);
  }

  /** Global admins only: replaces a namespace's quotas (docs/tenancy.md#quotas); `{}` removes them all. */
  putNamespaceQuotas(name: string, quotas: NamespaceQuotas): Promise<Namespace> {
    return this.request('PUT', `/v1/namespaces/${enc(name)}/quotas`, quotas);
  }

  /** Global admins only; refused (NAMESPACE_NOT_EMPTY) while anything belongs to it. */
  async deleteNamespace(name: string): Promise<void> {
    await this.request('DELETE', `/v1/namespaces/${enc(name)}`);
  }

  /** Users' roles in the client's namespace (its admins). */
  listGrants(): Promise<{ items: Grant[] }> {
    return this.request('GET', '/v1/grants');
  }

  putGrant(user: string, spec: GrantSpec): Promise<Grant> {
    return this.request('PUT', `/v1/grants/${enc(user)}`, spec);
  }

  async deleteGrant(user: string): Promise<void> {
    await this.request('DELETE', `/v1/grants/${enc(user)}`);
  }

  /** Counts, success rate and fire lateness over the last hour (default) or the last day. */
  overview(window?: StatsWindow): Promise<Overview> {
    return this.request('GET', '/v1/stats/overview', undefined, { window });
  }

  runsPerMinute(since?: string): Promise<{ items: MinuteStats[] }> {
    return this.request('GET', '/v1/stats/runs-per-minute', undefined, { since });
  }

  /** A new run of the same job with the same params. */
  retryRun(id: number): Promise<Run> {
    return this.request('POST', `/v1/runs/${id}/retry`, {});
  }

  /** The node's checks of itself, its store and the fleet (`kairos doctor`); operator or admin. */
  doctor(): Promise<DoctorReport> {
    return this.request('GET', '/v1/doctor');
  }

  /** The node's global retention and what its pruner did lately (console: Settings → Retention). */
  retentionSettings(): Promise<RetentionSettings> {
    return this.request('GET', '/v1/settings/retention');
  }

  // Workers at scale ----

  /** The worker stops taking runs and finishes those it has. */
  drainWorker(id: string): Promise<WorkerInfo> {
    return this.request('POST', `/v1/workers/${enc(id)}/drain`, {});
  }

  /** Undoes a drain: the worker takes runs again. */
  resumeWorker(id: string): Promise<WorkerInfo> {
    return this.request('POST', `/v1/workers/${enc(id)}/resume`, {});
  }

  listGroups(): Promise<{ items: GroupInfo[] }> {
    return this.request('GET', '/v1/groups');
  }

  /** Replaces a group's limits across the cluster: runs at once, runs started per time; absent or null removes one. */
  setGroupLimits(group: string, limits: GroupLimitRequest): Promise<GroupInfo> {
    return this.request('PUT', `/v1/groups/${enc(group)}`, limits);
  }

  /** One page of a run's log: lines with `seq > after`, oldest first. */
  runLogs(id: number, options: { after?: number; limit?: number } = {}): Promise<RunLogPage> {
    return this.request('GET', `/v1/runs/${id}/logs`, undefined, { ...options });
  }

  /**
   * Follows a run's log live (Server-Sent Events): every line after `after`, progress as it
   * changes, and `end` once the run ended and every line was sent.
   */
  async *followRunLogs(
    id: number,
    options: { after?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<RunLogEvent> {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (this.namespace) headers['kairos-namespace'] = this.namespace;
    const response = await fetch(
      `${this.url}/v1/runs/${id}/logs/stream${toQueryString({ after: options.after })}`,
      { headers, signal: options.signal },
    );
    if (!response.ok || !response.body) {
      const text = await response.text();
      const parsed = safeJson(text);
      if (isErrorBody(parsed)) {
        throw new KairosApiError(
          response.status,
          parsed.error.code,
          parsed.error.message,
          parsed.error.details,
        );
      }
      throw new KairosApiError(response.status, 'HTTP_' + response.status, text || response.statusText);
    }
    yield* readRunLogEvents(response.body);
  }

  /** Worker protocol: log lines and progress of the worker's attempts. */
  sendLogs(workerId: string, request: WorkerLogsRequest): Promise<WorkerLogsResponse> {
    return this.request('POST', `/v1/worker/${enc(workerId)}/logs`, request);
  }

  /** Sends one request; non-2xx answers become a {@link KairosApiError} with the API's code. */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    query?: Query,
    options: {
      signal?: AbortSignal | undefined;
      /** Instead of the client's time limit. */
      timeoutMs?: number | undefined;
      extraTimeoutMs?: number;
      okStatuses?: number[];
      headers?: Record<string, string> | undefined;
    } = {},
  ): Promise<T> {
    const headers: Record<string, string> = {
      accept: 'application/json',
      ...this.headers?.(),
      ...options.headers,
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (this.namespace) headers['kairos-namespace'] = this.namespace;
    const response = await this.transport({
      method,
      url: this.url + path + toQueryString(query),
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: options.signal,
      timeoutMs: (options.timeoutMs ?? this.timeoutMs) + (options.extraTimeoutMs ?? 0),
    });
    const { text } = response;
    const ok = response.status >= 200 && response.status < 300;
    const parsed: unknown = text ? safeJson(text) : undefined;
    if (ok || options.okStatuses?.includes(response.status)) {
      if (ok || !isErrorBody(parsed)) return parsed as T;
      // A 409 on the report batch still carries per-report results in details.
      return (parsed.error.details ?? parsed) as T;
    }
    if (isErrorBody(parsed)) {
      throw new KairosApiError(
        response.status,
        parsed.error.code,
        parsed.error.message,
        parsed.error.details,
      );
    }
    throw new KairosApiError(response.status, 'HTTP_' + response.status, text || response.statusText);
  }
}

/** One page of a list: at most `limit` items after `cursor` (the previous page's `nextCursor`). */
export interface PageFilter {
  limit?: number | undefined;
  cursor?: string | undefined;
}

/** Options of the calls that change a job. */
export interface JobEditOptions {
  /** The `Job.version` the change was decided on, sent as `If-Match`. */
  ifMatch?: number | undefined;
}

function ifMatch(options: JobEditOptions): { headers?: Record<string, string> } {
  return options.ifMatch === undefined ? {} : { headers: { 'if-match': `"${options.ifMatch}"` } };
}

function enc(value: string): string {
  return encodeURIComponent(value);
}

function toQueryString(query: Query | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isErrorBody(value: unknown): value is ErrorBody {
  return typeof value === 'object' && value !== null && 'error' in value;
}
