import type { AttemptRef, JsonObject, TraceContext } from '@kairos/client';
import type pg from 'pg';
import type { CalendarDefinition, CalendarRecord } from '../../core/calendar.ts';
import type { SkippedRange } from '../../core/fire-plan.ts';
import type { JobDefinition, JobRecord } from '../../core/job.ts';
import { idempotencyConflict, sameRunRequest } from '../../core/manual-run.ts';
import { HELD_WHILE_PAUSED_AT } from '../../core/overlap.ts';
import type { Bucket } from '../../core/rate-limit.ts';
import type { Resources } from '../../core/resources.ts';
import {
  type InstancePruneCandidate,
  type JobRetention,
  type PruneCandidate,
  retentionColumn,
} from '../../core/retention.ts';
import type { RoutingState, WorkerLoad } from '../../core/routing.ts';
import type { TaskDefinition } from '../../core/task.ts';
import { KairosError, StoreUnavailableError } from '../../errors.ts';
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
import { type AheadRow, aheadClaimedFromRow } from '../dispatch-ahead.ts';
import {
  bucketScopes,
  DEFAULT_RESERVE_AFTER_MS,
  type DispatchCandidate,
  type DispatchPlan,
  lockedJobs,
  needsSnapshot,
  planDispatch,
  requestsResources,
} from '../dispatch-plan.ts';
import {
  addUsed,
  type BucketRow,
  type CandidateRow,
  type ClaimRow,
  candidateFromRow,
  claimedFromRow,
  dispatchWindow,
  type GroupLimitRow,
  groupLimitFromRow,
  groupLimitsFromRow,
  type NamespaceGroupLimitRow,
  type SnapshotRow,
  scheduleToStartError,
  snapshotFromRow,
  type UsedRow,
  usedByWorker,
} from '../dispatch-rows.ts';
import { DEFAULT_NAMESPACE, type NamespaceStore, nameTakenElsewhere } from '../namespaces.ts';
import {
  type AttemptRow,
  attemptFromRow,
  type DecisionRow,
  type DueJobRow,
  decisionFromRow,
  delayOf,
  dispatchValues,
  dueJobsFromRows,
  heartbeatAnswer,
  type JobRow,
  type JsonColumn,
  jobFromRow,
  json,
  type LeaseRow,
  leaseFromRow,
  type NodeRow,
  nodeFromRow,
  RUN_COLUMNS,
  type RunRow,
  runFromRow,
  traceColumn,
  type WorkerRow,
  workerFromRow,
} from '../rows.ts';
import { type CalendarRow, calendarFromRow, type SkippedRow, skippedFromRow } from '../rows-schedules.ts';
import {
  type AttemptOutcome,
  type AttemptRecord,
  type ClaimedRun,
  checkedTable,
  type DecisionInput,
  type DueJob,
  type EnqueueRequest,
  type ExpiredAttempt,
  type FireEntry,
  type FireResult,
  GONE_NODE_KEPT_LEASES,
  type GroupLimit,
  type GroupLimits,
  type HeartbeatAnswer,
  type JobExpectation,
  type JobPruneScan,
  type JobQuotaCheck,
  type LateReport,
  type Lease,
  LeaseLostError,
  type MaxQueuedRuns,
  type NodeHeartbeat,
  type NodeHeartbeatAnswer,
  type NodeRecord,
  type Partitions,
  type PollDispatch,
  type PruneCursor,
  type RunLogBatch,
  type RunLogRecord,
  type RunProgressRecord,
  type RunQuery,
  type RunRecord,
  type SecretParamsRow,
  type SecretTable,
  type SkippedRecord,
  type SkipWritten,
  type Store,
  type StoreEvent,
  type TriggerRunRequest,
  type WorkerIdentity,
  type WorkerRecord,
  type WorkerRegistration,
} from '../store.ts';
import { JOB_DELETED, type WorkflowStore } from '../workflows.ts';
import * as access from './access.ts';
import { auditValues } from './access.ts';
import * as ahead from './ahead-queries.ts';
import { PostgresAlerts } from './alerts.ts';
import { shardNewRuns } from './broadcasts.ts';
import { CHANNEL, hash, PostgresConnection, type PostgresStoreOptions } from './connection.ts';
import { checkDependencyCycle, lockNamespaceEdits, NAMESPACE_OF_JOB } from './dependencies.ts';
import * as dq from './dispatch-queries.ts';
import * as logs from './logs.ts';
import { PostgresNamespaces } from './namespaces.ts';
import * as overview from './overview.ts';
import * as sql from './queries.ts';
import * as quotas from './quotas.ts';
import * as retention from './retention.ts';
import {
  afterRunsEnded,
  backfill,
  broadcastDependents,
  buffersRuns,
  CALENDAR_USER,
  fireWithPolicies,
  LIST_SKIPPED,
  needsPolicySteps,
  PUT_CALENDAR,
  promoteBuffered,
  skippedInput,
  startBuffering,
  writeSkipped,
} from './schedules.ts';
import * as secrets from './secret-queries.ts';
import { fireWorkflow } from './workflow-fires.ts';
import { advanceWorkflows, PostgresWorkflows } from './workflows.ts';

export type { PostgresStoreOptions } from './connection.ts';

/** The answer of ENQUEUE: the job's group, and [id, idempotency key] pairs as JSON. */
/** A run an idempotency key holds (RUNS_BY_IDEMPOTENCY_KEYS). */
interface KeyHolderRow {
  id: number;
  idempotency_key: string;
  params: JsonColumn;
  priority: number;
  idempotency_expires_at: number | null;
}

/** The answer of TRIGGER_RUN: the run inserted or its key's run, and what the statement did. */
type TriggerRunRow = RunRow & {
  job_id_of_name: number;
  job_broadcast: boolean;
  inserted: number;
  key_same: boolean | null;
  key_expired: boolean | null;
};

interface EnqueuedRow {
  group_name: string;
  broadcast: boolean;
  inserted: string;
}

/** A run that FINISH_ATTEMPTS ended (or queued again), with what its end set off. */
interface FinishedRow {
  id: number;
  attempt: number;
  job_id: number;
  status: string;
  buffering: boolean;
  /** Set for a workflow's step run: its end advances the instance. */
  workflow_instance_id: number | null;
  /** Set for a shard of a broadcast: the first shard's id. */
  broadcast_run_id: number | null;
  /** The groups that got runs (on one row of the batch); null for none. */
  groups: string[] | null;
}

