import { EventEmitter } from 'node:events';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AttemptRef, JsonObject, SkipReason, TraceContext } from '@kairos/client';
import Database from 'better-sqlite3';
import type { CalendarDefinition, CalendarRecord } from '../../core/calendar.ts';
import type { SkippedRange } from '../../core/fire-plan.ts';
import type { JobDefinition, JobRecord } from '../../core/job.ts';
import { idempotencyConflict, sameRunRequest } from '../../core/manual-run.ts';
import { BUFFERED_AT, HELD_WHILE_PAUSED_AT } from '../../core/overlap.ts';
import type { Bucket } from '../../core/rate-limit.ts';
import type { Resources } from '../../core/resources.ts';
import {
  type InstancePruneCandidate,
  type JobRetention,
  type PruneCandidate,
  retentionColumn,
  retentionFromColumn,
} from '../../core/retention.ts';
import type { RoutingState, WorkerLoad } from '../../core/routing.ts';
import { KairosError, StoreUnavailableError } from '../../errors.ts';
import { VERSION } from '../../version.ts';
import {
  type ApiTokenRecord,
  type ApiTokenRow,
  type AuditEntry,
  type AuditRecord,
  type AuditRow,
  apiTokenFromRow,
  auditFromRow,
  EXTERNAL_PASSWORD_HASH,
  type ExternalUser,
  type FireLateness,
  latenessFromSample,
  type MinuteCount,
  type NewApiToken,
  type NewOidcLogin,
  type NewSession,
  type NewUser,
  type OidcLoginRecord,
  type OidcLoginRow,
  type OverviewCounts,
  oidcLoginFromRow,
  overviewFromRows,
  type QueuedRunCount,
  type QueuedRunCountRow,
  queuedRunCountFromRow,
  type SessionRecord,
  type SessionRow,
  sessionFromRow,
  tokenNameTaken,
  type UserPatch,
  type UserRecord,
  type UserRow,
  userFromRow,
} from '../access.ts';
import type { AlertStore } from '../alerts.ts';
import {
  bucketScopes,
  DEFAULT_RESERVE_AFTER_MS,
  type DispatchCandidate,
  lockedJobs,
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
import {
  groupByRun,
  type LogRow,
  logFromRow,
  type ProgressRow,
  planLogAppend,
  progressFromRow,
} from '../log-rows.ts';
import { planMigrations, readMigrations } from '../migrations.ts';
import { DEFAULT_NAMESPACE, type NamespaceStore, nameTakenElsewhere } from '../namespaces.ts';
import {
  type InstancePruneRow,
  instancePruneCandidateFromRow,
  type PruneRow,
  pruneCandidateFromRow,
} from '../retention-rows.ts';
import {
  type AttemptRow,
  attemptFromRow,
  type DecisionRow,
  DUE_JOB_COLUMNS,
  type DueJobRow,
  decisionFromRow,
  delayOf,
  dispatchValues,
  dueJobsFromRows,
  heartbeatAnswer,
  type JobRow,
  jobFromRow,
  json,
  type LeaseRow,
  leaseFromRow,
  type NodeRow,
  nodeFromRow,
  RUN_COLUMNS,
  RUN_SUMMARY_COLUMNS,
  type RunRow,
  runFromRow,
  toJson,
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
  type RunTimingRequest,
  type SecretParamsRow,
  type SecretTable,
  type SkippedRecord,
  type Store,
  type StoreEvent,
  type TriggerRunRequest,
  type WorkerIdentity,
  type WorkerRecord,
  type WorkerRegistration,
} from '../store.ts';
import { JOB_DELETED, type WorkflowStore } from '../workflows.ts';
import { SqliteAlerts, type SqliteConnection } from './alerts.ts';
import { shardNewRuns } from './broadcasts.ts';
import { checkDependencyCycle } from './dependencies.ts';
import * as hot from './hot-statements.ts';
import { SqliteNamespaces } from './namespaces.ts';
import * as quotas from './quotas.ts';
import * as retention from './retention.ts';
import {
  afterRunsEnded,
  applyOverlap,
  backfill,
  countRuns,
  hasPolicies,
  recordSkipped,
} from './schedules.ts';
import * as secrets from './secret-queries.ts';
import { fireWorkflow } from './workflow-fires.ts';
import { advanceWorkflows, SqliteWorkflows } from './workflows.ts';

type Statement = Database.Statement<unknown[], unknown>;

// An attempt's row is written once, when the attempt ends; a running attempt is its run's row
// (attempt, worker, start). Reads of attempts take both.

/** The attempts of run @run in order: the ended ones' rows, then the running one from the run row. */
const ATTEMPTS_OF_RUN = `SELECT a.run_id, a.attempt, a.worker_id, a.status, a.started_at, a.finished_at, a.error,
    l.outcome AS late_outcome, l.reported_at AS late_reported_at, l.error AS late_error
  FROM attempts a LEFT JOIN late_reports l ON l.run_id = a.run_id AND l.attempt = a.attempt WHERE a.run_id = @run
  UNION ALL
  SELECT id, attempt, worker_id, 'running', started_at, NULL, NULL, NULL, NULL, NULL FROM runs
  WHERE id = @run AND status = 'running'
  ORDER BY attempt`;

/**
 * Late reports of @worker ([[run id, attempt, outcome, error], …]) for its attempts that the node
 * ended (lost, timed out, cancelled), unless the report says what the end says; the first per attempt.
 */
const LATE_REPORTS = `INSERT INTO late_reports (run_id, attempt, outcome, reported_at, error)
  SELECT a.run_id, a.attempt, v.value ->> 2, @now, v.value ->> 3
  FROM json_each(@reports) v JOIN attempts a ON a.run_id = v.value ->> 0 AND a.attempt = v.value ->> 1
  WHERE a.worker_id = @worker AND a.status IN ('lost', 'timed_out', 'cancelled') AND a.status <> v.value ->> 2
  ON CONFLICT DO NOTHING`;

/** Whether @worker holds @attempt of @run now: the run's current attempt, running on it. */
const HELD_ATTEMPT = `SELECT 1 FROM runs WHERE id = @run AND attempt = @attempt AND worker_id = @worker AND status = 'running'`;

/** Whether @worker ran @attempt of @run: its running attempt, or one of its ended ones. */
const OWNED_ATTEMPT = `SELECT 1 FROM runs WHERE id = @run AND attempt = @attempt AND worker_id = @worker AND status = 'running'
  UNION ALL SELECT 1 FROM attempts WHERE run_id = @run AND attempt = @attempt AND worker_id = @worker`;

/**
 * Lateness (first attempt's start − fire time) of scheduled runs whose first attempt started in
 * [@since, @now], the newest @limit: ended first attempts through attempts_first_start, and first
 * attempts still running from their runs (runs_worker holds every running run; they are few).
 */
const FIRST_STARTS = `SELECT late FROM (
    SELECT * FROM (
      SELECT a.started_at AS started, a.started_at - r.fire_time AS late FROM attempts a INDEXED BY attempts_first_start
        JOIN runs r ON r.id = a.run_id
      WHERE a.attempt = 1 AND a.started_at >= @since AND a.started_at <= @now
        AND r.cause = 'schedule' AND r.fire_time IS NOT NULL
      ORDER BY a.started_at DESC LIMIT @limit)
    UNION ALL
    SELECT started_at, started_at - fire_time FROM runs INDEXED BY runs_worker
    WHERE status = 'running' AND attempt = 1 AND started_at >= @since AND started_at <= @now
      AND cause = 'schedule' AND fire_time IS NOT NULL)
  ORDER BY started DESC LIMIT @limit`;

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
  private readonly db: Database.Database;
  private readonly events = new EventEmitter();
  private readonly statements = new Map<string, Statement>();
  reserveAfterMs = DEFAULT_RESERVE_AFTER_MS;

  constructor(readonly path: string) {
    if (path !== ':memory:') createPrivateFile(path);
    this.db = new Database(path);
    // Retention frees pages; a database created incremental can give them back (reclaimSpace). The
    // mode is chosen before the first table: on an older database this changes nothing.
    this.db.pragma('auto_vacuum = INCREMENTAL');
    this.db.pragma('journal_mode = WAL');
    // NORMAL is durable across process crashes in WAL mode; only an OS crash can lose the last commits.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.events.setMaxListeners(0);
    const connection: SqliteConnection = {
      db: this.db,
      sql: (text) => this.sql(text),
      run: (operation, body) => this.run(operation, body),
    };
    this.alerts = new SqliteAlerts(connection);
    this.namespaces = new SqliteNamespaces(connection, (entry) => this.audit(entry));
    this.workflows = new SqliteWorkflows(
      connection,
      (groups) => {
        for (const group of new Set(groups)) this.emit({ type: 'runs', group });
      },
      (ended, now) => afterRunsEnded((text) => this.sql(text), ended, now),
      () => this.emit({ type: 'jobs' }),
    );
  }

  async migrate(): Promise<void> {
    this.db
      .transaction(() => {
        // user_version is the highest migration applied; the write lock of IMMEDIATE keeps another
        // process on the same file from migrating at the same time.
        const current = this.db.pragma('user_version', { simple: true }) as number;
        const hasMeta = this.db
          .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_meta'")
          .get();
        const row = hasMeta
          ? (this.db
              .prepare('SELECT schema_version, min_code_version, migrated_by FROM schema_meta WHERE id = 1')
              .get() as { schema_version: number; min_code_version: string; migrated_by: string } | undefined)
          : undefined;
        const plan = planMigrations({
          known: readMigrations('sqlite'),
          applied: Array.from({ length: current }, (_, i) => i + 1),
          meta: row
            ? {
                schemaVersion: row.schema_version,
                minCodeVersion: row.min_code_version,
                migratedBy: row.migrated_by,
              }
            : null,
          codeVersion: VERSION,
        });
        for (const migration of plan.pending) {
          this.db.exec(migration.sql);
          this.db.pragma(`user_version = ${migration.version}`);
        }
        if (plan.meta)
          this.db
            .prepare(
              `INSERT INTO schema_meta (id, schema_version, min_code_version, migrated_by) VALUES (1, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET schema_version = excluded.schema_version,
                 min_code_version = excluded.min_code_version, migrated_by = excluded.migrated_by`,
            )
            .run(plan.meta.schemaVersion, plan.meta.minCodeVersion, plan.meta.migratedBy);
      })
      .immediate();
  }

  async close(): Promise<void> {
    this.db.close();
  }

  // Jobs ---------------------------------------------------------------------

  async createJob(
    job: JobDefinition,
    nextFireAt: number | null,
    now: number,
    namespace = DEFAULT_NAMESPACE,
    quota?: JobQuotaCheck,
  ): Promise<JobRecord> {
    const insert = () => {
      // Under the write lock of the immediate transaction: no other write counts in between.
      if (quota) quotas.checkJobQuota((text) => this.sql(text), namespace, -1, quota);
      checkDependencyCycle((text) => this.sql(text), namespace, job);
      return this.sql(
        `INSERT INTO jobs (name, description, group_name, handler, params, trigger, delay_ms, retry, timeout_ms,
             priority, paused, schedule, next_fire_at, created_at, updated_at, dispatch, schedule_to_start_ms, task, retention,
             owner, revision, secret_params, namespace)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
      ).get(
        ...jobValues(job),
        nextFireAt,
        now,
        now,
        ...dispatchValues(job),
        retentionColumn(job.retention),
        job.owner,
        job.revision,
        JSON.stringify(job.secretParams),
        namespace,
      ) as JobRow;
    };
    return this.run('createJob', () => {
      try {
        const row =
          quota || job.trigger.kind === 'after' ? this.db.transaction(insert).immediate() : insert();
        this.emit({ type: 'jobs' });
        return jobFromRow(row);
      } catch (error) {
        if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
          throw new KairosError('JOB_NAME_TAKEN', `a job named ${JSON.stringify(job.name)} exists`);
        }
        throw error;
      }
    });
  }

  async updateJob(
    id: number,
    job: JobDefinition,
    nextFireAt: number | null,
    now: number,
    expected?: JobExpectation,
    quota?: JobQuotaCheck,
  ): Promise<JobRecord | null> {
    return this.run('updateJob', () => {
      const update = () => {
        const row = this.sql(`${UPDATE_JOB} RETURNING *`).get(
          ...updateValues(id, job, nextFireAt, now, expected),
        ) as JobRow | undefined;
        // Judged only when the edit applies, under the write lock; a refusal rolls it back.
        if (row && quota) quotas.checkJobQuota((text) => this.sql(text), row.namespace, id, quota);
        if (row) checkDependencyCycle((text) => this.sql(text), row.namespace, job);
        return row;
      };
      const row = quota || job.trigger.kind === 'after' ? this.db.transaction(update).immediate() : update();
      if (row) this.emit({ type: 'jobs' });
      return row ? jobFromRow(row) : null;
    });
  }

  async getJob(name: string, options: { workflowJobs?: boolean } = {}): Promise<JobRecord | null> {
    return this.run('getJob', () => {
      // A workflow's own job (store/workflows.ts) is no job of the API's: its name is never found.
      const row = this.sql('SELECT * FROM jobs WHERE name = ? AND (workflow_id IS NULL OR ?)').get(
        name,
        options.workflowJobs ? 1 : 0,
      ) as JobRow | undefined;
      return row ? jobFromRow(row) : null;
    });
  }

  async listJobs(filter: {
    namespace?: string | undefined;
    group?: string | undefined;
    after?: string | undefined;
    limit: number;
  }): Promise<JobRecord[]> {
    return this.run('listJobs', () => {
      // Written only when given, so that the plan of a namespace's page walks jobs_namespace_name.
      const inNamespace = filter.namespace === undefined ? '' : ' AND namespace = @namespace';
      const rows = this.sql(
        `SELECT * FROM jobs WHERE workflow_id IS NULL AND (@group IS NULL OR group_name = @group) AND (@after IS NULL OR name > @after)${inNamespace}
         ORDER BY name LIMIT @limit`,
      ).all({
        group: filter.group ?? null,
        after: filter.after ?? null,
        limit: filter.limit,
        ...(filter.namespace === undefined ? {} : { namespace: filter.namespace }),
      }) as JobRow[];
      return rows.map(jobFromRow);
    });
  }

  async deleteJob(name: string, version?: number, now = Date.now()): Promise<boolean> {
    return this.run('deleteJob', () => {
      const deleted = this.db
        .transaction(() => {
          const job = this.sql(
            'SELECT id FROM jobs WHERE name = ? AND workflow_id IS NULL AND (? IS NULL OR version = ?)',
          ).get(name, version ?? null, version ?? null) as { id: number } | undefined;
          if (!job) return null;
          // Its workflow step runs end first, so that their instances advance (store/workflows.ts).
          const steps = this.sql(
            `SELECT id, status, attempt, worker_id, started_at FROM runs
             WHERE job_id = ? AND workflow_instance_id IS NOT NULL AND status IN ('queued', 'running')`,
          ).all(job.id) as Array<{
            id: number;
            status: string;
            attempt: number;
            worker_id: string;
            started_at: number;
          }>;
          const running = steps.filter((r) => r.status === 'running');
          if (running.length > 0) {
            this.sql(hot.END_ATTEMPTS).run(
              now,
              JSON.stringify(
                running.map((r) => [r.id, r.attempt, r.worker_id, 'cancelled', r.started_at, JOB_DELETED]),
              ),
            );
          }
          const cancel = this.sql(
            `UPDATE runs SET status = 'cancelled', finished_at = ?, error = ?, deadline_at = NULL WHERE id = ?`,
          );
          for (const run of steps) cancel.run(now, JOB_DELETED, run.id);
          const groups = advanceWorkflows(
            (text) => this.sql(text),
            steps.map((r) => r.id),
            now,
            job.id,
          );
          this.sql('DELETE FROM jobs WHERE id = ?').run(job.id);
          return groups;
        })
        .immediate();
      if (deleted === null) return false;
      this.emit({ type: 'jobs' });
      for (const group of new Set(deleted)) this.emit({ type: 'runs', group });
      return true;
    });
  }

  // Secret params ------------------------------------------------------------

  async secretParamsPage(table: SecretTable, afterId: number, limit: number): Promise<SecretParamsRow[]> {
    return this.run('secretParamsPage', () => {
      const rows = this.sql(secrets.secretParamsPage(checkedTable(table))).all(afterId, limit) as Array<{
        id: number;
        params: string;
      }>;
      return rows.map((row) => ({ id: row.id, params: json<JsonObject>(row.params), stored: row.params }));
    });
  }

  async replaceSecretParams(
    table: SecretTable,
    id: number,
    stored: string,
    params: JsonObject,
  ): Promise<boolean> {
    return this.run(
      'replaceSecretParams',
      () =>
        this.sql(secrets.replaceSecretParams(checkedTable(table))).run(JSON.stringify(params), id, stored)
          .changes > 0,
    );
  }

  // Firing -------------------------------------------------------------------

  async dueJobs(partitions: Partitions, now: number, limit: number): Promise<DueJob[]> {
    return this.run('dueJobs', () => {
      const rows = this.sql(
        `SELECT ${DUE_JOB_COLUMNS} FROM jobs
         WHERE next_fire_at IS NOT NULL AND paused = 0 AND next_fire_at <= ?
           AND (id % ?) IN (SELECT value FROM json_each(?))
         ORDER BY next_fire_at LIMIT ?`,
      ).all(now, partitions.count, JSON.stringify(partitions.owned), limit) as DueJobRow[];
      return dueJobsFromRows(rows);
    });
  }

  async nextFireAt(partitions: Partitions): Promise<number | null> {
    return this.run('nextFireAt', () => {
      // Walks the jobs_due index from its start and stops at the first owned job.
      const row = this.sql(
        `SELECT next_fire_at FROM jobs
         WHERE next_fire_at IS NOT NULL AND paused = 0 AND (id % ?) IN (SELECT value FROM json_each(?))
         ORDER BY next_fire_at LIMIT 1`,
      ).get(partitions.count, JSON.stringify(partitions.owned)) as { next_fire_at: number } | undefined;
      return row?.next_fire_at ?? null;
    });
  }

  async fire(
    entries: readonly FireEntry[],
    leases: readonly Lease[] | null,
    now: number,
  ): Promise<FireResult> {
    const result = this.run('fire', () =>
      this.db
        .transaction(() => {
          if (leases) this.checkLeases(leases, now);
          const advance = this.sql(
            'UPDATE jobs SET next_fire_at = ? WHERE id = ? AND next_fire_at = ? AND paused = 0 RETURNING group_name',
          );
          const out: FireResult = { runs: 0, conflicts: 0, groups: [] };
          // The runs of plain entries wait here and are inserted in one statement (see
          // hot.INSERT_FIRES), before an entry with policies and at the end: ids in entry order.
          const pending: Array<
            [jobId: number, fireTime: number, availableAt: number, traceContext: string | null]
          > = [];
          const flush = () => {
            if (pending.length === 0) return;
            out.runs += this.sql(hot.INSERT_FIRES).run({ now, fires: JSON.stringify(pending) }).changes;
            pending.length = 0;
          };
          /** The ledger rows of plain entries, written in one statement at the end. */
          const ledger: Array<
            [jobId: number, reason: string, first: number, last: number, count: number | null]
          > = [];
          for (const entry of entries) {
            const advanced = advance.get(entry.next, entry.jobId, entry.expected) as
              | { group_name: string }
              | undefined;
            if (!advanced) {
              out.conflicts++;
              continue;
            }
            if (entry.workflow) {
              // A workflow's job: its fires start instances (store/sqlite/workflow-fires.ts).
              flush();
              const fired = fireWorkflow((text) => this.sql(text), entry, now);
              out.runs += fired.runs;
              for (const g of fired.groups) if (!out.groups.includes(g)) out.groups.push(g);
              if (fired.skipped.length > 0) out.skipped = [...(out.skipped ?? []), ...fired.skipped];
              continue;
            }
            if (hasPolicies(entry)) {
              flush();
              this.fireWithPolicies(entry, advanced.group_name, now, out);
              continue;
            }
            for (const range of entry.skipped ?? [])
              ledger.push([entry.jobId, range.reason, range.first, range.last, range.count]);
            entry.fires.forEach((fireTime, i) => {
              pending.push([
                entry.jobId,
                fireTime,
                entry.availableAt?.[i] ?? fireTime,
                traceColumn(entry.traceContexts?.[i]),
              ]);
            });
            if (entry.fires.length > 0 && !out.groups.includes(advanced.group_name))
              out.groups.push(advanced.group_name);
          }
          flush();
          if (ledger.length > 0) {
            const written = this.sql(hot.INSERT_SKIPPED).all({ now, rows: JSON.stringify(ledger) }) as Array<{
              job_id: number;
              reason: SkipReason;
              count: number | null;
            }>;
            out.skipped = [
              ...(out.skipped ?? []),
              ...written.map((row) => ({ jobId: row.job_id, reason: row.reason, count: row.count })),
            ];
          }
          shardNewRuns(
            (text) => this.sql(text),
            entries.map((e) => e.jobId),
            now,
          );
          return out;
        })
        .immediate(),
    );
    for (const group of result.groups) this.emit({ type: 'runs', group });
    return result;
  }

  /** The runs of an entry whose job won its compare-and-set, through its overlap, ledger and maxRuns steps. */
  private fireWithPolicies(entry: FireEntry, group: string, now: number, out: FireResult): void {
    const insert = this.sql(
      `INSERT INTO runs (job_id, group_name, handler, cause, fire_time, params, priority, status, max_attempts,
         retry, timeout_ms, created_at, available_at, trace_context, namespace)
       SELECT id, group_name, handler, 'schedule', ?, params, priority, 'queued', json_extract(retry, '$.maxAttempts'),
         retry, timeout_ms, ?, ?, ?, namespace
       FROM jobs WHERE id = ?
       ON CONFLICT DO NOTHING`,
    );
    const sql = (text: string) => this.sql(text);
    const { keep, skipped, groups } = applyOverlap(sql, entry, now);
    for (const g of groups) if (!out.groups.includes(g)) out.groups.push(g);
    let runs = 0;
    for (const { i, buffered } of keep) {
      const fireTime = entry.fires[i]!;
      const availableAt = buffered ? BUFFERED_AT : (entry.availableAt?.[i] ?? fireTime);
      runs += insert.run(
        fireTime,
        now,
        availableAt,
        traceColumn(entry.traceContexts?.[i]),
        entry.jobId,
      ).changes;
    }
    out.runs += runs;
    if (entry.countRuns) countRuns(sql, entry.jobId, runs);
    const ranges = skipped ? [...(entry.skipped ?? []), skipped] : (entry.skipped ?? []);
    out.skipped = [...(out.skipped ?? []), ...recordSkipped(sql, entry.jobId, ranges, now)];
    if (runs > 0 && !out.groups.includes(group)) out.groups.push(group);
  }

  private checkLeases(leases: readonly Lease[], now: number): void {
    const held = this.sql(
      'SELECT 1 FROM leases WHERE name = ? AND owner = ? AND epoch = ? AND expires_at > ?',
    );
    for (const lease of leases) {
      if (!held.get(lease.name, lease.owner, lease.epoch, now)) {
        throw new LeaseLostError(
          `lease ${lease.name} epoch ${lease.epoch} is no longer held by ${lease.owner}`,
        );
      }
    }
  }

  // Runs ---------------------------------------------------------------------

  async enqueueRuns(
    jobId: number,
    requests: readonly EnqueueRequest[],
    now: number,
    maxQueuedRuns?: MaxQueuedRuns,
  ): Promise<number[]> {
    const { ids, group } = this.run('enqueueRuns', () =>
      this.db
        .transaction(() => {
          const job = this.sql('SELECT group_name, retry FROM jobs WHERE id = ?').get(jobId) as
            | { group_name: string; retry: string }
            | undefined;
          if (!job) throw new KairosError('JOB_NOT_FOUND', `job ${jobId} does not exist`);
          const out: number[] = [];
          let inserted = 0;
          for (const request of requests) {
            const run = this.insertManualRun(jobId, request, request.params, request.priority, now);
            out.push(run.id);
            if (run.inserted) inserted++;
          }
          shardNewRuns((text) => this.sql(text), [jobId], now);
          // After sharding: a broadcast run's shards are queued runs too.
          if (maxQueuedRuns != null)
            quotas.checkQueuedRunsAfter((text) => this.sql(text), jobId, maxQueuedRuns, inserted);
          return { ids: out, group: job.group_name };
        })
        .immediate(),
    );
    this.emit({ type: 'runs', group });
    return ids;
  }

  async triggerRun(
    name: string,
    request: TriggerRunRequest,
    now: number,
    audit?: AuditEntry,
    maxQueuedRuns?: MaxQueuedRuns,
  ): Promise<RunRecord | null> {
    const out = this.run('triggerRun', () =>
      this.db
        .transaction(() => {
          const job = this.sql('SELECT id, group_name, params, priority FROM jobs WHERE name = ?').get(
            name,
          ) as { id: number; group_name: string; params: string; priority: number } | undefined;
          if (!job) return null;
          const { id, inserted } = this.insertManualRun(
            job.id,
            request,
            request.params ?? json<JsonObject>(job.params),
            request.priority ?? job.priority,
            now,
          );
          if (inserted) shardNewRuns((text) => this.sql(text), [job.id], now);
          if (inserted && maxQueuedRuns != null)
            quotas.checkQueuedRunsAfter((text) => this.sql(text), job.id, maxQueuedRuns, 1);
          this.audit(audit);
          const row = this.sql(
            `SELECT ${RUN_COLUMNS} FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.id = ?`,
          ).get(id) as RunRow;
          return { run: runFromRow(row), group: inserted ? job.group_name : null };
        })
        .immediate(),
    );
    if (out?.group) this.emit({ type: 'runs', group: out.group });
    return out?.run ?? null;
  }

  /**
   * Inserts one manual run, inside the caller's transaction; or answers the run its idempotency key
   * holds (IDEMPOTENCY_CONFLICT when asked for with other params or priority), after taking an
   * expired key from its old run.
   */
  private insertManualRun(
    jobId: number,
    request: RunTimingRequest,
    params: JsonObject,
    priority: number,
    now: number,
  ): { id: number; inserted: boolean } {
    const key = request.idempotencyKey ?? null;
    if (key !== null) {
      const held = this.sql(hot.RUN_BY_IDEMPOTENCY_KEY).get(jobId, key) as
        | { id: number; params: string; priority: number; idempotency_expires_at: number | null }
        | undefined;
      if (held && held.idempotency_expires_at !== null && held.idempotency_expires_at <= now) {
        this.sql(hot.RELEASE_IDEMPOTENCY_KEY).run(held.id);
      } else if (held) {
        if (
          !sameRunRequest(
            { params: json<JsonObject>(held.params), priority: held.priority },
            params,
            priority,
          )
        )
          throw idempotencyConflict(key, held.id);
        return { id: held.id, inserted: false };
      }
    }
    const row = this.sql(hot.INSERT_MANUAL_RUN).get(
      key,
      key === null ? null : (request.idempotencyExpiresAt ?? null),
      JSON.stringify(params),
      priority,
      now,
      request.availableAt ?? now,
      traceColumn(request.traceContext),
      jobId,
    ) as { id: number };
    return { id: row.id, inserted: true };
  }

  async getRun(id: number): Promise<RunRecord | null> {
    return this.run('getRun', () => {
      const row = this.sql(
        `SELECT ${RUN_COLUMNS} FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.id = ?`,
      ).get(id) as RunRow | undefined;
      return row ? runFromRow(row) : null;
    });
  }

  async getAttempts(runId: number): Promise<AttemptRecord[]> {
    return this.run('getAttempts', () =>
      (this.sql(ATTEMPTS_OF_RUN).all({ run: runId }) as AttemptRow[]).map(attemptFromRow),
    );
  }

  async listRuns(filter: RunQuery): Promise<RunRecord[]> {
    return this.run('listRuns', () => {
      // SQLite plans a statement once, whatever is bound: `@x IS NULL OR …` would hide the time
      // range from runs_created, so the range predicates are written only when given.
      const range =
        (filter.createdSince === undefined ? '' : ' AND r.created_at >= @since') +
        (filter.createdUntil === undefined ? '' : ' AND r.created_at < @until');
      const rows = this.sql(
        `SELECT ${filter.summary ? RUN_SUMMARY_COLUMNS : RUN_COLUMNS} FROM runs r JOIN jobs j ON j.id = r.job_id
         WHERE (@job IS NULL OR r.job_id = @job) AND (@status IS NULL OR r.status = @status)
           AND (@worker IS NULL OR r.worker_id = @worker) AND (@before IS NULL OR r.id < @before)${range}
           AND (@namespace IS NULL OR r.namespace = @namespace)
         ORDER BY r.id DESC LIMIT @limit`,
      ).all({
        namespace: filter.namespace ?? null,
        job: filter.jobId ?? null,
        status: filter.status ?? null,
        worker: filter.workerId ?? null,
        before: filter.before ?? null,
        ...(filter.createdSince === undefined ? {} : { since: filter.createdSince }),
        ...(filter.createdUntil === undefined ? {} : { until: filter.createdUntil }),
        limit: filter.limit,
      }) as RunRow[];
      return rows.map(runFromRow);
    });
  }

  async cancelRun(id: number, now: number): Promise<RunRecord | null> {
    return this.run('cancelRun', () =>
      this.db
        .transaction(() => {
          const run = this.sql('SELECT status, attempt, worker_id, started_at FROM runs WHERE id = ?').get(
            id,
          ) as { status: string; attempt: number; worker_id: string; started_at: number } | undefined;
          if (!run) return null;
          if (run.status !== 'queued' && run.status !== 'running') {
            throw new KairosError('RUN_FINISHED', `run ${id} already ended (${run.status})`);
          }
          const error = JSON.stringify({ name: 'Cancelled', message: 'cancelled through the API' });
          if (run.status === 'running') {
            this.sql(hot.END_ATTEMPTS).run(
              now,
              JSON.stringify([[id, run.attempt, run.worker_id, 'cancelled', run.started_at, error]]),
            );
          }
          this.endRun(id, 'cancelled', now, null, error);
          return this.getRunSync(id);
        })
        .immediate(),
    );
  }

  // Worker protocol ----------------------------------------------------------

  async registerWorker(worker: WorkerRegistration, leaseMs: number, now: number): Promise<void> {
    this.run('registerWorker', () =>
      this.sql(
        `INSERT INTO workers (id, name, group_name, handlers, capacity, labels, version, host, status, registered_at,
           last_heartbeat_at, lease_expires_at, registered_by, namespace, resources)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, group_name = excluded.group_name, handlers = excluded.handlers,
           capacity = excluded.capacity, labels = excluded.labels, version = excluded.version, host = excluded.host,
           resources = excluded.resources,
           status = 'active', last_heartbeat_at = excluded.last_heartbeat_at, lease_expires_at = excluded.lease_expires_at`,
      ).run(
        worker.id,
        worker.name,
        worker.group,
        JSON.stringify(worker.handlers),
        worker.capacity,
        JSON.stringify(worker.labels),
        worker.version,
        worker.host,
        now,
        now,
        now + leaseMs,
        worker.registeredBy ?? '',
        worker.namespace ?? DEFAULT_NAMESPACE,
        worker.resources ? JSON.stringify(worker.resources) : null,
      ),
    );
  }

  async heartbeat(
    workerId: string,
    running: readonly AttemptRef[],
    leaseMs: number,
    now: number,
    polled: number | null = null,
    load: WorkerLoad | null = null,
  ): Promise<HeartbeatAnswer | null> {
    return this.run('heartbeat', () =>
      this.db
        .transaction(() => {
          const alive = this.sql(
            // A lease never moves back (a heartbeat applied after a later one leaves the later lease).
            `UPDATE workers SET last_heartbeat_at = max(last_heartbeat_at, ?), lease_expires_at = max(lease_expires_at, ?),
               load = coalesce(?, load)
             WHERE id = ? AND status IN ('active', 'draining')`,
          ).run(now, now + leaseMs, load === null ? null : JSON.stringify(load), workerId).changes;
          if (!alive) return null;
          // No run is written: a running attempt lives as long as its worker's lease.
          const current = (
            this.sql(hot.RUNNING_OF_WORKER).all(workerId) as Array<{
              id: number;
              attempt: number;
              claim_seq: number | null;
            }>
          ).map((row) => [row.id, row.attempt, row.claim_seq] as const);
          return heartbeatAnswer(current, running, polled);
        })
        .immediate(),
    );
  }

  async claimRuns(workerId: string, max: number, now: number): Promise<ClaimedRun[]> {
    const claimed = this.run('claimRuns', () =>
      this.db
        .transaction(() => {
          const worker = this.sql(
            `SELECT namespace, group_name, handlers FROM workers WHERE id = ? AND status = 'active'`,
          ).get(workerId) as { namespace: string; group_name: string; handlers: string } | undefined;
          if (!worker) return null;
          const ids = (
            this.sql(
              `SELECT id FROM runs INDEXED BY runs_claim
               WHERE status = 'queued' AND group_name = @group AND available_at <= @now AND namespace = @namespace
                 AND handler IN (SELECT value FROM json_each(@handlers))
               ORDER BY priority DESC, available_at, id LIMIT @max`,
            ).all({
              now,
              namespace: worker.namespace,
              group: worker.group_name,
              handlers: worker.handlers,
              max,
            }) as Array<{ id: number }>
          ).map((row) => row.id);
          return this.claimIds(workerId, ids, now, null);
        })
        .immediate(),
    );
    if (claimed === null)
      throw new KairosError('WORKER_NOT_FOUND', `worker ${workerId} is not registered or was declared lost`);
    return claimed;
  }

  async unregisterWorker(workerId: string, now: number): Promise<void> {
    this.run('unregisterWorker', () =>
      this.sql(`UPDATE workers SET status = 'stopped', lease_expires_at = ? WHERE id = ?`).run(now, workerId),
    );
  }

  async listWorkers(namespace?: string): Promise<WorkerRecord[]> {
    return this.run('listWorkers', () =>
      (
        this.sql(
          `SELECT w.*, (SELECT count(*) FROM runs r WHERE r.worker_id = w.id AND r.status = 'running') AS running
           FROM workers w WHERE (? IS NULL OR w.namespace = ?) ORDER BY w.group_name, w.name`,
        ).all(namespace ?? null, namespace ?? null) as WorkerRow[]
      ).map(workerFromRow),
    );
  }

  async resourcesInUse(workerIds: readonly string[]): Promise<Map<string, Resources>> {
    if (workerIds.length === 0) return new Map();
    return this.run('resourcesInUse', () =>
      usedByWorker(this.sql(hot.USED_BY_WORKERS).all(JSON.stringify(workerIds)) as UsedRow[]),
    );
  }

  // Ending attempts ----------------------------------------------------------

  async recordLateReports(workerId: string, reports: readonly LateReport[], now: number): Promise<number> {
    if (reports.length === 0) return 0;
    return this.run(
      'recordLateReports',
      () =>
        this.sql(LATE_REPORTS).run({
          worker: workerId,
          now,
          reports: JSON.stringify(reports.map((r) => [r.runId, r.attempt, r.outcome, r.error])),
        }).changes,
    );
  }

  async expiredAttempts(now: number, limit: number): Promise<ExpiredAttempt[]> {
    return this.run('expiredAttempts', () => {
      const rows = this.sql(hot.EXPIRED_ATTEMPTS).all({ now, limit }) as Array<
        DecisionRow & { worker_id: string; reason: 'lost' | 'timed_out' }
      >;
      return rows.map((row) => ({ ...decisionFromRow(row), reason: row.reason, workerId: row.worker_id }));
    });
  }

  async runsForDecision(refs: readonly AttemptRef[]): Promise<DecisionInput[]> {
    return this.run('runsForDecision', () =>
      (
        this.sql(hot.DECISION_INPUTS).all(
          JSON.stringify(refs.map((ref) => [ref.runId, ref.attempt])),
        ) as DecisionRow[]
      ).map(decisionFromRow),
    );
  }

  async finishAttempts(outcomes: readonly AttemptOutcome[], now: number): Promise<boolean[]> {
    const requeued = new Set<string>();
    const applied = this.run('finishAttempts', () =>
      this.db
        .transaction(() => {
          const retry = this.sql(
            `UPDATE runs SET status = 'queued', available_at = ?, error = ?, deadline_at = NULL
             WHERE id = ? AND attempt = ? AND status = 'running' AND (? IS NULL OR worker_id = ?)
             RETURNING worker_id, started_at`,
          );
          // A lost end the reaper decided is written only if the worker's lease still ended by then:
          // a heartbeat that came after the sweep read the lease keeps the attempt running.
          const leaseLive = this.sql(
            `SELECT 1 FROM runs r JOIN workers w ON w.id = r.worker_id
             WHERE r.id = ? AND r.attempt = ? AND w.lease_expires_at > ?`,
          );
          const fenced = new Set(
            outcomes.filter(
              (o) => o.leaseEndedBy !== undefined && leaseLive.get(o.runId, o.attempt, o.leaseEndedBy),
            ),
          );
          // Ends (not retries) in one statement for the whole report: a batch of 200 is one update.
          const ends = outcomes.filter((o) => o.run.status !== 'queued' && !fenced.has(o));
          const endedRows =
            ends.length === 0
              ? []
              : (this.sql(hot.END_RUNS).all({
                  now,
                  ends: JSON.stringify(
                    ends.map((o) => [
                      o.runId,
                      o.attempt,
                      o.run.status,
                      toJson(o.result),
                      toJson(o.error),
                      o.workerId ?? null,
                    ]),
                  ),
                }) as hot.EndedRunRow[]);
          // By run and attempt: a stale report may name a run that another attempt of it ended here.
          const endedByRef = new Map(endedRows.map((row) => [`${row.id}:${row.attempt}`, row]));
          const ended: Array<{ runId: number; jobId: number; workflowInstanceId: number | null }> = [];
          const attemptEnds: hot.EndedAttempt[] = [];
          const applied = outcomes.map((o) => {
            if (fenced.has(o)) return false;
            const error = toJson(o.error);
            let ran: { worker_id: string; started_at: number } | undefined;
            if (o.run.status === 'queued') {
              const by = o.workerId ?? null;
              ran = retry.get(o.run.availableAt, error, o.runId, o.attempt, by, by) as typeof ran;
              if (!ran) return false;
              requeued.add(o.group);
            } else {
              const row = endedByRef.get(`${o.runId}:${o.attempt}`);
              if (!row) return false;
              if (row.cause === 'schedule') this.scheduleAfterDelay(row.job_id, now);
              ended.push({ runId: o.runId, jobId: row.job_id, workflowInstanceId: row.workflow_instance_id });
              ran = row;
            }
            attemptEnds.push([o.runId, o.attempt, ran.worker_id, o.attemptStatus, ran.started_at, error]);
            return true;
          });
          if (attemptEnds.length > 0) {
            this.sql(hot.END_ATTEMPTS).run(now, JSON.stringify(attemptEnds));
          }
          for (const group of afterRunsEnded((text) => this.sql(text), ended, now)) requeued.add(group);
          return applied;
        })
        .immediate(),
    );
    for (const group of requeued) this.emit({ type: 'runs', group });
    return applied;
  }

  async markLostWorkers(now: number): Promise<string[]> {
    return this.run('markLostWorkers', () =>
      (
        this.sql(
          `UPDATE workers SET status = 'lost' WHERE status IN ('active', 'draining') AND lease_expires_at <= ? RETURNING id`,
        ).all(now) as Array<{ id: string }>
      ).map((row) => row.id),
    );
  }

  async pruneWorkers(before: number, limit: number): Promise<number> {
    // Those still holding a running attempt stay (its run is found through runs_worker).
    return this.run(
      'pruneWorkers',
      () =>
        this.sql(
          `DELETE FROM workers WHERE id IN (
             SELECT w.id FROM workers w WHERE w.status IN ('stopped', 'lost') AND w.lease_expires_at < ?
               AND NOT EXISTS (SELECT 1 FROM runs r INDEXED BY runs_worker WHERE r.worker_id = w.id AND r.status = 'running')
             LIMIT ?)`,
        ).run(before, limit).changes,
    );
  }

  // Leases -------------------------------------------------------------------

  async acquireLeases(names: readonly string[], owner: string, ttlMs: number, now: number): Promise<Lease[]> {
    return this.run('acquireLeases', () =>
      this.db
        .transaction(() => {
          // A new holder gets a new epoch; the holder that renews keeps its own.
          const take = this.sql(
            `INSERT INTO leases (name, owner, epoch, expires_at) VALUES (@name, @owner, 1, @expires)
             ON CONFLICT (name) DO UPDATE SET
               epoch = CASE WHEN leases.owner = excluded.owner AND leases.expires_at > @now THEN leases.epoch ELSE leases.epoch + 1 END,
               owner = excluded.owner, expires_at = excluded.expires_at
             WHERE leases.owner = excluded.owner OR leases.expires_at <= @now
             RETURNING name, owner, epoch, expires_at`,
          );
          const out: Lease[] = [];
          for (const name of names) {
            const row = take.get({ name, owner, expires: now + ttlMs, now }) as LeaseRow | undefined;
            if (row) out.push(leaseFromRow(row));
          }
          return out;
        })
        .immediate(),
    );
  }

  async renewLeases(leases: readonly Lease[], ttlMs: number, now: number): Promise<Lease[]> {
    return this.run('renewLeases', () =>
      this.db
        .transaction(() => {
          const renew = this.sql(
            `UPDATE leases SET expires_at = ? WHERE name = ? AND owner = ? AND epoch = ? AND expires_at > ?
             RETURNING name, owner, epoch, expires_at`,
          );
          const out: Lease[] = [];
          for (const lease of leases) {
            const row = renew.get(now + ttlMs, lease.name, lease.owner, lease.epoch, now) as
              | LeaseRow
              | undefined;
            if (row) out.push(leaseFromRow(row));
          }
          return out;
        })
        .immediate(),
    );
  }

  async releaseLeases(leases: readonly Lease[]): Promise<void> {
    this.run('releaseLeases', () =>
      this.db
        .transaction(() => {
          // Expire rather than delete: the next holder's epoch still grows past ours.
          const release = this.sql(
            'UPDATE leases SET expires_at = 0 WHERE name = ? AND owner = ? AND epoch = ?',
          );
          for (const lease of leases) release.run(lease.name, lease.owner, lease.epoch);
        })
        .immediate(),
    );
    this.emit({ type: 'leases' });
  }

  // Cluster membership -------------------------------------------------------

  async databaseTime(): Promise<number> {
    return Date.now();
  }

  async schemaVersion(): Promise<number> {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  async heartbeatNode(node: NodeHeartbeat, ttlMs: number, now: number): Promise<NodeHeartbeatAnswer> {
    return this.run('heartbeatNode', () =>
      this.db
        .transaction((): NodeHeartbeatAnswer => {
          this.sql('DELETE FROM nodes WHERE expires_at < ? AND id <> ?').run(
            now - GONE_NODE_KEPT_LEASES * ttlMs,
            node.instance,
          );
          this.sql(
            `INSERT INTO nodes (id, name, address, version, started_at, heartbeat_at, expires_at, partitions, clock_skew_ms)
             VALUES (@instance, @id, @address, @version, @startedAt, @now, @expires, @partitions, @skew)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, address = excluded.address, version = excluded.version,
               heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at, partitions = excluded.partitions,
               clock_skew_ms = excluded.clock_skew_ms`,
          ).run({
            instance: node.instance,
            id: node.id,
            address: node.address,
            version: node.version,
            startedAt: node.startedAt,
            now,
            expires: now + ttlMs,
            partitions: JSON.stringify(node.partitions),
            skew: node.clockSkewMs,
          });
          return this.sql(
            `SELECT count(*) AS alive, coalesce(sum(name = @id AND id <> @instance), 0) AS namesakes
             FROM nodes WHERE expires_at > @now`,
          ).get({ id: node.id, instance: node.instance, now }) as NodeHeartbeatAnswer;
        })
        .immediate(),
    );
  }

  async removeNode(instance: string): Promise<void> {
    this.run('removeNode', () => this.sql('DELETE FROM nodes WHERE id = ?').run(instance));
    this.emit({ type: 'leases' });
  }

  async listNodes(): Promise<NodeRecord[]> {
    return this.run('listNodes', () =>
      (this.sql(`SELECT * FROM nodes ORDER BY coalesce(nullif(name, ''), id), id`).all() as NodeRow[]).map(
        nodeFromRow,
      ),
    );
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.events.on('event', listener);
    return () => this.events.off('event', listener);
  }

  // Schedules ----------------------------------------------------------------

  async listSkipped(
    jobId: number,
    query: { before?: number | undefined; limit: number },
  ): Promise<SkippedRecord[]> {
    return this.run('listSkipped', () =>
      (
        this.sql(
          `SELECT s.*, j.name AS job_name FROM skipped_fires s JOIN jobs j ON j.id = s.job_id
           WHERE s.job_id = @job AND (@before IS NULL OR s.id < @before) ORDER BY s.id DESC LIMIT @limit`,
        ).all({ job: jobId, before: query.before ?? null, limit: query.limit }) as SkippedRow[]
      ).map(skippedFromRow),
    );
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
    const resumed = this.run('resumeJob', () =>
      this.db
        .transaction(() => {
          const row = this.sql(`${UPDATE_JOB} AND paused = 1 RETURNING *`).get(
            ...updateValues(id, job, nextFireAt, now, expected),
          ) as JobRow | undefined;
          if (row && quota) quotas.checkJobQuota((text) => this.sql(text), row.namespace, id, quota);
          if (row) checkDependencyCycle((text) => this.sql(text), row.namespace, job);
          if (row && skipped) recordSkipped((text) => this.sql(text), id, [skipped], now);
          // The workflow step runs held while the job was paused become available with the resume.
          const released = row
            ? (this.sql(
                `UPDATE runs SET available_at = ? WHERE job_id = ? AND status = 'queued' AND available_at = ?
                 RETURNING group_name`,
              ).all(now, id, HELD_WHILE_PAUSED_AT) as Array<{ group_name: string }>)
            : [];
          return row ? { row, groups: released.map((r) => r.group_name) } : undefined;
        })
        .immediate(),
    );
    const row = resumed?.row;
    if (row) this.emit({ type: 'jobs' });
    for (const group of new Set(resumed?.groups ?? [])) this.emit({ type: 'runs', group });
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
    const { created, existing, group } = this.run('backfillRuns', () =>
      this.db
        .transaction(() => {
          if (!this.sql('SELECT 1 FROM jobs WHERE id = ?').get(jobId)) {
            throw new KairosError('JOB_NOT_FOUND', `job ${jobId} does not exist`);
          }
          const out = backfill((text) => this.sql(text), jobId, fireTimes, overlap, now, traceContext);
          if (maxQueuedRuns != null)
            quotas.checkQueuedRunsAfter((text) => this.sql(text), jobId, maxQueuedRuns, out.created.length);
          return out;
        })
        .immediate(),
    );
    if (group) this.emit({ type: 'runs', group });
    return { created, existing };
  }

  async putCalendar(
    calendar: CalendarDefinition,
    now: number,
    namespace = DEFAULT_NAMESPACE,
  ): Promise<{ calendar: CalendarRecord; created: boolean }> {
    return this.run('putCalendar', () =>
      this.db
        .transaction(() => {
          const existed = this.sql('SELECT 1 FROM calendars WHERE name = ?').get(calendar.name) !== undefined;
          // A calendar of that name in another namespace is left alone: the upsert updates nothing.
          const row = this.sql(
            `INSERT INTO calendars (name, definition, created_at, updated_at, namespace) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at
               WHERE calendars.namespace = excluded.namespace
             RETURNING *`,
          ).get(calendar.name, JSON.stringify(calendar), now, now, namespace) as CalendarRow | undefined;
          if (!row) throw nameTakenElsewhere('calendar', calendar.name);
          return { calendar: calendarFromRow(row), created: !existed };
        })
        .immediate(),
    );
  }

  async getCalendars(names: readonly string[]): Promise<CalendarRecord[]> {
    if (names.length === 0) return [];
    return this.run('getCalendars', () =>
      (
        this.sql('SELECT * FROM calendars WHERE name IN (SELECT value FROM json_each(?)) ORDER BY name').all(
          JSON.stringify(names),
        ) as CalendarRow[]
      ).map(calendarFromRow),
    );
  }

  async listCalendars(namespace?: string): Promise<CalendarRecord[]> {
    return this.run('listCalendars', () =>
      (
        this.sql('SELECT * FROM calendars WHERE (? IS NULL OR namespace = ?) ORDER BY name').all(
          namespace ?? null,
          namespace ?? null,
        ) as CalendarRow[]
      ).map(calendarFromRow),
    );
  }

  async deleteCalendar(name: string): Promise<boolean> {
    return this.run('deleteCalendar', () =>
      this.db
        .transaction(() => {
          const user = this.sql(
            `SELECT name FROM jobs WHERE EXISTS (SELECT 1 FROM json_each(jobs.schedule, '$.calendars') WHERE value = ?)
             ORDER BY name LIMIT 1`,
          ).get(name) as { name: string } | undefined;
          if (user) {
            throw new KairosError(
              'CALENDAR_IN_USE',
              `calendar ${JSON.stringify(name)} is used by job ${JSON.stringify(user.name)}`,
              {
                job: user.name,
              },
            );
          }
          return this.sql('DELETE FROM calendars WHERE name = ?').run(name).changes > 0;
        })
        .immediate(),
    );
  }

  // Helpers ------------------------------------------------------------------

  private endRun(id: number, status: string, now: number, result: string | null, error: string | null): void {
    const row = this.sql(
      `UPDATE runs SET status = ?, finished_at = ?, result = ?, error = ?, deadline_at = NULL
       WHERE id = ? RETURNING job_id, cause, workflow_instance_id`,
    ).get(status, now, result, error, id) as {
      job_id: number;
      cause: string;
      workflow_instance_id: number | null;
    };
    if (row.cause === 'schedule') this.scheduleAfterDelay(row.job_id, now);
    const ended = [{ runId: id, jobId: row.job_id, workflowInstanceId: row.workflow_instance_id }];
    for (const group of afterRunsEnded((text) => this.sql(text), ended, now))
      this.emit({ type: 'runs', group });
  }

  /** A fixed-delay job waits for its scheduled run to end, then fires `delay` later. */
  private scheduleAfterDelay(jobId: number, now: number): void {
    const changed = this.sql(
      `UPDATE jobs SET next_fire_at = ? + delay_ms WHERE id = ? AND delay_ms IS NOT NULL AND next_fire_at IS NULL AND paused = 0`,
    ).run(now, jobId).changes;
    if (changed) this.emit({ type: 'jobs' });
  }

  private getRunSync(id: number): RunRecord {
    return runFromRow(
      this.sql(`SELECT ${RUN_COLUMNS} FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.id = ?`).get(
        id,
      ) as RunRow,
    );
  }

  private sql(text: string): Statement {
    let statement = this.statements.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  /**
   * Runs one operation. Transient driver errors (busy, I/O, disk full) become STORE_UNAVAILABLE;
   * any other driver error is a bug and keeps its cause under the operation's name.
   */
  private run<T>(operation: string, body: () => T): T {
    try {
      return body();
    } catch (error) {
      if (error instanceof KairosError || error instanceof LeaseLostError) throw error;
      if (
        error instanceof Database.SqliteError &&
        /^SQLITE_(BUSY|IOERR|FULL|CANTOPEN|LOCKED)/.test(error.code)
      ) {
        throw new StoreUnavailableError(operation, error);
      }
      throw new Error(`sqlite ${operation}: ${(error as Error).message}`, { cause: error });
    }
  }

  private emit(event: StoreEvent): void {
    this.events.emit('event', event);
  }

  // Access -------------------------------------------------------------------

  async createUser(user: NewUser, now: number, audit?: AuditEntry): Promise<UserRecord> {
    return this.run('createUser', () =>
      this.db
        .transaction(() => {
          try {
            const row = this.sql(
              `INSERT INTO users (name, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING *`,
            ).get(user.name, user.role, user.passwordHash, now, now) as UserRow;
            this.audit(audit);
            return userFromRow(row);
          } catch (error) {
            if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
              throw new KairosError('USER_NAME_TAKEN', `a user named ${JSON.stringify(user.name)} exists`);
            }
            throw error;
          }
        })
        .immediate(),
    );
  }

  async getUser(name: string): Promise<UserRecord | null> {
    return this.run('getUser', () => {
      const row = this.sql('SELECT * FROM users WHERE name = ?').get(name) as UserRow | undefined;
      return row ? userFromRow(row) : null;
    });
  }

  async listUsers(): Promise<UserRecord[]> {
    return this.run('listUsers', () =>
      (this.sql('SELECT * FROM users ORDER BY name').all() as UserRow[]).map(userFromRow),
    );
  }

  async updateUser(
    name: string,
    patch: UserPatch,
    now: number,
    audit?: AuditEntry,
  ): Promise<UserRecord | null> {
    return this.run('updateUser', () =>
      this.db
        .transaction(() => {
          const before = this.sql('SELECT role FROM users WHERE name = ?').get(name) as
            | { role: string }
            | undefined;
          if (!before) return null;
          const row = this.sql(
            `UPDATE users SET role = coalesce(?, role), password_hash = coalesce(?, password_hash), updated_at = ?
             WHERE name = ? RETURNING *`,
          ).get(patch.role ?? null, patch.passwordHash ?? null, now, name) as UserRow;
          this.checkAdminsLeft(before.role === 'admin' && row.role !== 'admin');
          if (patch.passwordHash !== undefined)
            this.sql('DELETE FROM sessions WHERE user_id = ?').run(row.id);
          this.audit(audit);
          return userFromRow(row);
        })
        .immediate(),
    );
  }

  async upsertExternalUser(user: ExternalUser, now: number, audit?: AuditEntry): Promise<UserRecord> {
    return this.run('upsertExternalUser', () =>
      this.db
        .transaction(() => {
          try {
            const before = this.sql('SELECT role FROM users WHERE issuer = ? AND subject = ?').get(
              user.issuer,
              user.subject,
            ) as { role: string } | undefined;
            // Found by (issuer, subject), never by name: a name held by another user violates users.name's UNIQUE.
            const row = this.sql(
              `INSERT INTO users (name, role, password_hash, issuer, subject, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (issuer, subject) DO UPDATE SET name = excluded.name, role = excluded.role, updated_at = excluded.updated_at
               RETURNING *`,
            ).get(
              user.name,
              user.role,
              EXTERNAL_PASSWORD_HASH,
              user.issuer,
              user.subject,
              now,
              now,
            ) as UserRow;
            this.checkAdminsLeft(before?.role === 'admin' && user.role !== 'admin');
            this.audit(audit);
            return userFromRow(row);
          } catch (error) {
            if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
              throw new KairosError('USER_NAME_TAKEN', `a user named ${JSON.stringify(user.name)} exists`);
            }
            throw error;
          }
        })
        .immediate(),
    );
  }

  async deleteUser(name: string, audit?: AuditEntry): Promise<boolean> {
    return this.run('deleteUser', () =>
      this.db
        .transaction(() => {
          const row = this.sql('DELETE FROM users WHERE name = ? RETURNING role').get(name) as
            | { role: string }
            | undefined;
          if (!row) return false;
          this.checkAdminsLeft(row.role === 'admin');
          this.audit(audit);
          return true;
        })
        .immediate(),
    );
  }

  async createSession(session: NewSession, now: number): Promise<void> {
    this.run('createSession', () =>
      this.db
        .transaction(() => {
          this.sql('DELETE FROM sessions WHERE expires_at <= ?').run(now);
          this.sql(
            'INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)',
          ).run(session.idHash, session.userId, session.csrfToken, now, session.expiresAt);
        })
        .immediate(),
    );
  }

  async getSession(idHash: string, now: number): Promise<SessionRecord | null> {
    return this.run('getSession', () => {
      const row = this.sql(
        `SELECT s.id_hash, s.user_id, s.csrf_token, s.created_at AS s_created_at, s.expires_at,
           u.id, u.name, u.role, u.password_hash, u.issuer, u.subject, u.created_at, u.updated_at
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ? AND s.expires_at > ?`,
      ).get(idHash, now) as (SessionRow & UserRow & { s_created_at: number }) | undefined;
      return row ? sessionFromRow({ ...row, created_at: row.s_created_at }, row) : null;
    });
  }

  async deleteSession(idHash: string): Promise<void> {
    this.run('deleteSession', () => this.sql('DELETE FROM sessions WHERE id_hash = ?').run(idHash));
  }

  async createOidcLogin(login: NewOidcLogin, now: number): Promise<void> {
    this.run('createOidcLogin', () =>
      this.db
        .transaction(() => {
          this.sql('DELETE FROM oidc_logins WHERE expires_at <= ?').run(now);
          this.sql(
            'INSERT INTO oidc_logins (id_hash, state, nonce, code_verifier, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
          ).run(login.idHash, login.state, login.nonce, login.codeVerifier, now, login.expiresAt);
        })
        .immediate(),
    );
  }

  async takeOidcLogin(idHash: string, now: number): Promise<OidcLoginRecord | null> {
    return this.run('takeOidcLogin', () => {
      // Deleted whether or not it expired: a login is checked once at most.
      const row = this.sql('DELETE FROM oidc_logins WHERE id_hash = ? RETURNING *').get(idHash) as
        | OidcLoginRow
        | undefined;
      return row && row.expires_at > now ? oidcLoginFromRow(row) : null;
    });
  }

  async createApiToken(token: NewApiToken, now: number, audit?: AuditEntry): Promise<ApiTokenRecord> {
    return this.run('createApiToken', () =>
      this.db
        .transaction(() => {
          const namespace = token.namespace ?? DEFAULT_NAMESPACE;
          if (
            this.sql('SELECT 1 FROM api_tokens WHERE name = ? AND namespace = ?').get(token.name, namespace)
          )
            throw tokenNameTaken(token.name);
          const row = this.sql(
            `INSERT INTO api_tokens (name, token_hash, role, groups, created_by, created_at, namespace)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *`,
          ).get(
            token.name,
            token.tokenHash,
            token.role,
            token.groups === null ? null : JSON.stringify(token.groups),
            token.createdBy,
            now,
            token.namespace ?? DEFAULT_NAMESPACE,
          ) as ApiTokenRow;
          this.audit(audit);
          return apiTokenFromRow(row);
        })
        .immediate(),
    );
  }

  async findApiToken(tokenHash: string): Promise<ApiTokenRecord | null> {
    return this.run('findApiToken', () => {
      const row = this.sql('SELECT * FROM api_tokens WHERE token_hash = ?').get(tokenHash) as
        | ApiTokenRow
        | undefined;
      return row ? apiTokenFromRow(row) : null;
    });
  }

  async listApiTokens(namespace?: string): Promise<ApiTokenRecord[]> {
    return this.run('listApiTokens', () =>
      (
        this.sql('SELECT * FROM api_tokens WHERE (? IS NULL OR namespace = ?) ORDER BY id DESC').all(
          namespace ?? null,
          namespace ?? null,
        ) as ApiTokenRow[]
      ).map(apiTokenFromRow),
    );
  }

  async deleteApiToken(id: number, audit?: AuditEntry): Promise<boolean> {
    return this.run('deleteApiToken', () =>
      this.db
        .transaction(() => {
          if (this.sql('DELETE FROM api_tokens WHERE id = ?').run(id).changes === 0) return false;
          this.audit(audit);
          return true;
        })
        .immediate(),
    );
  }

  async appendAudit(entry: AuditEntry): Promise<void> {
    this.run('appendAudit', () => this.audit(entry));
  }

  async listAudit(filter: {
    namespaces?: readonly string[] | undefined;
    before?: number | undefined;
    limit: number;
  }): Promise<AuditRecord[]> {
    // Written only when given, so that a namespace's page walks audit_log_namespace.
    const inNamespace =
      filter.namespaces === undefined ? '' : ' AND namespace IN (SELECT value FROM json_each(@namespaces))';
    return this.run('listAudit', () =>
      (
        this.sql(
          `SELECT * FROM audit_log WHERE (@before IS NULL OR id < @before)${inNamespace} ORDER BY id DESC LIMIT @limit`,
        ).all({
          before: filter.before ?? null,
          limit: filter.limit,
          ...(filter.namespaces === undefined ? {} : { namespaces: JSON.stringify(filter.namespaces) }),
        }) as AuditRow[]
      ).map(auditFromRow),
    );
  }

  async workerIdentity(workerId: string): Promise<WorkerIdentity | null> {
    return this.run('workerIdentity', () => {
      const row = this.sql('SELECT namespace, group_name, registered_by FROM workers WHERE id = ?').get(
        workerId,
      ) as { namespace: string; group_name: string; registered_by: string } | undefined;
      return row
        ? { namespace: row.namespace, group: row.group_name, registeredBy: row.registered_by }
        : null;
    });
  }

  async overviewCounts(since: number, now: number, namespace?: string): Promise<OverviewCounts> {
    // Left alone, SQLite would group every ended run by status; the range on runs_finished reads
    // only the last hour's runs. The namespace filters the rows each range finds.
    return this.run('overviewCounts', () =>
      overviewFromRows(
        this.sql(
          `SELECT 'running' AS kind, count(*) AS n FROM runs
             WHERE status = 'running' AND (@namespace IS NULL OR namespace = @namespace)
           UNION ALL SELECT 'queued', count(*) FROM runs
             WHERE status = 'queued' AND (@namespace IS NULL OR namespace = @namespace)
           UNION ALL SELECT 'ended:' || status, count(*) FROM runs INDEXED BY runs_finished
             WHERE finished_at >= @since AND (@namespace IS NULL OR namespace = @namespace) GROUP BY status
           UNION ALL SELECT 'workers', count(*) FROM workers
             WHERE status IN ('active', 'draining') AND lease_expires_at > @now
               AND (@namespace IS NULL OR namespace = @namespace)
           UNION ALL SELECT 'nodes', count(*) FROM nodes WHERE expires_at > @now`,
        ).all({ since, now, namespace: namespace ?? null }) as Array<{ kind: string; n: number }>,
      ),
    );
  }

  async countQueuedRuns(namespace: string, upTo: number): Promise<number> {
    return this.run('countQueuedRuns', () =>
      quotas.countQueuedRuns((text) => this.sql(text), namespace, upTo),
    );
  }

  async queuedRunCounts(now: number, limit: number): Promise<QueuedRunCount[]> {
    // The count is an ordered pass over runs_queued_by_job (group, job, handler, available_at), which
    // holds every column it reads; live workers are few and read once. Runs with a request of their
    // own (workflow steps) are counted by request from runs_queued_requests, which holds only them.
    return this.run('queuedRunCounts', () =>
      (
        this.sql(
          `WITH queued AS (
             SELECT group_name, job_id, handler, count(*) AS queued,
               min(CASE WHEN available_at <= @now THEN available_at END) AS oldest
             FROM runs INDEXED BY runs_queued_by_job WHERE status = 'queued'
             GROUP BY group_name, job_id, handler
             ORDER BY count(*) DESC, group_name, job_id, handler LIMIT @limit),
           live AS (SELECT namespace, group_name, handlers FROM workers
             WHERE status = 'active' AND lease_expires_at > @now)
           SELECT j.namespace, q.group_name, j.name AS job_name, q.handler, q.queued, q.oldest,
             j.dispatch -> '$.resources' AS resources,
             (SELECT json_group_array(json_object('resources', json(o.resources), 'queued', o.n))
               FROM (SELECT r.resources, count(*) AS n FROM runs r INDEXED BY runs_queued_requests
                 WHERE r.status = 'queued' AND r.resources IS NOT NULL AND r.group_name = q.group_name
                   AND r.job_id = q.job_id AND r.handler = q.handler
                 GROUP BY r.resources) o) AS own_requests,
             EXISTS (SELECT 1 FROM live l WHERE l.namespace = j.namespace AND l.group_name = q.group_name)
               AS group_served,
             EXISTS (SELECT 1 FROM live l, json_each(l.handlers) h
               WHERE l.namespace = j.namespace AND l.group_name = q.group_name AND h.value = q.handler)
               AS handler_served
           FROM queued q JOIN jobs j ON j.id = q.job_id
           ORDER BY j.namespace, q.group_name, j.name, q.handler`,
        ).all({ now, limit }) as QueuedRunCountRow[]
      ).map(queuedRunCountFromRow),
    );
  }

  async runsPerMinute(since: number, namespace?: string): Promise<MinuteCount[]> {
    return this.run(
      'runsPerMinute',
      () =>
        this.sql(
          `SELECT (finished_at / 60000) * 60000 AS minute, status, count(*) AS count
         FROM runs WHERE finished_at >= ? AND (? IS NULL OR namespace = ?) GROUP BY 1, 2 ORDER BY 1, 2`,
        ).all(since, namespace ?? null, namespace ?? null) as MinuteCount[],
    );
  }

  async fireLateness(since: number, now: number, limit: number): Promise<FireLateness> {
    return this.run('fireLateness', () => {
      const rows = this.sql(FIRST_STARTS).all({ since, now, limit }) as Array<{ late: number }>;
      return latenessFromSample(
        rows.map((r) => r.late),
        limit,
      );
    });
  }

  private audit(entry: AuditEntry | undefined): void {
    if (!entry) return;
    this.sql(
      'INSERT INTO audit_log (at, actor, action, target, details, namespace) VALUES (?, ?, ?, ?, ?, ?)',
    ).run(
      entry.at,
      entry.actor,
      entry.action,
      entry.target,
      JSON.stringify(entry.details),
      entry.namespace ?? DEFAULT_NAMESPACE,
    );
  }

  /** Throws LAST_ADMIN (rolling the transaction back) when an admin was removed and none is left. */
  private checkAdminsLeft(removedAnAdmin: boolean): void {
    if (!removedAnAdmin) return;
    const left = this.sql(`SELECT count(*) AS n FROM users WHERE role = 'admin'`).get() as { n: number };
    if (left.n === 0) throw new KairosError('LAST_ADMIN', 'the last admin user cannot be removed or demoted');
  }

  // Workers at scale ----

  async dispatchRuns(
    workerId: string,
    max: number,
    now: number,
    random: number,
    claimSeq: number | null = null,
  ): Promise<ClaimedRun[]> {
    const out = this.run('dispatchRuns', () =>
      this.db
        .transaction(() => {
          const worker = this.sql(
            'SELECT namespace, group_name, handlers, status FROM workers WHERE id = ?',
          ).get(workerId) as
            | { namespace: string; group_name: string; handlers: string; status: string }
            | undefined;
          if (!worker || (worker.status !== 'active' && worker.status !== 'draining')) return null;
          if (worker.status === 'draining') return { claimed: [], wake: false };
          const group = worker.group_name;
          // The group's limits in the worker's namespace: they count and cap only that namespace's runs.
          const groupLimits = {
            namespace: worker.namespace,
            name: group,
            ...groupLimitsFromRow(
              this.sql(
                `SELECT max_concurrency, rate_limit, rate_per_ms FROM namespace_group_limits
                 WHERE namespace = ? AND group_name = ? AND (max_concurrency IS NOT NULL OR rate_limit IS NOT NULL)`,
              ).get(worker.namespace, group) as GroupLimitRow | undefined,
            ),
          };
          const limited = groupLimits.maxConcurrency !== null || groupLimits.rateLimit !== null;
          if (!limited) {
            // The common case first: when the first `max` ready runs all belong to plain jobs (no
            // routing, selector or limit), claim them without reading their policies, params or tasks.
            const picked = this.sql(hot.PICK_PLAIN).all({
              namespace: worker.namespace,
              group,
              now,
              handlers: worker.handlers,
              worker: workerId,
              max,
            }) as Array<{
              id: number;
              plain: number;
            }>;
            if (picked.length === 0) return { claimed: [], wake: false };
            if (picked.every((p) => p.plain === 1)) {
              return {
                claimed: this.claimIds(
                  workerId,
                  picked.map((p) => p.id),
                  now,
                  claimSeq,
                ),
                wake: false,
              };
            }
          }
          const read = (window: number) =>
            (
              this.sql(
                `SELECT r.id, r.job_id, j.name AS job_name, r.handler, r.params, r.target_worker_id, j.dispatch,
                 coalesce(r.task, j.task) AS task, r.resources, r.available_at, r.priority
               FROM runs r INDEXED BY runs_claim JOIN jobs j ON j.id = r.job_id
               WHERE ${hot.READY_FOR_WORKER}
               ORDER BY r.priority DESC, r.available_at, r.id LIMIT @window`,
              ).all({
                namespace: worker.namespace,
                group,
                now,
                handlers: worker.handlers,
                worker: workerId,
                window,
              }) as CandidateRow[]
            ).map(candidateFromRow);
          // Routing, selectors or limits in play: read a window wider than `max` (runs that routing or
          // limits pass over must not hide the ones behind them) and plan with the fleet's state.
          const candidates = read(dispatchWindow(max));
          if (candidates.length === 0) return { claimed: [], wake: false };
          const jobs = JSON.stringify(lockedJobs(candidates));
          const live = (
            this.sql(
              `SELECT w.id, w.name, w.handlers, w.labels, w.capacity, w.resources, w.load,
                 (SELECT count(*) FROM runs r WHERE r.worker_id = w.id AND r.status = 'running')
                 + (SELECT count(*) FROM runs r WHERE r.target_worker_id = w.id AND r.status = 'queued') AS running
               FROM workers w WHERE w.group_name = ? AND w.namespace = ? AND w.status = 'active'
                 AND w.lease_expires_at > ?`,
            ).all(group, worker.namespace, now) as SnapshotRow[]
          ).map(snapshotFromRow);
          // Requests held by the live workers: read only when a candidate requests resources (the
          // one writer makes it exact; runs without a request never pay for it).
          if (requestsResources(candidates))
            addUsed(
              live,
              this.sql(hot.USED_BY_WORKERS).all(JSON.stringify(live.map((w) => w.id))) as UsedRow[],
            );
          const loadOfJob = new Map<string, number>();
          for (const row of this.sql(
            `SELECT worker_id AS w, job_id, count(*) AS n FROM runs
             WHERE status = 'running' AND job_id IN (SELECT value FROM json_each(@jobs)) GROUP BY 1, 2
             UNION ALL
             SELECT target_worker_id, job_id, count(*) FROM runs
             WHERE status = 'queued' AND target_worker_id IS NOT NULL AND job_id IN (SELECT value FROM json_each(@jobs))
             GROUP BY 1, 2`,
          ).all({ jobs }) as Array<{ w: string; job_id: number; n: number }>) {
            const key = `${row.w}:${row.job_id}`;
            loadOfJob.set(key, (loadOfJob.get(key) ?? 0) + row.n);
          }
          const runningOfJob = new Map<number, number>();
          for (const row of this.sql(
            `SELECT job_id, count(*) AS n FROM runs
             WHERE status = 'running' AND job_id IN (SELECT value FROM json_each(?)) GROUP BY job_id`,
          ).all(jobs) as Array<{ job_id: number; n: number }>)
            runningOfJob.set(row.job_id, row.n);
          const states = new Map<number, RoutingState>();
          for (const row of this.sql(
            'SELECT job_id, state FROM job_routing WHERE job_id IN (SELECT value FROM json_each(?))',
          ).all(jobs) as Array<{ job_id: number; state: string }>)
            states.set(row.job_id, JSON.parse(row.state));
          const buckets = new Map<string, Bucket>();
          for (const row of this.sql(
            'SELECT scope, tokens, updated_at FROM rate_buckets WHERE scope IN (SELECT value FROM json_each(?))',
          ).all(JSON.stringify(bucketScopes(candidates, groupLimits))) as BucketRow[])
            buckets.set(row.scope, { tokens: row.tokens, updatedAt: row.updated_at });
          const groupRunning =
            groupLimits.maxConcurrency === null
              ? 0
              : (
                  this.sql(
                    `SELECT count(*) AS n FROM runs WHERE status = 'running' AND namespace = ? AND group_name = ?`,
                  ).get(worker.namespace, group) as { n: number }
                ).n;
          const plan = planDispatch({
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
          });
          const assign = this.sql('UPDATE runs SET target_worker_id = ? WHERE id = ?');
          for (const a of plan.assign) assign.run(a.workerId, a.runId);
          const saveState = this.sql(
            `INSERT INTO job_routing (job_id, state) VALUES (?, ?)
             ON CONFLICT (job_id) DO UPDATE SET state = excluded.state`,
          );
          for (const [jobId, state] of plan.states) saveState.run(jobId, JSON.stringify(state));
          const saveBucket = this.sql(
            `INSERT INTO rate_buckets (scope, tokens, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (scope) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at`,
          );
          for (const [scope, b] of plan.buckets) saveBucket.run(scope, b.tokens, b.updatedAt);
          const claimed = this.claimIds(workerId, plan.claim, now, claimSeq, candidates);
          return { claimed, wake: plan.assign.some((a) => a.workerId !== null && a.workerId !== workerId) };
        })
        .immediate(),
    );
    if (out === null)
      throw new KairosError('WORKER_NOT_FOUND', `worker ${workerId} is not registered or was declared lost`);
    // Runs were assigned to other workers: wake their polls.
    if (out.wake) {
      const group = (
        this.sql('SELECT group_name FROM workers WHERE id = ?').get(workerId) as {
          group_name: string;
        }
      ).group_name;
      this.emit({ type: 'runs', group });
    }
    return out.claimed;
  }

  /**
   * Claims the queued runs `ids` for a worker in two statements (not two per run: a poll of 200 runs
   * is one claim), answered in the order of `ids`. Job names and tasks come from `candidates` when
   * the caller has read them, else from one read of the claimed runs' jobs; a run's own task (a
   * workflow task step's, `runs.task`) comes with the claim and goes before its job's.
   */
  private claimIds(
    workerId: string,
    ids: readonly number[],
    now: number,
    claimSeq: number | null,
    candidates?: readonly DispatchCandidate[],
  ): ClaimedRun[] {
    const rows = this.sql(hot.CLAIM_IDS).all({
      worker: workerId,
      now,
      seq: claimSeq,
      ids: JSON.stringify(ids),
    }) as Array<ClaimRow & { job_id: number; available_at: number; started_at: number }>;
    if (rows.length === 0) return [];
    const jobs = new Map<number, Pick<DispatchCandidate, 'jobName' | 'task'>>();
    if (candidates) {
      for (const c of candidates) jobs.set(c.jobId, c);
    } else {
      const jobIds = JSON.stringify([...new Set(rows.map((row) => row.job_id))]);
      for (const job of this.sql(
        'SELECT id, name, task FROM jobs WHERE id IN (SELECT value FROM json_each(?))',
      ).all(jobIds) as Array<{ id: number; name: string; task: string | null }>) {
        jobs.set(job.id, { jobName: job.name, task: job.task === null ? null : JSON.parse(job.task) });
      }
    }
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.flatMap((id): ClaimedRun[] => {
      const row = byId.get(id);
      if (!row) return [];
      const claimed = claimedFromRow(row, jobs.get(row.job_id)!);
      return [row.available_at > now ? { ...claimed, startAt: row.available_at } : claimed];
    });
  }

  async drainWorker(workerId: string, _now: number): Promise<WorkerRecord | null> {
    // Runs assigned to it are routed again by the next claim of another worker.
    return this.setWorkerStatus('drainWorker', workerId, 'draining', 'drain');
  }

  async resumeWorker(workerId: string, _now: number): Promise<WorkerRecord | null> {
    // Its long polls, and those of its group, claim again.
    return this.setWorkerStatus('resumeWorker', workerId, 'active', 'resume');
  }

  /** Drains or resumes a worker that is active or draining; its group's waiters hear of it. */
  private async setWorkerStatus(
    operation: string,
    workerId: string,
    status: 'active' | 'draining',
    verb: string,
  ): Promise<WorkerRecord | null> {
    const found = this.run(operation, () =>
      this.db
        .transaction(() => {
          const worker = this.sql('SELECT status, group_name FROM workers WHERE id = ?').get(workerId) as
            | { status: string; group_name: string }
            | undefined;
          if (!worker) return null;
          if (worker.status !== 'active' && worker.status !== 'draining') {
            throw new KairosError(
              'WORKER_NOT_ACTIVE',
              `worker ${workerId} is ${worker.status}: nothing to ${verb}`,
            );
          }
          this.sql('UPDATE workers SET status = ? WHERE id = ?').run(status, workerId);
          return worker.group_name;
        })
        .immediate(),
    );
    if (found === null) return null;
    this.emit({ type: 'runs', group: found });
    return (await this.listWorkers()).find((w) => w.id === workerId) ?? null;
  }

  async expireQueuedRuns(now: number, limit: number): Promise<number[]> {
    return this.run('expireQueuedRuns', () =>
      this.db
        .transaction(() => {
          const rows = this.sql(
            `SELECT r.id, j.schedule_to_start_ms AS ms FROM jobs j
             JOIN runs r ON r.job_id = j.id AND r.status = 'queued'
             WHERE j.schedule_to_start_ms IS NOT NULL AND r.available_at + j.schedule_to_start_ms <= ?
             ORDER BY r.id LIMIT ?`,
          ).all(now, limit) as Array<{ id: number; ms: number }>;
          for (const row of rows) {
            const error = JSON.stringify(scheduleToStartError(row.ms));
            this.sql(`UPDATE runs SET target_worker_id = NULL WHERE id = ?`).run(row.id);
            this.endRun(row.id, 'failed', now, null, error);
          }
          return rows.map((row) => row.id);
        })
        .immediate(),
    );
  }

  async setGroupLimit(
    group: string,
    limits: GroupLimits,
    now: number,
    namespace: string = DEFAULT_NAMESPACE,
  ): Promise<void> {
    const values = {
      namespace,
      group,
      maxConcurrency: limits.maxConcurrency,
      rateLimit: limits.rateLimit?.limit ?? null,
      ratePerMs: limits.rateLimit?.perMs ?? null,
      now,
    };
    this.run('setGroupLimit', () =>
      this.db
        .transaction(() => {
          this.sql(
            `INSERT INTO namespace_group_limits (namespace, group_name, max_concurrency, rate_limit, rate_per_ms, updated_at)
             VALUES (@namespace, @group, @maxConcurrency, @rateLimit, @ratePerMs, @now)
             ON CONFLICT (namespace, group_name) DO UPDATE SET max_concurrency = excluded.max_concurrency,
               rate_limit = excluded.rate_limit, rate_per_ms = excluded.rate_per_ms, updated_at = excluded.updated_at`,
          ).run(values);
          // Nodes of the previous release read `default`'s limits here, by group name alone (the
          // migration group_limits_per_namespace); no other namespace's.
          if (namespace === DEFAULT_NAMESPACE)
            this.sql(
              `INSERT INTO group_limits (group_name, max_concurrency, rate_limit, rate_per_ms, updated_at)
               VALUES (@group, @maxConcurrency, @rateLimit, @ratePerMs, @now)
               ON CONFLICT (group_name) DO UPDATE SET max_concurrency = excluded.max_concurrency,
                 rate_limit = excluded.rate_limit, rate_per_ms = excluded.rate_per_ms, updated_at = excluded.updated_at`,
            ).run(values);
        })
        .immediate(),
    );
    this.emit({ type: 'runs', group });
  }

  async listGroupLimits(namespace?: string): Promise<GroupLimit[]> {
    return this.run('listGroupLimits', () =>
      (
        this.sql(
          `SELECT namespace, group_name, max_concurrency, rate_limit, rate_per_ms, updated_at FROM namespace_group_limits
           WHERE @namespace IS NULL OR namespace = @namespace ORDER BY namespace, group_name`,
        ).all({ namespace: namespace ?? null }) as NamespaceGroupLimitRow[]
      ).map(groupLimitFromRow),
    );
  }

  async routingState(jobId: number): Promise<RoutingState | null> {
    return this.run('routingState', () => {
      const row = this.sql('SELECT state FROM job_routing WHERE job_id = ?').get(jobId) as
        | { state: string }
        | undefined;
      return row ? (JSON.parse(row.state) as RoutingState) : null;
    });
  }

  async appendRunLogs(workerId: string, batch: RunLogBatch, maxLines: number, now: number): Promise<number> {
    const touched = new Set<number>();
    const stored = this.run('appendRunLogs', () =>
      this.db
        .transaction(() => {
          const owned = this.sql(OWNED_ATTEMPT);
          const fenced = new Map<string, boolean>();
          const mine = (runId: number, attempt: number) => {
            const key = `${runId}:${attempt}`;
            let ok = fenced.get(key);
            if (ok === undefined) {
              ok = owned.get({ run: runId, attempt, worker: workerId }) !== undefined;
              fenced.set(key, ok);
            }
            return ok;
          };
          const state = this.sql(
            `INSERT INTO run_log_state (run_id, lines, dropped) VALUES (?, 0, 0)
             ON CONFLICT (run_id) DO UPDATE SET lines = lines RETURNING lines, dropped`,
          );
          const save = this.sql('UPDATE run_log_state SET lines = ?, dropped = ? WHERE run_id = ?');
          const insert = this.sql(
            `INSERT INTO run_logs (run_id, seq, attempt, time, stored_at, level, message, fields)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          );
          let count = 0;
          for (const [runId, lines] of groupByRun(batch.logs.filter((l) => mine(l.runId, l.attempt)))) {
            const before = state.get(runId) as { lines: number; dropped: number };
            const plan = planLogAppend(before, lines.length, maxLines);
            lines.slice(0, plan.keep).forEach((line, i) => {
              insert.run(
                runId,
                before.lines + i + 1,
                line.attempt,
                line.time,
                now,
                line.level,
                line.message,
                toJson(line.fields),
              );
            });
            if (plan.marker) {
              const last = lines[lines.length - 1]!;
              insert.run(runId, plan.lines, last.attempt, last.time, now, 'warn', plan.marker, null);
            }
            save.run(plan.lines, plan.dropped, runId);
            count += plan.keep;
            touched.add(runId);
          }
          const progress = this.sql(
            `INSERT INTO run_progress (run_id, attempt, value, message, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (run_id) DO UPDATE SET attempt = excluded.attempt, value = excluded.value,
               message = excluded.message, updated_at = excluded.updated_at
             WHERE excluded.attempt >= run_progress.attempt`,
          );
          // Progress is the run's current state: only from the attempt that holds the run now.
          const held = this.sql(HELD_ATTEMPT);
          for (const p of batch.progress) {
            if (!held.get({ run: p.runId, attempt: p.attempt, worker: workerId })) continue;
            progress.run(p.runId, p.attempt, p.value, p.message, now);
            touched.add(p.runId);
          }
          return count;
        })
        .immediate(),
    );
    for (const runId of touched) this.emit({ type: 'logs', runId });
    return stored;
  }

  async runLogs(runId: number, after: number, limit: number): Promise<RunLogRecord[]> {
    return this.run('runLogs', () =>
      (
        this.sql(
          'SELECT seq, attempt, time, level, message, fields FROM run_logs WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?',
        ).all(runId, after, limit) as LogRow[]
      ).map(logFromRow),
    );
  }

  async runProgress(runId: number): Promise<RunProgressRecord | null> {
    return this.run('runProgress', () => {
      const row = this.sql('SELECT * FROM run_progress WHERE run_id = ?').get(runId) as
        | ProgressRow
        | undefined;
      return row ? progressFromRow(row) : null;
    });
  }

  async pruneRunLogs(before: number, limit: number): Promise<number> {
    return this.run(
      'pruneRunLogs',
      () =>
        this.sql(
          'DELETE FROM run_logs WHERE rowid IN (SELECT rowid FROM run_logs WHERE stored_at < ? LIMIT ?)',
        ).run(before, limit).changes,
    );
  }

  // Retention ----

  async runsToPrune(after: PruneCursor | null, until: number, limit: number): Promise<PruneCandidate[]> {
    return this.run('runsToPrune', () =>
      (
        this.sql(retention.RUNS_TO_PRUNE).all({
          until,
          at: after?.finishedAt ?? Number.MIN_SAFE_INTEGER,
          id: after?.id ?? 0,
          limit,
        }) as PruneRow[]
      ).map((row) => pruneCandidateFromRow(row)),
    );
  }

  async jobRunsToPrune(jobId: number, keepLast: number, after: number, limit: number): Promise<JobPruneScan> {
    return this.run('jobRunsToPrune', () => {
      const keep = this.sql(retention.KEEP_FROM).get(jobId, keepLast - 1) as { id: number } | undefined;
      const keepFrom = keep?.id ?? null;
      const rows = this.sql(retention.JOB_RUNS).all({ job: jobId, after, limit }) as PruneRow[];
      return {
        runs: rows.map((row) => pruneCandidateFromRow(row, keepFrom !== null && row.id < keepFrom)),
        keepFrom,
      };
    });
  }

  async jobsWithRetention(): Promise<Array<{ jobId: number; retention: JobRetention }>> {
    return this.run('jobsWithRetention', () =>
      (this.sql(retention.JOBS_WITH_RETENTION).all() as Array<{ id: number; retention: string }>).map(
        (row) => ({
          jobId: row.id,
          retention: retentionFromColumn(row.retention),
        }),
      ),
    );
  }

  async deleteFinishedRuns(ids: readonly number[]): Promise<number> {
    if (ids.length === 0) return 0;
    return this.run(
      'deleteFinishedRuns',
      () => this.sql(retention.DELETE_FINISHED_RUNS).run(JSON.stringify(ids)).changes,
    );
  }

  async workflowInstancesToPrune(
    after: PruneCursor | null,
    until: number,
    limit: number,
  ): Promise<InstancePruneCandidate[]> {
    return this.run('workflowInstancesToPrune', () =>
      (
        this.sql(retention.INSTANCES_TO_PRUNE).all({
          until,
          at: after?.finishedAt ?? Number.MIN_SAFE_INTEGER,
          id: after?.id ?? 0,
          limit,
        }) as InstancePruneRow[]
      ).map(instancePruneCandidateFromRow),
    );
  }

  async pruneWorkflowMapItems(instanceIds: readonly number[], limit: number): Promise<number> {
    if (instanceIds.length === 0) return 0;
    return this.run(
      'pruneWorkflowMapItems',
      () => this.sql(retention.PRUNE_MAP_ITEMS).run(JSON.stringify(instanceIds), limit).changes,
    );
  }

  async deleteEndedWorkflowInstances(instanceIds: readonly number[]): Promise<number> {
    if (instanceIds.length === 0) return 0;
    return this.run(
      'deleteEndedWorkflowInstances',
      () => this.sql(retention.DELETE_ENDED_INSTANCES).run(JSON.stringify(instanceIds)).changes,
    );
  }

  async pruneSkippedFires(before: number, limit: number): Promise<number> {
    return this.run(
      'pruneSkippedFires',
      () => this.sql(retention.PRUNE_SKIPPED_FIRES).run(before, limit).changes,
    );
  }

  async pruneAuditLog(before: number, limit: number): Promise<number> {
    return this.run('pruneAuditLog', () => this.sql(retention.PRUNE_AUDIT_LOG).run(before, limit).changes);
  }

  async reclaimSpace(maxPages: number, minFreeShare: number): Promise<number> {
    return this.run('reclaimSpace', () => {
      if ((this.db.pragma('auto_vacuum', { simple: true }) as number) !== 2) return 0;
      const free = this.db.pragma('freelist_count', { simple: true }) as number;
      const pages = this.db.pragma('page_count', { simple: true }) as number;
      if (free === 0 || free < pages * minFreeShare) return 0;
      this.db.pragma(`incremental_vacuum(${Math.max(1, Math.floor(maxPages))})`);
      return free - (this.db.pragma('freelist_count', { simple: true }) as number);
    });
  }

  // Fire ahead ----

  async dispatchAhead(
    workerId: string,
    max: number,
    until: number,
    now: number,
    claimSeq: number | null = null,
  ): Promise<ClaimedRun[]> {
    return this.run('dispatchAhead', () => {
      // Read first, outside a write transaction: most polls find nothing ahead.
      const worker = this.sql(
        `SELECT namespace, group_name, handlers FROM workers WHERE id = ? AND status = 'active'`,
      ).get(workerId) as { namespace: string; group_name: string; handlers: string } | undefined;
      if (!worker) return [];
      const limited = this.sql(
        `SELECT 1 FROM namespace_group_limits WHERE namespace = ? AND group_name = ?
           AND (max_concurrency IS NOT NULL OR rate_limit IS NOT NULL)`,
      ).get(worker.namespace, worker.group_name);
      if (limited) return [];
      // Queued runs of plain jobs that become available in (now, until], soonest first, through
      // runs_ahead; runs of jobs with dispatch policies are passed over (they wait for their instant).
      const ids = (
        this.sql(
          `SELECT r.id FROM runs r JOIN jobs j ON j.id = r.job_id
           WHERE r.status = 'queued' AND r.group_name = @group AND r.available_at > @now
             AND r.available_at <= @until AND r.target_worker_id IS NULL AND r.namespace = @namespace
             AND r.handler IN (SELECT value FROM json_each(@handlers)) AND ${hot.PLAIN_DISPATCH}
           ORDER BY r.available_at, r.id LIMIT @max`,
        ).all({
          namespace: worker.namespace,
          group: worker.group_name,
          now,
          until,
          handlers: worker.handlers,
          max,
        }) as Array<{
          id: number;
        }>
      ).map((row) => row.id);
      if (ids.length === 0) return [];
      return this.db
        .transaction((): ClaimedRun[] => {
          // The worker still active: what was read may have changed since (the claim checks the runs).
          const active = this.sql(`SELECT 1 FROM workers WHERE id = ? AND status = 'active'`).get(workerId);
          return active ? this.claimIds(workerId, ids, now, claimSeq) : [];
        })
        .immediate();
    });
  }

  async withdrawFiresAhead(jobId: number, after: number): Promise<number> {
    return this.run('withdrawFiresAhead', () =>
      this.db
        .transaction(() => {
          // Queued and never claimed at this moment (the one writer: no claim can interleave), and
          // later than every run of the job that stays (held, started, retried, ended), so that the
          // next fire never moves back to or before an instant that has a run.
          const gone = this.sql(
            `DELETE FROM runs WHERE job_id = @job AND cause = 'schedule' AND status = 'queued' AND attempt = 0
               AND fire_time > coalesce((SELECT max(fire_time) FROM runs WHERE job_id = @job AND fire_time > @after
                 AND NOT (cause = 'schedule' AND status = 'queued' AND attempt = 0)), @after)
             RETURNING fire_time`,
          ).all({ job: jobId, after }) as Array<{ fire_time: number }>;
          if (gone.length === 0) return 0;
          const earliest = Math.min(...gone.map((run) => run.fire_time));
          this.sql(
            `UPDATE jobs SET next_fire_at = min(coalesce(next_fire_at, ?), ?) WHERE id = ? AND paused = 1`,
          ).run(earliest, earliest, jobId);
          return gone.length;
        })
        .immediate(),
    );
  }

  async dispatchForPoll(
    workerId: string,
    max: number,
    now: number,
    random: number,
    claimSeq: number | null = null,
  ): Promise<PollDispatch> {
    // In process, two statements cost no more than one.
    const runs = await this.dispatchRuns(workerId, max, now, random, claimSeq);
    return { runs, nextAvailableAt: runs.length > 0 ? null : await this.nextAvailableAt(workerId, now) };
  }

  async nextAvailableAt(workerId: string, now: number): Promise<number | null> {
    return this.run('nextAvailableAt', () => {
      const row = this.sql(
        `SELECT min(available_at) AS at FROM runs
         WHERE status = 'queued' AND group_name = (SELECT group_name FROM workers WHERE id = ?) AND available_at > ?`,
      ).get(workerId, now) as { at: number | null };
      return row.at;
    });
  }
}

/**
 * Replace a job's definition and next fire time, bumping its version. Parameters: job values,
 * next_fire_at, now, dispatch values, id, then the expectation (expectationValues): version or
 * null, whether the next fire is checked, the next fire read.
 */
const UPDATE_JOB = `UPDATE jobs SET name = ?, description = ?, group_name = ?, handler = ?, params = ?, trigger = ?,
    delay_ms = ?, retry = ?, timeout_ms = ?, priority = ?, paused = ?, schedule = ?, next_fire_at = ?, updated_at = ?,
    dispatch = ?, schedule_to_start_ms = ?, task = ?, retention = ?, owner = ?, revision = ?, secret_params = ?, version = version + 1
  WHERE id = ? AND (? IS NULL OR version = ?) AND (? = 0 OR next_fire_at IS ?)`;

/** The parameters of UPDATE_JOB, in its order. */
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
    ...dispatchValues(job),
    retentionColumn(job.retention),
    job.owner,
    job.revision,
    JSON.stringify(job.secretParams),
    id,
    ...expectationValues(expected),
  ];
}

function expectationValues(expected: JobExpectation | undefined): unknown[] {
  return expected ? [expected.version, expected.version, 1, expected.nextFireAt] : [null, null, 0, null];
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
    job.paused ? 1 : 0,
    JSON.stringify(job.schedule),
  ];
}

/**
 * Creates the database file readable by this user only (0600), in a folder of the same kind when
 * the folder is new (0700). SQLite gives the `-wal` and `-shm` files the database file's mode; the
 * ones an older version left are tightened too.
 */
function createPrivateFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, 0o600);
}