/**
 * The cluster store on PostgreSQL. Claims use `FOR UPDATE SKIP LOCKED`; batches travel as one
 * jsonb parameter (`jsonb_to_recordset`) so that a batch is one statement; events cross nodes
 * through LISTEN/NOTIFY (connection.ts).
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

  migrate(): Promise<void> {
    return this.c.migrate();
  }

  close(): Promise<void> {
    return this.c.close();
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    return this.c.subscribe(listener);
  }

  async createJob(
    job: JobDefinition,
    nextFireAt: number | null,
    now: number,
    namespace = DEFAULT_NAMESPACE,
    quota?: JobQuotaCheck,
  ): Promise<JobRecord> {
    const values = [
      ...jobValues(job),
      nextFireAt,
      now,
      ...dispatchValues(job),
      buffersRuns(job),
      retentionColumn(job.retention),
      job.owner,
      job.revision,
      JSON.stringify(job.secretParams),
      namespace,
    ];
    const dependent = job.trigger.kind === 'after';
    try {
      const [row] =
        quota || dependent
          ? await this.c.transaction('createJob', async (client) => {
              // The namespace row locked: a concurrent create or edit in it waits here until this
              // one commits, then counts this job too (READ COMMITTED reads what committed before it),
              // and reads its `after` trigger when walking a chain.
              await lockNamespaceEdits(client, namespace);
              if (quota) await quotas.checkJobQuota(client, namespace, -1, quota);
              if (dependent) await checkDependencyCycle(client, namespace, job);
              return (await client.query<JobRow>(sql.CREATE_JOB, values)).rows;
            })
          : await this.c.query<JobRow>('createJob', sql.CREATE_JOB, values);
      await this.c.notify([{ type: 'jobs' }]);
      return jobFromRow(row!);
    } catch (error) {
      if ((error as { cause?: { code?: string } }).cause?.code === '23505') {
        throw new KairosError('JOB_NAME_TAKEN', `a job named ${JSON.stringify(job.name)} exists`);
      }
      throw error;
    }
  }

  async updateJob(
    id: number,
    job: JobDefinition,
    nextFireAt: number | null,
    now: number,
    expected?: JobExpectation,
    quota?: JobQuotaCheck,
  ): Promise<JobRecord | null> {
    const values = updateValues(id, job, nextFireAt, now, expected);
    const dependent = job.trigger.kind === 'after';
    // A policy that buffers runs: the job's runs in flight learn it first (startBuffering).
    const [row] =
      buffersRuns(job) || quota || dependent
        ? await this.c.transaction('updateJob', async (client) => {
            // The namespace first, then the job (startBuffering), as every such write does.
            if (dependent) await this.lockDependencyEdit(client, id, job);
            const namespace = quota ? await quotas.lockNamespaceOfJob(client, id) : null;
            if (buffersRuns(job)) await startBuffering(client, id);
            const { rows } = await client.query<JobRow>(sql.UPDATE_JOB, values);
            // Judged only when the edit applies; a refusal rolls it back.
            if (rows[0] && quota && namespace !== null)
              await quotas.checkJobQuota(client, namespace, id, quota);
            return rows;
          })
        : await this.c.query<JobRow>('updateJob', sql.UPDATE_JOB, values);
    if (row) await this.c.notify([{ type: 'jobs' }]);
    return row ? jobFromRow(row) : null;
  }

  /** An edit of job `id` to an `after` trigger: its namespace locked, its chain checked (DEPENDENCY_CYCLE). */
  private async lockDependencyEdit(client: pg.PoolClient, id: number, job: JobDefinition): Promise<void> {
    const { rows } = await client.query<{ namespace: string }>(NAMESPACE_OF_JOB, [id]);
    if (!rows[0]) return;
    await lockNamespaceEdits(client, rows[0].namespace);
    await checkDependencyCycle(client, rows[0].namespace, job);
  }

  async getJob(name: string, options: { workflowJobs?: boolean } = {}): Promise<JobRecord | null> {
    const [row] = await this.c.query<JobRow>(
      'getJob',
      // A workflow's own job (store/workflows.ts) is no job of the API's: its name is never found.
      'SELECT * FROM jobs WHERE name = $1 AND (workflow_id IS NULL OR $2::boolean)',
      [name, options.workflowJobs === true],
    );
    return row ? jobFromRow(row) : null;
  }

  async listJobs(filter: {
    namespace?: string | undefined;
    group?: string | undefined;
    after?: string | undefined;
    limit: number;
  }): Promise<JobRecord[]> {
    const rows = await this.c.query<JobRow>('listJobs', sql.LIST_JOBS, [
      filter.group ?? null,
      filter.after ?? null,
      filter.limit,
      filter.namespace ?? null,
    ]);
    return rows.map(jobFromRow);
  }

  async deleteJob(name: string, version?: number, now = Date.now()): Promise<boolean> {
    const deleted = await this.c.transaction('deleteJob', async (client) => {
      // Ending a run locks the run, then its job (finishAttempts); deleting the job must take its
      // locks in that order too, or a report arriving meanwhile deadlocks with the cascade.
      await client.query(sql.LOCK_ACTIVE_RUNS_OF_JOB, [name]);
      // The job's row locked: a run of it that another transaction inserted (an advance queuing a
      // `job` step) holds it until that commits, and the next statement then sees the run.
      const job = (
        await client.query<{ id: number }>(
          `SELECT id FROM jobs WHERE name = $1 AND workflow_id IS NULL AND ($2::integer IS NULL OR version = $2)
           FOR UPDATE`,
          [name, version ?? null],
        )
      ).rows[0];
      if (!job) return null;
      // Its workflow step runs end first, so that their instances advance (store/workflows.ts).
      // A deadlock with a run end (instances, then jobs) is retried whole.
      const steps = await client.query<{ id: number }>(sql.CANCEL_STEP_RUNS_OF_JOB, [
        job.id,
        now,
        JOB_DELETED,
      ]);
      const groups = await advanceWorkflows(
        client,
        steps.rows.map((r) => r.id),
        now,
        job.id,
      );
      await client.query('DELETE FROM jobs WHERE id = $1', [job.id]);
      return groups;
    });
    if (deleted === null) return false;
    await this.c.notify([
      { type: 'jobs' },
      ...[...new Set(deleted)].map((group) => ({ type: 'runs' as const, group })),
    ]);
    return true;
  }

  async secretParamsPage(table: SecretTable, afterId: number, limit: number): Promise<SecretParamsRow[]> {
    const rows = await this.c.query<{ id: number | string; params: string }>(
      'secretParamsPage',
      secrets.secretParamsPage(checkedTable(table)),
      [afterId, limit],
    );
    return rows.map((row) => ({
      id: Number(row.id),
      params: JSON.parse(row.params) as JsonObject,
      stored: row.params,
    }));
  }

  async replaceSecretParams(
    table: SecretTable,
    id: number,
    stored: string,
    params: JsonObject,
  ): Promise<boolean> {
    const rows = await this.c.query('replaceSecretParams', secrets.replaceSecretParams(checkedTable(table)), [
      id,
      stored,
      JSON.stringify(params),
    ]);
    return rows.length > 0;
  }

  async dueJobs(partitions: Partitions, now: number, limit: number): Promise<DueJob[]> {
    const rows = await this.c.query<DueJobRow>('dueJobs', sql.DUE_JOBS, [
      now,
      partitions.count,
      partitions.owned,
      limit,
    ]);
    return dueJobsFromRows(rows);
  }

  async nextFireAt(partitions: Partitions): Promise<number | null> {
    const [row] = await this.c.query<{ next_fire_at: number }>('nextFireAt', sql.NEXT_FIRE_AT, [
      partitions.count,
      partitions.owned,
    ]);
    return row?.next_fire_at ?? null;
  }

  async fire(
    entries: readonly FireEntry[],
    leases: readonly Lease[] | null,
    now: number,
  ): Promise<FireResult> {
    const result = await this.c.transaction('fire', async (client) => {
      if (leases && leases.length > 0) {
        const held = await client.query(sql.LOCK_LEASES, [JSON.stringify(leases.map(leaseKey)), now]);
        if ((held.rowCount ?? 0) < leases.length) {
          throw new LeaseLostError(`partition leases of ${leases[0]!.owner} are no longer held (fenced out)`);
        }
      }
      const out = await firePolicyEntries(client, entries.filter(needsPolicySteps), now);
      const batch = entries.filter((e) => !needsPolicySteps(e));
      const { rows } = await client.query<{ advanced: number; runs: number; groups: string[] }>(sql.FIRE, [
        JSON.stringify(batch.map((e) => ({ job_id: e.jobId, expected: e.expected, next: e.next }))),
        JSON.stringify(
          batch.flatMap((e) =>
            e.fires.map((fireTime, i) => ({
              job_id: e.jobId,
              fire_time: fireTime,
              available_at: e.availableAt?.[i] ?? fireTime,
              trace_context: traceColumn(e.traceContexts?.[i]),
            })),
          ),
        ),
        now,
      ]);
      const row = rows[0]!;
      const ledger = batch.flatMap((e) => skippedInput(e, e.skipped ?? []));
      if (ledger.length > 0) {
        out.skipped.push(...(await writeSkipped(client, ledger, now)));
      }
      await shardNewRuns(
        client,
        entries.map((e) => e.jobId),
        now,
      );
      const fired: FireResult = {
        runs: row.runs + out.runs,
        conflicts: batch.length - row.advanced + out.conflicts,
        groups: [...new Set([...row.groups, ...out.groups])],
      };
      if (out.skipped.length > 0) fired.skipped = out.skipped;
      return fired;
    });
    await this.c.notify(result.groups.map((group) => ({ type: 'runs', group })));
    return result;
  }

  async enqueueRuns(
    jobId: number,
    requests: readonly EnqueueRequest[],
    now: number,
    maxQueuedRuns?: MaxQueuedRuns,
  ): Promise<number[]> {
    const limit = maxQueuedRuns ?? null;
    const input = requests.map((r, i) => ({
      i,
      params: r.params,
      priority: r.priority,
      key: r.idempotencyKey ?? null,
      expires: r.idempotencyKey === undefined ? null : (r.idempotencyExpiresAt ?? null),
      available_at: r.availableAt ?? now,
      trace_context: traceColumn(r.traceContext),
    }));
    const keys = [...new Set(input.flatMap((r) => (r.key === null ? [] : [r.key])))];
    if (keys.length > 0 || limit !== null)
      return this.enqueueKeyedRuns(jobId, requests, input, keys, now, limit);
    const enqueue = async (db: pg.Pool | pg.PoolClient, broadcast: boolean) => {
      const { rows } = await db.query<EnqueuedRow>({
        name: `kairos_enqueueRuns_${hash(sql.ENQUEUE)}`,
        text: sql.ENQUEUE,
        values: [
          jobId,
          JSON.stringify(input),
          now,
          CHANNEL,
          this.c.origin,
          broadcast,
          this.c.peers,
          this.c.options.schema ?? null,
        ],
      });
      if (rows.length === 0) throw new KairosError('JOB_NOT_FOUND', `job ${jobId} does not exist`);
      return rows[0]!;
    };
    // One statement, its own transaction; a broadcast job's runs are sharded in a transaction.
    let row = await this.c.retrying('enqueueRuns', () => enqueue(this.c.pool, false));
    if (row.broadcast) {
      row = await this.c.transaction('enqueueRuns', async (client) => {
        const row = await enqueue(client, true);
        await shardNewRuns(client, [jobId], now);
        return row;
      });
    }
    // Sequence numbers follow the insert order, which follows the input order (no keys here).
    const inserted = (JSON.parse(row.inserted) as Array<[number, string | null]>).sort((a, b) => a[0] - b[0]);
    // Other nodes learn through the statement's NOTIFY.
    this.c.emit([{ type: 'runs', group: row.group_name }]);
    return inserted.map(([id]) => id);
  }

  /**
   * enqueueRuns with idempotency keys, in one transaction so that a conflict writes nothing: the
   * runs the keys hold are locked and judged first (expired keys taken from their runs, other params
   * refused), then the runs inserted. A key whose run a concurrent request commits meanwhile is
   * judged against that run; with other params, the whole batch is refused. With `maxQueuedRuns`
   * (with keys or without), the job's namespace is locked first and the runs inserted are counted
   * with its queued runs before the commit (docs/tenancy.md#quotas).
   */
  private async enqueueKeyedRuns(
    jobId: number,
    requests: readonly EnqueueRequest[],
    input: ReadonlyArray<{ key: string | null }>,
    keys: string[],
    now: number,
    maxQueuedRuns: number | null,
  ): Promise<number[]> {
    const byKey = new Map<string, { id: number; params: JsonObject; priority: number }>();
    const { group, ids } = await this.c.transaction('enqueueRuns', async (client) => {
      byKey.clear();
      const namespace = maxQueuedRuns === null ? null : await quotas.lockNamespaceOfJob(client, jobId);
      const held =
        keys.length === 0
          ? []
          : (await client.query<KeyHolderRow>(sql.RUNS_BY_IDEMPOTENCY_KEYS, [jobId, keys])).rows;
      for (const run of held) {
        if (run.idempotency_expires_at !== null && Number(run.idempotency_expires_at) <= now) {
          await client.query(sql.RELEASE_IDEMPOTENCY_KEY, [run.id, run.idempotency_key, now]);
        } else {
          byKey.set(run.idempotency_key, { ...run, params: json<JsonObject>(run.params) });
        }
      }
      const fresh = requests
        .map((request, i) => ({ request, i }))
        .filter(({ request }) => request.idempotencyKey === undefined || !byKey.has(request.idempotencyKey));
      const { rows } = await client.query<EnqueuedRow>(sql.ENQUEUE, [
        jobId,
        JSON.stringify(fresh.map(({ i }) => input[i])),
        now,
        CHANNEL,
        this.c.origin,
        true,
        this.c.peers,
        this.c.options.schema ?? null,
      ]);
      const row = rows[0];
      if (!row) throw new KairosError('JOB_NOT_FOUND', `job ${jobId} does not exist`);
      if (row.broadcast) await shardNewRuns(client, [jobId], now);
      const inserted = (JSON.parse(row.inserted) as Array<[number, string | null]>).sort(
        (a, b) => a[0] - b[0],
      );
      if (maxQueuedRuns !== null && namespace !== null)
        await quotas.checkQueuedRunsAfter(client, namespace, maxQueuedRuns, inserted.length);
      const unkeyed = inserted.filter(([, key]) => key === null).map(([id]) => id);
      for (const [id, key] of inserted) {
        if (key === null) continue;
        const first = fresh.find(({ request }) => request.idempotencyKey === key)!.request;
        byKey.set(key, { id, params: first.params, priority: first.priority });
      }
      const missing = keys.filter((key) => !byKey.has(key));
      if (missing.length > 0) {
        // Keys that a concurrent request committed after this transaction read them.
        const late = await client.query<KeyHolderRow>(sql.RUNS_BY_IDEMPOTENCY_KEYS, [jobId, missing]);
        for (const run of late.rows)
          byKey.set(run.idempotency_key, { ...run, params: json<JsonObject>(run.params) });
      }
      const ids = requests.map((request) => {
        if (request.idempotencyKey === undefined) return unkeyed.shift()!;
        const run = byKey.get(request.idempotencyKey)!;
        if (!sameRunRequest(run, request.params, request.priority))
          throw idempotencyConflict(request.idempotencyKey, run.id);
        return run.id;
      });
      return { group: row.group_name, ids };
    });
    // Other nodes learn through the statement's NOTIFY.
    this.c.emit([{ type: 'runs', group }]);
    return ids;
  }

  async triggerRun(
    name: string,
    request: TriggerRunRequest,
    now: number,
    audit?: AuditEntry,
    maxQueuedRuns?: MaxQueuedRuns,
  ): Promise<RunRecord | null> {
    const limit = maxQueuedRuns ?? null;
    const answer =
      limit === null
        ? await this.triggerRunRounds(
            (text, values) => this.c.query<TriggerRunRow>('triggerRun', text, values),
            name,
            request,
            now,
            audit,
          )
        : // With a quota: the namespace locked first, the run counted before the commit
          // (docs/tenancy.md#quotas); a refusal rolls back the run, its NOTIFY and its audit entry.
          await this.c.transaction('triggerRun', async (client) => {
            const namespace = await quotas.lockNamespaceOfJob(client, name);
            if (namespace === null) return null;
            const answer = await this.triggerRunRounds(
              async (text, values) => (await client.query<TriggerRunRow>(text, values)).rows,
              name,
              request,
              now,
              audit,
            );
            if (answer !== 'broadcast' && answer?.inserted)
              await quotas.checkQueuedRunsAfter(client, namespace, limit, 1);
            return answer;
          });
    if (answer === null) return null;
    if (answer === 'broadcast') {
      // A broadcast job's run is sharded in a transaction of its own (enqueueRuns).
      const job = await this.getJob(name);
      if (!job) return null;
      const [id] = await this.enqueueRuns(
        job.id,
        [{ ...request, params: request.params ?? job.params, priority: request.priority ?? job.priority }],
        now,
        limit,
      );
      if (audit) await this.appendAudit(audit);
      return this.getRun(id!);
    }
    // Other nodes learn through the statement's NOTIFY.
    if (answer.inserted) this.c.emit([{ type: 'runs', group: answer.group }]);
    return answer.run;
  }

  /**
   * TRIGGER_RUN, run again after taking an expired idempotency key from its run: the run inserted
   * or the one its key holds; `broadcast` for a broadcast job (nothing written); null: no such job.
   */
  private async triggerRunRounds(
    query: (text: string, values: unknown[]) => Promise<TriggerRunRow[]>,
    name: string,
    request: TriggerRunRequest,
    now: number,
    audit: AuditEntry | undefined,
  ): Promise<{ run: RunRecord; inserted: boolean; group: string } | 'broadcast' | null> {
    const key = request.idempotencyKey ?? null;
    for (let round = 1; ; round++) {
      const [row] = await query(sql.TRIGGER_RUN, [
        name,
        request.params === null ? null : JSON.stringify(request.params),
        request.priority,
        key,
        now,
        CHANNEL,
        this.c.origin,
        // The entry's namespace is the job's (TRIGGER_RUN reads it): the first five values only.
        ...(audit ? auditValues(audit).slice(0, 5) : [null, null, null, null, null]),
        this.c.peers,
        this.c.options.schema ?? null,
        request.availableAt ?? now,
        key === null ? null : (request.idempotencyExpiresAt ?? null),
        traceColumn(request.traceContext),
      ]);
      if (!row) return null;
      if (row.job_broadcast) return 'broadcast';
      if (row.inserted > 0) return { run: runFromRow(row), inserted: true, group: row.group_name };
      // Nothing inserted: the key holds a run, committed before this statement began or (no row to
      // show, id null) since; an expired key is taken from its run, and the statement runs again.
      if (row.id !== null && !row.key_expired) {
        if (!row.key_same) throw idempotencyConflict(key!, row.id);
        return { run: runFromRow(row), inserted: false, group: row.group_name };
      }
      if (row.id !== null) await query(sql.RELEASE_IDEMPOTENCY_KEY, [row.id, key, now]);
      if (round >= 3) throw new StoreUnavailableError('triggerRun', new Error('idempotency key contended'));
    }
  }

  async getRun(id: number): Promise<RunRecord | null> {
    const [row] = await this.c.query<RunRow>(
      'getRun',
      `SELECT ${RUN_COLUMNS} FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.id = $1`,
      [id],
    );
    return row ? runFromRow(row) : null;
  }

  async getAttempts(runId: number): Promise<AttemptRecord[]> {
    const rows = await this.c.query<AttemptRow>('getAttempts', sql.ATTEMPTS_OF_RUN, [runId]);
    return rows.map(attemptFromRow);
  }

  async listRuns(filter: RunQuery): Promise<RunRecord[]> {
    const rows = await this.c.query<RunRow>(
      'listRuns',
      filter.summary ? sql.LIST_RUN_SUMMARIES : sql.LIST_RUNS,
      [
        filter.jobId ?? null,
        filter.status ?? null,
        filter.workerId ?? null,
        filter.before ?? null,
        filter.limit,
        filter.createdSince ?? null,
        filter.createdUntil ?? null,
        filter.namespace ?? null,
      ],
    );
    return rows.map(runFromRow);
  }

  async cancelRun(id: number, now: number): Promise<RunRecord | null> {
    const found = await this.c.transaction('cancelRun', async (client) => {
      const { rows } = await client.query<{ status: string; attempt: number; job_id: number }>(
        'SELECT status, attempt, job_id FROM runs WHERE id = $1 FOR UPDATE',
        [id],
      );
      const run = rows[0];
      if (!run) return null;
      if (run.status !== 'queued' && run.status !== 'running') {
        throw new KairosError('RUN_FINISHED', `run ${id} already ended (${run.status})`);
      }
      const error = JSON.stringify({ name: 'Cancelled', message: 'cancelled through the API' });
      await client.query(sql.CANCEL_RUN, [id, run.attempt, now, error]);
      return afterRunsEnded(client, [id], now);
    });
    if (found) await this.c.notify(found.map((group) => ({ type: 'runs', group })));
    return found ? this.getRun(id) : null;
  }

  async registerWorker(worker: WorkerRegistration, leaseMs: number, now: number): Promise<void> {
    await this.c.query('registerWorker', sql.REGISTER_WORKER, [
      worker.id,
      worker.name,
      worker.group,
      JSON.stringify(worker.handlers),
      worker.capacity,
      JSON.stringify(worker.labels),
      worker.version,
      worker.host,
      now,
      now + leaseMs,
      worker.registeredBy ?? '',
      worker.namespace ?? DEFAULT_NAMESPACE,
      worker.resources ? JSON.stringify(worker.resources) : null,
    ]);
  }

  async heartbeat(
    workerId: string,
    running: readonly AttemptRef[],
    leaseMs: number,
    now: number,
    polled: number | null = null,
    load: WorkerLoad | null = null,
  ): Promise<HeartbeatAnswer | null> {
    const [row] = await this.c.query<{ alive: number; running: string }>('heartbeat', sql.HEARTBEAT, [
      workerId,
      now,
      leaseMs,
      load === null ? null : JSON.stringify(load),
    ]);
    if (!row || row.alive === 0) return null;
    const current = JSON.parse(row.running) as Array<[number, number, number | null]>;
    return heartbeatAnswer(current, running, polled);
  }

  async recordLateReports(workerId: string, reports: readonly LateReport[], now: number): Promise<number> {
    if (reports.length === 0) return 0;
    const rows = await this.c.query('recordLateReports', sql.LATE_REPORTS, [
      workerId,
      JSON.stringify(
        reports.map((r) => ({ run_id: r.runId, attempt: r.attempt, outcome: r.outcome, error: r.error })),
      ),
      now,
    ]);
    return rows.length;
  }

  async claimRuns(workerId: string, max: number, now: number): Promise<ClaimedRun[]> {
    const rows = await this.c.query<{
      id: number;
      attempt: number;
      job_name: string;
      handler: string;
      params: string;
      fire_time: number | null;
      timeout_ms: number;
      max_attempts: number;
      trace_context: string | null;
    }>('claimRuns', sql.CLAIM_RUNS, [workerId, now, max, null]);
    if (rows.length === 0) {
      const alive = await this.c.query(
        'claimRuns',
        `SELECT 1 FROM workers WHERE id = $1 AND status = 'active'`,
        [workerId],
      );
      if (alive.length === 0)
        throw new KairosError(
          'WORKER_NOT_FOUND',
          `worker ${workerId} is not registered or was declared lost`,
        );
    }
    return rows.map((row) => ({
      runId: row.id,
      attempt: row.attempt,
      jobName: row.job_name,
      handler: row.handler,
      params: JSON.parse(row.params),
      fireTime: row.fire_time,
      timeoutMs: row.timeout_ms,
      maxAttempts: row.max_attempts,
      ...(row.trace_context ? { traceContext: JSON.parse(row.trace_context) } : {}),
    }));
  }

  async unregisterWorker(workerId: string, now: number): Promise<void> {
    await this.c.query(
      'unregisterWorker',
      `UPDATE workers SET status = 'stopped', lease_expires_at = $2 WHERE id = $1`,
      [workerId, now],
    );
  }

  async listWorkers(namespace?: string): Promise<WorkerRecord[]> {
    return (await this.c.query<WorkerRow>('listWorkers', sql.LIST_WORKERS, [namespace ?? null])).map(
      workerFromRow,
    );
  }

  async resourcesInUse(workerIds: readonly string[]): Promise<Map<string, Resources>> {
    if (workerIds.length === 0) return new Map();
    return usedByWorker(await this.c.query<UsedRow>('resourcesInUse', dq.USED_BY_WORKERS, [[...workerIds]]));
  }

  async expiredAttempts(now: number, limit: number): Promise<ExpiredAttempt[]> {
    const rows = await this.c.query<DecisionRow & { worker_id: string; reason: 'lost' | 'timed_out' }>(
      'expiredAttempts',
      sql.EXPIRED_ATTEMPTS,
      [now, limit],
    );
    return rows.map((row) => ({ ...decisionFromRow(row), reason: row.reason, workerId: row.worker_id }));
  }

  async runsForDecision(refs: readonly AttemptRef[]): Promise<DecisionInput[]> {
    const rows = await this.c.query<DecisionRow>('runsForDecision', sql.RUNS_FOR_DECISION, [
      JSON.stringify(refs.map((r) => ({ run_id: r.runId, attempt: r.attempt }))),
    ]);
    return rows.map(decisionFromRow);
  }

  async finishAttempts(outcomes: readonly AttemptOutcome[], now: number): Promise<boolean[]> {
    const input = outcomes.map((o) => ({
      run_id: o.runId,
      attempt: o.attempt,
      run_status: o.run.status,
      available_at: o.run.status === 'queued' ? o.run.availableAt : null,
      result: o.result,
      error: o.error,
      attempt_status: o.attemptStatus,
      lease_ended_by: o.leaseEndedBy ?? null,
      worker_id: o.workerId ?? null,
    }));
    // Schedules: what the ended runs set off (dependents, buffered runs) commits with them. Most
    // runs end in one statement; the runs of jobs that buffer runs (and any left over: a stale
    // attempt, a run whose job began to buffer meanwhile) end in a transaction that also promotes.
    let rows = await this.c.query<FinishedRow>('finishAttempts', sql.FINISH_ATTEMPTS, [
      JSON.stringify(input),
      now,
      true,
    ]);
    const done = new Set(rows.map((r) => r.id));
    const rest = input.filter((r) => !done.has(r.run_id));
    if (rest.length > 0) {
      rows = [
        ...rows,
        ...(await this.c.transaction('finishAttempts', async (client) => {
          const ended = (
            await client.query<FinishedRow>(sql.FINISH_ATTEMPTS, [JSON.stringify(rest), now, false])
          ).rows;
          // A broadcast's last shard sets off its dependents (its first shard locked first: runs,
          // then instances, then jobs).
          const shards = ended.filter((r) => r.broadcast_run_id !== null && r.status !== 'queued');
          const broadcast = await broadcastDependents(
            client,
            shards.map((r) => r.id),
            now,
          );
          // Instances before jobs (promoteBuffered locks jobs FOR UPDATE; queuing a step's run takes
          // its job's KEY SHARE lock): every transaction that takes both takes them in this order.
          const advanced = await advanceWorkflows(
            client,
            ended.filter((r) => r.workflow_instance_id !== null && r.status !== 'queued').map((r) => r.id),
            now,
          );
          const promoted = await promoteBuffered(
            client,
            ended.filter((r) => r.buffering).map((r) => r.job_id),
            now,
          );
          if (ended[0])
            ended[0].groups = [...(ended[0].groups ?? []), ...broadcast, ...promoted, ...advanced];
          return ended;
        })),
      ];
    }
    const applied = new Set(rows.map((r) => `${r.id}:${r.attempt}`));
    const result = outcomes.map((o) => applied.has(`${o.runId}:${o.attempt}`));
    const requeued = new Set([
      ...outcomes.filter((o, i) => result[i] && o.run.status === 'queued').map((o) => o.group),
      ...rows.flatMap((r) => r.groups ?? []),
    ]);
    await this.c.notify([...requeued].map((group) => ({ type: 'runs', group })));
    return result;
  }

  async markLostWorkers(now: number): Promise<string[]> {
    const rows = await this.c.query<{ id: string }>(
      'markLostWorkers',
      `UPDATE workers SET status = 'lost' WHERE status IN ('active', 'draining') AND lease_expires_at <= $1 RETURNING id`,
      [now],
    );
    return rows.map((r) => r.id);
  }

  async pruneWorkers(before: number, limit: number): Promise<number> {
    const rows = await this.c.query('pruneWorkers', sql.PRUNE_WORKERS, [before, limit]);
    return rows.length;
  }

  async acquireLeases(names: readonly string[], owner: string, ttlMs: number, now: number): Promise<Lease[]> {
    // Sorted, so that two nodes taking overlapping sets lock rows in the same order.
    const rows = await this.c.query<LeaseRow>('acquireLeases', sql.ACQUIRE_LEASES, [
      [...names].sort(),
      owner,
      now + ttlMs,
      now,
    ]);
    return rows.map(leaseFromRow);
  }

  async renewLeases(leases: readonly Lease[], ttlMs: number, now: number): Promise<Lease[]> {
    if (leases.length === 0) return [];
    const rows = await this.c.query<LeaseRow>('renewLeases', sql.RENEW_LEASES, [
      now + ttlMs,
      JSON.stringify(leases.map(leaseKey)),
      now,
    ]);
    return rows.map(leaseFromRow);
  }

  async releaseLeases(leases: readonly Lease[]): Promise<void> {
    if (leases.length === 0) return;
    await this.c.query('releaseLeases', sql.RELEASE_LEASES, [JSON.stringify(leases.map(leaseKey))]);
    await this.c.notify([{ type: 'leases' }]);
  }

  async databaseTime(): Promise<number> {
    const [row] = await this.c.query<{ now: number }>(
      'databaseTime',
      'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now',
      [],
    );
    return row!.now;
  }

  async schemaVersion(): Promise<number> {
    const [row] = await this.c.query<{ version: number }>(
      'schemaVersion',
      'SELECT coalesce(max(version), 0)::integer AS version FROM kairos_migrations',
      [],
    );
    return row!.version;
  }

  async heartbeatNode(node: NodeHeartbeat, ttlMs: number, now: number): Promise<NodeHeartbeatAnswer> {
    const [row] = await this.c.query<NodeHeartbeatAnswer>('heartbeatNode', sql.HEARTBEAT_NODE, [
      node.instance,
      node.address,
      node.version,
      node.startedAt,
      now,
      now + ttlMs,
      JSON.stringify(node.partitions),
      node.clockSkewMs,
      node.id,
      now - GONE_NODE_KEPT_LEASES * ttlMs,
    ]);
    this.c.peers = row!.alive > 1;
    if (this.c.peers && !this.c.announced) {
      // Tell nodes that found themselves alone to NOTIFY again.
      this.c.announced = true;
      await this.c.notify([{ type: 'leases' }]);
    }
    return { alive: row!.alive, namesakes: row!.namesakes };
  }

  async removeNode(instance: string): Promise<void> {
    await this.c.query('removeNode', 'DELETE FROM nodes WHERE id = $1', [instance]);
    await this.c.notify([{ type: 'leases' }]);
  }

  async listNodes(): Promise<NodeRecord[]> {
    return (
      await this.c.query<NodeRow>(
        'listNodes',
        `SELECT * FROM nodes ORDER BY coalesce(nullif(name, ''), id), id`,
        [],
      )
    ).map(nodeFromRow);
  }

  async listSkipped(
    jobId: number,
    query: { before?: number | undefined; limit: number },
  ): Promise<SkippedRecord[]> {
    const rows = await this.c.query<SkippedRow>('listSkipped', LIST_SKIPPED, [
      jobId,
      query.before ?? null,
      query.limit,
    ]);
    return rows.map(skippedFromRow);
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
    const resumed = await this.c.transaction('resumeJob', async (client) => {
      if (job.trigger.kind === 'after') await this.lockDependencyEdit(client, id, job);
      const namespace = quota ? await quotas.lockNamespaceOfJob(client, id) : null;
      if (buffersRuns(job)) await startBuffering(client, id);
      const { rows } = await client.query<JobRow>(
        sql.RESUME_JOB,
        updateValues(id, job, nextFireAt, now, expected),
      );
      if (rows[0] && quota && namespace !== null) await quotas.checkJobQuota(client, namespace, id, quota);
      if (rows[0] && skipped) {
        await writeSkipped(
          client,
          skippedInput({ jobId: id, expected: 0, next: nextFireAt, fires: [] }, [skipped]),
          now,
        );
      }
      if (!rows[0]) return null;
      // The workflow step runs held while the job was paused become available with the resume.
      const released = await client.query<{ group_name: string }>(sql.RELEASE_HELD_RUNS, [
        id,
        now,
        HELD_WHILE_PAUSED_AT,
      ]);
      return { row: rows[0], groups: [...new Set(released.rows.map((r) => r.group_name))] };
    });
    if (!resumed) return null;
    await this.c.notify([
      { type: 'jobs' },
      ...resumed.groups.map((group) => ({ type: 'runs' as const, group })),
    ]);
    const row = resumed.row;
    return row ? jobFromRow(row) : null;
  }

  async backfillRuns(
    jobId: number,
    fireTimes: readonly number[],
    overlap: 'allow' | 'buffer-all',
    now: number,
    traceContext: TraceContext | null = null,
    maxQueuedRuns?: MaxQueuedRuns,
  ): Promise<{ created: Array<{ runId: number; fireTime: number }>; existing: number[] }> {
    const { created, existing, group } = await this.c.transaction('backfillRuns', async (client) => {
      const limit = maxQueuedRuns ?? null;
      const namespace = limit === null ? null : await quotas.lockNamespaceOfJob(client, jobId);
      const out = await backfill(client, jobId, fireTimes, overlap, now, traceContext);
      if (limit !== null && namespace !== null)
        await quotas.checkQueuedRunsAfter(client, namespace, limit, out.created.length);
      return out;
    });
    if (group) await this.c.notify([{ type: 'runs', group }]);
    return { created, existing };
  }

  async putCalendar(
    calendar: CalendarDefinition,
    now: number,
    namespace = DEFAULT_NAMESPACE,
  ): Promise<{ calendar: CalendarRecord; created: boolean }> {
    const [row] = await this.c.query<CalendarRow & { created: boolean }>('putCalendar', PUT_CALENDAR, [
      calendar.name,
      JSON.stringify(calendar),
      now,
      namespace,
    ]);
    if (!row) throw nameTakenElsewhere('calendar', calendar.name);
    return { calendar: calendarFromRow(row), created: row.created };
  }

  async getCalendars(names: readonly string[]): Promise<CalendarRecord[]> {
    if (names.length === 0) return [];
    const rows = await this.c.query<CalendarRow>(
      'getCalendars',
      'SELECT * FROM calendars WHERE name = ANY($1::text[]) ORDER BY name',
      [names],
    );
    return rows.map(calendarFromRow);
  }

  async listCalendars(namespace?: string): Promise<CalendarRecord[]> {
    return (
      await this.c.query<CalendarRow>(
        'listCalendars',
        'SELECT * FROM calendars WHERE ($1::text IS NULL OR namespace = $1) ORDER BY name',
        [namespace ?? null],
      )
    ).map(calendarFromRow);
  }

  async deleteCalendar(name: string): Promise<boolean> {
    return this.c.transaction('deleteCalendar', async (client) => {
      const user = await client.query<{ name: string }>(CALENDAR_USER, [name]);
      if (user.rows[0]) {
        throw new KairosError(
          'CALENDAR_IN_USE',
          `calendar ${JSON.stringify(name)} is used by job ${JSON.stringify(user.rows[0].name)}`,
          { job: user.rows[0].name },
        );
      }
      return ((await client.query('DELETE FROM calendars WHERE name = $1', [name])).rowCount ?? 0) > 0;
    });
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

  runsPerMinute(since: number, namespace?: string): Promise<MinuteCount[]> {
    return overview.runsPerMinute(this.c, since, namespace);
  }

  fireLateness(since: number, now: number, limit: number): Promise<FireLateness> {
    return overview.fireLateness(this.c, since, now, limit);
  }

  countQueuedRuns(namespace: string, upTo: number): Promise<number> {
    return overview.countQueuedRuns(this.c, namespace, upTo);
  }

  queuedRunCounts(now: number, limit: number): Promise<QueuedRunCount[]> {
    return overview.queuedRunCounts(this.c, now, limit);
  }

  async dispatchRuns(
    workerId: string,
    max: number,
    now: number,
    random: number,
    claimSeq: number | null = null,
  ): Promise<ClaimedRun[]> {
    return (await this.dispatch(workerId, max, now, random, false, claimSeq)).runs;
  }

  async dispatchForPoll(
    workerId: string,
    max: number,
    now: number,
    random: number,
    claimSeq: number | null = null,
  ): Promise<PollDispatch> {
    const out = await this.dispatch(workerId, max, now, random, true, claimSeq);
    if (out.runs.length > 0 || out.nextAvailableAt !== undefined) {
      return { runs: out.runs, nextAvailableAt: out.nextAvailableAt ?? null };
    }
    // The planner's path (routing, selectors, limits) took nothing: ask apart.
    return { runs: [], nextAvailableAt: await this.nextAvailableAt(workerId, now) };
  }

  /** dispatchRuns; with `next`, a fast-path claim that takes nothing also answers nextAvailableAt. */
  private async dispatch(
    workerId: string,
    max: number,
    now: number,
    random: number,
    next: boolean,
    claimSeq: number | null,
  ): Promise<{ runs: ClaimedRun[]; nextAvailableAt?: number | null }> {
    const [fast] = await this.c.query<{
      worker_status: string | null;
      simple: boolean | null;
      picked: number;
      claimed: string;
      next_at: number | null;
    }>('dispatchRuns', dq.DISPATCH_FAST, [workerId, now, max, dispatchWindow(max), next, claimSeq]);
    const status = fast?.worker_status ?? null;
    if (status !== 'active' && status !== 'draining') {
      throw new KairosError('WORKER_NOT_FOUND', `worker ${workerId} is not registered or was declared lost`);
    }
    const nextAvailableAt = next ? fast!.next_at : undefined;
    if (status === 'draining' || fast!.picked === 0) return { runs: [], nextAvailableAt };
    if (fast!.simple) {
      const runs = (
        JSON.parse(fast!.claimed) as Array<ClaimRow & { job_name: string; task: string | null }>
      ).map((row) =>
        claimedFromRow(row, {
          jobName: row.job_name,
          task: row.task === null ? null : (JSON.parse(row.task) as TaskDefinition),
        }),
      );
      return { runs, nextAvailableAt: runs.length > 0 ? null : nextAvailableAt };
    }
    // Routing, selectors or limits in play: the planner, in a transaction with the rows it needs locked.
    const out = await this.c.transaction('dispatchRuns', async (client) => {
      const [worker] = (
        await client.query<{ namespace: string; group_name: string; handlers: string; status: string }>(
          'SELECT namespace, group_name, handlers, status FROM workers WHERE id = $1',
          [workerId],
        )
      ).rows;
      if (!worker || (worker.status !== 'active' && worker.status !== 'draining')) return null;
      const group = worker.group_name;
      if (worker.status === 'draining') return { claimed: [], wake: false, group };
      const candidates = (
        await client.query<CandidateRow>(dq.DISPATCH_CANDIDATES, [
          workerId,
          group,
          JSON.parse(worker.handlers) as string[],
          now,
          dispatchWindow(max),
          worker.namespace,
        ])
      ).rows.map(candidateFromRow);
      if (candidates.length === 0) return { claimed: [], wake: false, group };
      const [limit] = (await client.query<GroupLimitRow>(dq.LOCK_GROUP_LIMIT, [worker.namespace, group]))
        .rows;
      const groupLimits = { namespace: worker.namespace, name: group, ...groupLimitsFromRow(limit) };
      let plan: DispatchPlan;
      if (!needsSnapshot(candidates, groupLimits)) {
        plan = {
          claim: candidates.slice(0, max).map((c) => c.runId),
          assign: [],
          states: new Map(),
          buckets: new Map(),
        };
      } else {
        const jobs = lockedJobs(candidates);
        // Locks first, then counts: a concurrent claim of the same job commits before we count.
        await client.query(dq.ENSURE_JOB_ROUTING, [jobs]);
        const states = new Map<number, RoutingState>();
        for (const row of (await client.query<{ job_id: number; state: string }>(dq.LOCK_JOB_ROUTING, [jobs]))
          .rows)
          states.set(row.job_id, JSON.parse(row.state));
        const live = (
          await client.query<SnapshotRow>(dq.LIVE_WORKERS, [group, now, worker.namespace])
        ).rows.map(snapshotFromRow);
        let waiting: DispatchCandidate[] = [];
        if (requestsResources(candidates)) {
          // The claiming worker's row, locked: two claims for it (a poll on each of two nodes) place
          // runs one after the other, each counting what the other took. Other workers' requests are
          // read unlocked: they only steer reservations and routing, never a placement on them.
          await client.query(dq.LOCK_WORKER, [workerId]);
          addUsed(live, (await client.query<UsedRow>(dq.USED_BY_WORKERS, [live.map((w) => w.id)])).rows);
          // Runs that waited long enough to be reserved for, locked or not: a big run another
          // node's claim holds at this instant must still hold back the small runs behind it.
          waiting = (
            await client.query<CandidateRow>(dq.RESOURCE_WAITERS, [
              workerId,
              group,
              JSON.parse(worker.handlers) as string[],
              now - this.reserveAfterMs,
              dispatchWindow(max),
              worker.namespace,
            ])
          ).rows.map(candidateFromRow);
        }
        const loadOfJob = new Map<string, number>();
        for (const row of (
          await client.query<{ w: string; job_id: number; n: number }>(dq.LOAD_OF_JOBS, [jobs])
        ).rows) {
          const key = `${row.w}:${row.job_id}`;
          loadOfJob.set(key, (loadOfJob.get(key) ?? 0) + row.n);
        }
        const runningOfJob = new Map<number, number>();
        for (const row of (await client.query<{ job_id: number; n: number }>(dq.RUNNING_OF_JOBS, [jobs]))
          .rows)
          runningOfJob.set(row.job_id, row.n);
        // Buckets need no lock of their own: the job's routing row and the group's limit row are locked.
        const buckets = new Map<string, Bucket>();
        for (const row of (
          await client.query<BucketRow>(dq.READ_BUCKETS, [bucketScopes(candidates, groupLimits)])
        ).rows)
          buckets.set(row.scope, { tokens: row.tokens, updatedAt: row.updated_at });
        const groupRunning =
          groupLimits.maxConcurrency === null
            ? 0
            : (await client.query<{ n: number }>(dq.RUNNING_OF_GROUP, [worker.namespace, group])).rows[0]!.n;
        plan = planDispatch({
          workerId,
          max,
          candidates,
          live,
          loadOfJob,
          runningOfJob,
          groupRunning,
          group: groupLimits,
          buckets,
          now,
          states,
          random,
          reserveAfterMs: this.reserveAfterMs,
          waiting,
        });
      }
      if (plan.assign.length > 0)
        await client.query(dq.ASSIGN_RUNS, [
          JSON.stringify(plan.assign.map((a) => ({ run_id: a.runId, worker_id: a.workerId }))),
        ]);
      if (plan.states.size > 0)
        await client.query(dq.SAVE_JOB_ROUTING, [
          JSON.stringify([...plan.states].map(([job_id, state]) => ({ job_id, state }))),
        ]);
      if (plan.buckets.size > 0)
        await client.query(dq.SAVE_BUCKETS, [
          JSON.stringify(
            [...plan.buckets].map(([scope, b]) => ({ scope, tokens: b.tokens, updated_at: b.updatedAt })),
          ),
        ]);
      let claimed: ClaimedRun[] = [];
      if (plan.claim.length > 0) {
        const rows = (await client.query<ClaimRow>(dq.CLAIM_PLANNED, [workerId, plan.claim, now, claimSeq]))
          .rows;
        const byId = new Map(rows.map((row) => [row.id, row]));
        const byRun = new Map(candidates.map((c) => [c.runId, c]));
        claimed = plan.claim.map((id) => claimedFromRow(byId.get(id)!, byRun.get(id)!));
      }
      return {
        claimed,
        wake: plan.assign.some((a) => a.workerId !== null && a.workerId !== workerId),
        group,
      };
    });
    if (out === null)
      throw new KairosError('WORKER_NOT_FOUND', `worker ${workerId} is not registered or was declared lost`);
    // Runs were assigned to other workers: wake their polls, on every node.
    if (out.wake) await this.c.notify([{ type: 'runs', group: out.group }]);
    return { runs: out.claimed };
  }

  async drainWorker(workerId: string, _now: number): Promise<WorkerRecord | null> {
    // Runs assigned to it are routed again by the next claim of another worker.
    return this.setWorkerStatus('drainWorker', dq.DRAIN_WORKER, workerId, 'drain');
  }

  async resumeWorker(workerId: string, _now: number): Promise<WorkerRecord | null> {
    // Its long polls, and those of its group, claim again.
    return this.setWorkerStatus('resumeWorker', dq.RESUME_WORKER, workerId, 'resume');
  }

  /** Drains or resumes a worker that is active or draining; its group's waiters hear of it. */
  private async setWorkerStatus(
    operation: string,
    statement: string,
    workerId: string,
    verb: string,
  ): Promise<WorkerRecord | null> {
    const [row] = await this.c.query<{ status: string; group_name: string }>(operation, statement, [
      workerId,
    ]);
    if (!row) return null;
    if (row.status !== 'active' && row.status !== 'draining') {
      throw new KairosError('WORKER_NOT_ACTIVE', `worker ${workerId} is ${row.status}: nothing to ${verb}`);
    }
    await this.c.notify([{ type: 'runs', group: row.group_name }]);
    return (await this.listWorkers()).find((w) => w.id === workerId) ?? null;
  }

  async expireQueuedRuns(now: number, limit: number): Promise<number[]> {
    const expired = await this.c.transaction('expireQueuedRuns', async (client) => {
      const due = (await client.query<{ id: number; ms: number }>(dq.DUE_QUEUED, [now, limit])).rows;
      if (due.length === 0) return { ids: [], groups: [] };
      const input = due.map((row) => ({ id: row.id, error: scheduleToStartError(row.ms) }));
      const ended = await client.query<{ id: number }>(dq.FAIL_QUEUED, [now, JSON.stringify(input)]);
      const ids = ended.rows.map((row) => row.id);
      // What any run end sets off: the jobs after them, their workflow instances, buffered runs.
      return { ids, groups: await afterRunsEnded(client, ids, now) };
    });
    if (expired.groups.length > 0) {
      await this.c.notify([...new Set(expired.groups)].map((group) => ({ type: 'runs', group })));
    }
    return expired.ids;
  }

  async setGroupLimit(
    group: string,
    limits: GroupLimits,
    now: number,
    namespace: string = DEFAULT_NAMESPACE,
  ): Promise<void> {
    await this.c.query('setGroupLimit', dq.SET_GROUP_LIMIT, [
      group,
      limits.maxConcurrency,
      limits.rateLimit?.limit ?? null,
      limits.rateLimit?.perMs ?? null,
      now,
      namespace,
    ]);
    await this.c.notify([{ type: 'runs', group }]);
  }

  async listGroupLimits(namespace?: string): Promise<GroupLimit[]> {
    const rows = await this.c.query<NamespaceGroupLimitRow>('listGroupLimits', dq.LIST_GROUP_LIMITS, [
      namespace ?? null,
    ]);
    return rows.map(groupLimitFromRow);
  }

  async routingState(jobId: number): Promise<RoutingState | null> {
    const [row] = await this.c.query<{ state: string }>(
      'routingState',
      'SELECT state FROM job_routing WHERE job_id = $1',
      [jobId],
    );
    return row ? (JSON.parse(row.state) as RoutingState) : null;
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

  reclaimSpace(_maxPages: number, _minFreeShare: number): Promise<number> {
    return retention.reclaimSpace(this.c, _maxPages, _minFreeShare);
  }

  async dispatchAhead(
    workerId: string,
    max: number,
    until: number,
    now: number,
    claimSeq: number | null = null,
  ): Promise<ClaimedRun[]> {
    const rows = await this.c.query<AheadRow>('dispatchAhead', ahead.DISPATCH_AHEAD, [
      workerId,
      now,
      until,
      max,
      claimSeq,
    ]);
    return rows.map(aheadClaimedFromRow);
  }

  async withdrawFiresAhead(jobId: number, after: number): Promise<number> {
    // The runs first, then the job: the lock order of every path that ends or deletes runs.
    const [row] = await this.c.query<{ n: number }>('withdrawFiresAhead', ahead.WITHDRAW_FIRES_AHEAD, [
      jobId,
      after,
    ]);
    return row?.n ?? 0;
  }

  async nextAvailableAt(workerId: string, now: number): Promise<number | null> {
    const [row] = await this.c.query<{ at: number | null }>('nextAvailableAt', ahead.NEXT_AVAILABLE_AT, [
      workerId,
      now,
    ]);
    return row?.at ?? null;
  }
}

/** Fires the entries that need policy steps, one job at a time, inside the caller's transaction. */
async function firePolicyEntries(
  client: pg.PoolClient,
  entries: readonly FireEntry[],
  now: number,
): Promise<{ runs: number; conflicts: number; groups: string[]; skipped: SkipWritten[] }> {
  const out = { runs: 0, conflicts: 0, groups: [] as string[], skipped: [] as SkipWritten[] };
  for (const entry of entries) {
    // A workflow's job: its fires start instances (store/postgres/workflow-fires.ts).
    const fired = entry.workflow
      ? await fireWorkflow(client, entry, now)
      : await fireWithPolicies(client, entry, now);
    if (!fired.advanced) out.conflicts++;
    out.runs += fired.runs;
    for (const group of fired.groups) if (!out.groups.includes(group)) out.groups.push(group);
    out.skipped.push(...fired.skipped);
  }
  return out;
}

function leaseKey(lease: Lease): { name: string; owner: string; epoch: number } {
  return { name: lease.name, owner: lease.owner, epoch: lease.epoch };
}

/** The edit's expectation as UPDATE_JOB's $19..$21. */
/** The parameters of UPDATE_JOB (and RESUME_JOB), in their order. */
function updateValues(
  id: number,
  job: JobDefinition,
  nextFireAt: number | null,
  now: number,
  expected: JobExpectation | undefined,
): unknown[] {
  return [
    ...jobValues(job),
    nextFireAt,
    now,
    id,
    ...dispatchValues(job),
    ...expectationValues(expected),
    retentionColumn(job.retention),
    job.owner,
    job.revision,
    JSON.stringify(job.secretParams),
  ];
}

function expectationValues(expected: JobExpectation | undefined): unknown[] {
  return expected ? [expected.version, true, expected.nextFireAt] : [null, false, null];
}

function jobValues(job: JobDefinition): unknown[] {
  return [
    job.name,
    job.description,
    job.group,
    job.handler,
    JSON.stringify(job.params),
    JSON.stringify(job.trigger),
    delayOf(job.trigger),
    JSON.stringify(job.retry),
    job.timeoutMs,
    job.priority,
    job.paused,
    JSON.stringify(job.schedule),
  ];
}
