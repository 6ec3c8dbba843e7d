import type { JsonObject } from '@kairos/client';
import type Database from 'better-sqlite3';
import { DEFAULT_TIMEOUT_MS } from '../../core/job.ts';
import { HELD_WHILE_PAUSED_AT } from '../../core/overlap.ts';
import { DEFAULT_RETRY } from '../../core/retry.ts';
import type { CompiledStep, WorkflowDefinition } from '../../core/workflow.ts';
import { KairosError } from '../../errors.ts';
import type { JobQuotaCheck } from '../store.ts';
import {
  CANCELLED_WITH_INSTANCE,
  endOf,
  type InstancePlan,
  type InstanceRow,
  instanceFromRow,
  planInstance,
  planRepair,
  REPLACED_BY_REPAIR,
  type RepairPlan,
  STEP_READ_COLUMNS,
  type StepJob,
  type StepReadRow,
  type StepRow,
  stepJobNames,
  type WorkflowInstanceRecord,
  type WorkflowRecord,
  type WorkflowRepair,
  type WorkflowRow,
  type WorkflowStore,
  workflowFromRow,
  workflowJobName,
} from '../workflows.ts';
import type { SqliteConnection } from './alerts.ts';
import { endedBroadcasts, shardNewRuns } from './broadcasts.ts';
import { END_ATTEMPTS } from './hot-statements.ts';
import { checkJobQuota, checkQueuedRunsAfter } from './quotas.ts';

type Sql = (text: string) => Database.Statement<unknown[], unknown>;

const INSTANCE_COLUMNS = `i.id, i.workflow_id, w.name AS workflow_name, i.namespace, i.workflow_version, i.steps, i.state,
  i.context, i.created_at, i.started_at, i.finished_at`;

/** The workflows part of the SQLite store (store/workflows.ts has the contract). */
export class SqliteWorkflows implements WorkflowStore {
  constructor(
    private readonly c: SqliteConnection,
    /** Wakes the pollers of groups that got runs. */
    private readonly wake: (groups: readonly string[]) => void,
    /** What the end of runs sets off (store/sqlite/schedules.ts), in the caller's transaction. */
    private readonly afterRunsEnded: (
      ended: ReadonlyArray<{ runId: number; jobId: number; workflowInstanceId: number | null }>,
      now: number,
    ) => string[],
  ) {}

  async put(definition: WorkflowDefinition, namespace: string, now: number, quota?: JobQuotaCheck) {
    return this.c.run('putWorkflow', () =>
      this.c.db
        .transaction(() => {
          const sql = this.c.sql;
          const steps = JSON.stringify(definition.steps);
          const updated = sql(
            `UPDATE workflows SET description = ?, steps = ?, version = version + 1, updated_at = ?
             WHERE namespace = ? AND name = ? RETURNING *`,
          ).get(definition.description, steps, now, namespace, definition.name) as WorkflowRow | undefined;
          if (updated) return { workflow: workflowFromRow(updated), created: false };
          if (quota) checkJobQuota(sql, namespace, -1, quota);
          const job = sql(
            `INSERT INTO jobs (name, group_name, handler, params, trigger, retry, timeout_ms, priority, created_at,
               updated_at, namespace)
             VALUES (?, 'default', 'workflow', '{}', '{"kind":"manual"}', ?, ?, 0, ?, ?, ?) RETURNING id`,
          ).get(
            workflowJobName(namespace, definition.name),
            JSON.stringify(DEFAULT_RETRY),
            DEFAULT_TIMEOUT_MS,
            now,
            now,
            namespace,
          ) as { id: number };
          const row = sql(
            `INSERT INTO workflows (namespace, name, description, version, steps, job_id, created_at, updated_at)
             VALUES (?, ?, ?, 1, ?, ?, ?, ?) RETURNING *`,
          ).get(namespace, definition.name, definition.description, steps, job.id, now, now) as WorkflowRow;
          sql('UPDATE jobs SET workflow_id = ? WHERE id = ?').run(row.id, job.id);
          return { workflow: workflowFromRow(row), created: true };
        })
        .immediate(),
    );
  }

  async get(namespace: string, name: string): Promise<WorkflowRecord | null> {
    return this.c.run('getWorkflow', () => {
      const row = this.c
        .sql('SELECT * FROM workflows WHERE namespace = ? AND name = ?')
        .get(namespace, name) as WorkflowRow | undefined;
      return row ? workflowFromRow(row) : null;
    });
  }

  async list(filter: { namespace?: string | undefined; after?: string | undefined; limit: number }) {
    return this.c.run('listWorkflows', () =>
      (
        this.c
          .sql(
            `SELECT * FROM workflows WHERE (@namespace IS NULL OR namespace = @namespace)
               AND (@after IS NULL OR name > @after) ORDER BY name, namespace LIMIT @limit`,
          )
          .all({
            namespace: filter.namespace ?? null,
            after: filter.after ?? null,
            limit: filter.limit,
          }) as WorkflowRow[]
      ).map(workflowFromRow),
    );
  }

  async delete(namespace: string, name: string): Promise<boolean> {
    return this.c.run('deleteWorkflow', () =>
      this.c.db
        .transaction(() => {
          const row = this.c
            .sql('DELETE FROM workflows WHERE namespace = ? AND name = ? RETURNING job_id')
            .get(namespace, name) as { job_id: number } | undefined;
          if (!row) return false;
          this.c.sql('DELETE FROM jobs WHERE id = ?').run(row.job_id);
          return true;
        })
        .immediate(),
    );
  }

  async start(
    namespace: string,
    name: string,
    request: { context: JsonObject; idempotencyKey?: string | undefined },
    now: number,
    maxQueuedRuns: number | null = null,
  ): Promise<WorkflowInstanceRecord | null> {
    const started = this.c.run('startWorkflow', () =>
      this.c.db
        .transaction(() => {
          const sql = this.c.sql;
          const workflow = sql('SELECT * FROM workflows WHERE namespace = ? AND name = ?').get(
            namespace,
            name,
          ) as WorkflowRow | undefined;
          if (!workflow) return null;
          const key = request.idempotencyKey ?? null;
          if (key !== null) {
            const existing = sql(
              'SELECT id FROM workflow_instances WHERE workflow_id = ? AND idempotency_key = ?',
            ).get(workflow.id, key) as { id: number } | undefined;
            if (existing) return { id: existing.id, groups: [] };
          }
          const { id } = sql(
            `INSERT INTO workflow_instances (workflow_id, namespace, workflow_version, steps, state, context,
               idempotency_key, created_at, started_at)
             VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?) RETURNING id`,
          ).get(
            workflow.id,
            namespace,
            workflow.version,
            workflow.steps,
            JSON.stringify(request.context),
            key,
            now,
            now,
          ) as { id: number };
          const steps = JSON.parse(workflow.steps) as CompiledStep[];
          const plan = planInstance({
            instanceId: id,
            steps,
            context: request.context,
            rows: [],
            ended: [],
            jobs: stepJobs(sql, namespace, steps),
            carrier: { jobId: workflow.job_id },
          });
          const groups = writePlan(sql, id, namespace, plan, now);
          // One writer: nothing else writes between the count and the commit; a refusal rolls back.
          if (maxQueuedRuns !== null)
            checkQueuedRunsAfter(sql, workflow.job_id, maxQueuedRuns, groups.length);
          return { id, groups };
        })
        .immediate(),
    );
    if (!started) return null;
    this.wake(started.groups);
    return this.getInstance(started.id);
  }

  async getInstance(id: number): Promise<WorkflowInstanceRecord | null> {
    return this.c.run('getWorkflowInstance', () => readInstance(this.c.sql, id));
  }

  async listInstances(workflowId: number, before: number | undefined, limit: number) {
    return this.c.run('listWorkflowInstances', () => {
      const rows = this.c
        .sql(
          `SELECT ${INSTANCE_COLUMNS} FROM workflow_instances i JOIN workflows w ON w.id = i.workflow_id
           WHERE i.workflow_id = ? AND (? IS NULL OR i.id < ?) ORDER BY i.id DESC LIMIT ?`,
        )
        .all(workflowId, before ?? null, before ?? null, limit) as InstanceRow[];
      const steps = this.c
        .sql(
          `SELECT s.instance_id, ${STEP_READ_COLUMNS} FROM workflow_steps s LEFT JOIN runs r ON r.id = s.run_id
           WHERE s.instance_id IN (SELECT value FROM json_each(?))`,
        )
        .all(JSON.stringify(rows.map((r) => r.id))) as Array<StepReadRow & { instance_id: number }>;
      return rows.map((row) =>
        instanceFromRow(
          row,
          steps.filter((s) => s.instance_id === row.id),
        ),
      );
    });
  }

  async cancelInstance(id: number, now: number): Promise<WorkflowInstanceRecord | null> {
    const groups = this.c.run('cancelWorkflowInstance', () =>
      this.c.db
        .transaction(() => {
          const sql = this.c.sql;
          const instance = sql('SELECT state FROM workflow_instances WHERE id = ?').get(id) as
            | { state: string }
            | undefined;
          if (!instance) return null;
          if (instance.state !== 'running' && instance.state !== 'paused') {
            throw new KairosError(
              'WORKFLOW_INSTANCE_FINISHED',
              `workflow instance ${id} already ended (${instance.state})`,
            );
          }
          sql(`UPDATE workflow_instances SET state = 'cancelled', finished_at = ? WHERE id = ?`).run(now, id);
          sql(
            `UPDATE workflow_steps SET state = 'cancelled' WHERE instance_id = ? AND state IN ('waiting', 'ready')`,
          ).run(id);
          const active = sql(
            `SELECT id FROM runs WHERE workflow_instance_id = ? AND status IN ('queued', 'running')`,
          ).all(id) as Array<{ id: number }>;
          return this.afterRunsEnded(
            cancelRuns(
              sql,
              active.map((r) => r.id),
              now,
              CANCELLED_WITH_INSTANCE,
            ),
            now,
          );
        })
        .immediate(),
    );
    if (groups === null) return null;
    this.wake(groups);
    return this.getInstance(id);
  }

  async repairInstance(
    id: number,
    action: WorkflowRepair,
    now: number,
  ): Promise<WorkflowInstanceRecord | null> {
    const groups = this.c.run('repairWorkflowInstance', () =>
      this.c.db
        .transaction(() => {
          const sql = this.c.sql;
          // One writer: the transaction holds the instance, no run ends meanwhile.
          const instance = readForAdvance(sql, id);
          if (!instance) return null;
          const steps = JSON.parse(instance.steps) as CompiledStep[];
          const repair = planRepair({
            instanceId: id,
            state: instance.state as WorkflowInstanceRecord['state'],
            steps,
            context: JSON.parse(instance.context) as JsonObject,
            rows: readSteps(sql, id),
            jobs: stepJobs(sql, instance.namespace, steps),
            carrier: { jobId: instance.job_id },
            action,
          });
          if (!repair) return [];
          return this.writeRepair(sql, id, instance.namespace, repair, now);
        })
        .immediate(),
    );
    if (groups === null) return null;
    this.wake(groups);
    return this.getInstance(id);
  }

  /**
   * Writes what {@link planRepair} decided: the steps put back to waiting, the plan (steps and runs),
   * the step skipped by hand, the instance's state; then cancels the runs it replaced, whose ends
   * advance nothing (their steps no longer hold them). Answers the groups that got runs.
   */
  private writeRepair(sql: Sql, id: number, namespace: string, repair: RepairPlan, now: number): string[] {
    const reset = sql(
      `UPDATE workflow_steps SET state = 'waiting', run_id = NULL, result = NULL, hand_skipped = 0, run_count = ?
       WHERE instance_id = ? AND step_id = ?`,
    );
    for (const { step, runCount } of repair.reset) reset.run(runCount, id, step);
    const groups = writePlan(sql, id, namespace, repair.plan, now);
    if (repair.handSkipped !== null) {
      sql(
        'UPDATE workflow_steps SET hand_skipped = 1, result = NULL WHERE instance_id = ? AND step_id = ?',
      ).run(id, repair.handSkipped);
    }
    sql('UPDATE workflow_instances SET state = ?, finished_at = ? WHERE id = ?').run(
      repair.state,
      repair.ended ? now : null,
      id,
    );
    return [...groups, ...this.afterRunsEnded(cancelRuns(sql, repair.cancel, now, REPLACED_BY_REPAIR), now)];
  }
}

/**
 * Cancels the runs of these ids that are still queued or running (their running attempts end
 * `cancelled` with `error`). Answers them, for afterRunsEnded.
 */
function cancelRuns(
  sql: Sql,
  ids: readonly number[],
  now: number,
  error: string,
): Array<{ runId: number; jobId: number; workflowInstanceId: number | null }> {
  if (ids.length === 0) return [];
  const active = sql(
    `SELECT id, job_id, status, attempt, worker_id, started_at, workflow_instance_id FROM runs
     WHERE id IN (SELECT value FROM json_each(?)) AND status IN ('queued', 'running')`,
  ).all(JSON.stringify(ids)) as Array<{
    id: number;
    job_id: number;
    status: string;
    attempt: number;
    worker_id: string;
    started_at: number;
    workflow_instance_id: number | null;
  }>;
  const running = active.filter((r) => r.status === 'running');
  if (running.length > 0) {
    sql(END_ATTEMPTS).run(
      now,
      JSON.stringify(running.map((r) => [r.id, r.attempt, r.worker_id, 'cancelled', r.started_at, error])),
    );
  }
  const cancel = sql(
    `UPDATE runs SET status = 'cancelled', finished_at = ?, error = ?, deadline_at = NULL WHERE id = ?`,
  );
  for (const run of active) cancel.run(now, error, run.id);
  return active.map((r) => ({ runId: r.id, jobId: r.job_id, workflowInstanceId: r.workflow_instance_id }));
}

/** An instance with what advancing it needs. */
function readForAdvance(sql: Sql, id: number) {
  return sql(
    `SELECT i.namespace, i.steps, i.state, i.context, w.job_id FROM workflow_instances i
     JOIN workflows w ON w.id = i.workflow_id WHERE i.id = ?`,
  ).get(id) as
    | { namespace: string; steps: string; state: string; context: string; job_id: number }
    | undefined;
}

/** An instance's steps with their runs' ends. */
function readSteps(sql: Sql, id: number): StepRow[] {
  return sql(
    `SELECT s.step_id, s.state, s.run_id, r.status AS run_status, r.result AS run_result, s.result, s.run_count,
       s.hand_skipped
     FROM workflow_steps s LEFT JOIN runs r ON r.id = s.run_id WHERE s.instance_id = ?`,
  ).all(id) as StepRow[];
}

function readInstance(sql: Sql, id: number): WorkflowInstanceRecord | null {
  const row = sql(
    `SELECT ${INSTANCE_COLUMNS} FROM workflow_instances i JOIN workflows w ON w.id = i.workflow_id WHERE i.id = ?`,
  ).get(id) as InstanceRow | undefined;
  if (!row) return null;
  const steps = sql(
    `SELECT ${STEP_READ_COLUMNS} FROM workflow_steps s LEFT JOIN runs r ON r.id = s.run_id WHERE s.instance_id = ?`,
  ).all(id) as StepReadRow[];
  return instanceFromRow(row, steps);
}

/** The jobs an instance's `job` steps name, as they are now. */
function stepJobs(
  sql: Sql,
  namespace: string,
  steps: readonly CompiledStep[],
  goneJobId: number | null = null,
): Map<string, StepJob> {
  const names = stepJobNames(steps);
  if (names.length === 0) return new Map();
  const rows = sql(
    `SELECT id, name, group_name, handler, params, retry, timeout_ms, priority, paused FROM jobs
     WHERE namespace = ? AND name IN (SELECT value FROM json_each(?)) AND workflow_id IS NULL AND id IS NOT ?`,
  ).all(namespace, JSON.stringify(names), goneJobId) as Array<{
    id: number;
    name: string;
    group_name: string;
    handler: string;
    params: string;
    retry: string;
    timeout_ms: number;
    priority: number;
    paused: number;
  }>;
  return new Map(
    rows.map((r) => [
      r.name,
      {
        id: r.id,
        name: r.name,
        group: r.group_name,
        handler: r.handler,
        params: JSON.parse(r.params) as JsonObject,
        retry: r.retry,
        maxAttempts: (JSON.parse(r.retry) as { maxAttempts: number }).maxAttempts,
        timeoutMs: r.timeout_ms,
        priority: r.priority,
        paused: r.paused === 1,
      },
    ]),
  );
}

/** Writes what {@link planInstance} decided: the runs, the steps' states, the instance's end. Answers the groups. */
function writePlan(
  sql: Sql,
  instanceId: number,
  namespace: string,
  plan: InstancePlan,
  now: number,
): string[] {
  const insert = sql(
    `INSERT INTO runs (job_id, group_name, handler, cause, idempotency_key, params, priority, status, max_attempts,
       retry, timeout_ms, created_at, available_at, namespace, workflow_instance_id, workflow_step, resources)
     VALUES (?, ?, ?, 'workflow', ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT DO NOTHING RETURNING id, group_name`,
  );
  const groups: string[] = [];
  const runIds = new Map<string, number>();
  for (const run of plan.runs) {
    const row = insert.get(
      run.jobId,
      run.group,
      run.handler,
      run.idempotencyKey,
      JSON.stringify(run.params),
      run.priority,
      run.maxAttempts,
      run.retry,
      run.timeoutMs,
      now,
      run.held ? HELD_WHILE_PAUSED_AT : now,
      namespace,
      instanceId,
      run.step,
      run.resources,
    ) as { id: number; group_name: string } | undefined;
    if (!row) continue; // the key holds the step's run already: never a second one
    runIds.set(run.step, row.id);
    groups.push(row.group_name);
  }
  // A `job` step of a broadcast job runs as a broadcast: its run becomes the first shard.
  if (plan.runs.length > 0)
    shardNewRuns(
      sql,
      plan.runs.map((r) => r.jobId),
      now,
    );
  const upsert = sql(
    `INSERT INTO workflow_steps (instance_id, step_id, state, run_id, result, run_count) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (instance_id, step_id) DO UPDATE SET state = excluded.state,
       run_id = coalesce(excluded.run_id, workflow_steps.run_id),
       result = coalesce(excluded.result, workflow_steps.result),
       run_count = workflow_steps.run_count + excluded.run_count`,
  );
  for (const [step, state] of plan.states) {
    const runId = runIds.get(step) ?? null;
    upsert.run(instanceId, step, state, runId, plan.results.get(step) ?? null, runId === null ? 0 : 1);
  }
  if (plan.outcome) {
    sql(
      `UPDATE workflow_instances SET state = ?, finished_at = ? WHERE id = ? AND state IN ('running', 'paused')`,
    ).run(plan.outcome, now, instanceId);
  }
  return groups;
}

/**
 * Advances the instances of step runs that this transaction ended (see store/workflows.ts).
 * Answers the groups that got runs. SQLite has one writer: the transaction is the lock.
 */
export function advanceWorkflows(
  sql: Sql,
  runIds: readonly number[],
  now: number,
  /** A job this transaction deletes: a step naming it fails without a run, as for a missing job. */
  goneJobId: number | null = null,
): string[] {
  if (runIds.length === 0) return [];
  const rows = sql(
    `SELECT id, workflow_instance_id, workflow_step, status, result, broadcast_run_id FROM runs
     WHERE id IN (SELECT value FROM json_each(?)) AND workflow_instance_id IS NOT NULL
       AND status IN ('succeeded', 'failed', 'timed_out', 'cancelled')`,
  ).all(JSON.stringify(runIds)) as Array<{
    id: number;
    workflow_instance_id: number;
    workflow_step: string;
    status: string;
    result: string | null;
    broadcast_run_id: number | null;
  }>;
  // A broadcast step ends once, when its last shard ends, as its first shard (store/sqlite/broadcasts.ts).
  const ended = rows.filter((r) => r.broadcast_run_id === null);
  if (ended.length < rows.length) {
    for (const b of endedBroadcasts(
      sql,
      rows.map((r) => r.id),
    )) {
      if (b.workflow_instance_id === null || b.workflow_step === null) continue;
      ended.push({
        ...b,
        workflow_instance_id: b.workflow_instance_id,
        workflow_step: b.workflow_step,
        broadcast_run_id: null,
      });
    }
  }
  const groups: string[] = [];
  const instances = [...new Set(ended.map((e) => e.workflow_instance_id))].sort((a, b) => a - b);
  for (const instanceId of instances) {
    const instance = readForAdvance(sql, instanceId);
    // Ended, or its workflow was deleted. A paused instance advances, holding what becomes ready.
    if (instance?.state !== 'running' && instance?.state !== 'paused') continue;
    const stepRows = readSteps(sql, instanceId);
    const state = new Map(stepRows.map((r) => [r.step_id, r]));
    // Only the current run of a ready step ends it; anything else was decided already.
    const ends = ended.filter(
      (e) =>
        e.workflow_instance_id === instanceId &&
        state.get(e.workflow_step)?.state === 'ready' &&
        state.get(e.workflow_step)?.run_id === e.id,
    );
    if (ends.length === 0) continue;
    const steps = JSON.parse(instance.steps) as CompiledStep[];
    const plan = planInstance({
      instanceId,
      steps,
      context: JSON.parse(instance.context) as JsonObject,
      rows: stepRows,
      ended: ends.map((e) => ({ step: e.workflow_step, end: endOf(e.status, e.result) })),
      jobs: stepJobs(sql, instance.namespace, steps, goneJobId),
      carrier: { jobId: instance.job_id },
      paused: instance.state === 'paused',
    });
    groups.push(...writePlan(sql, instanceId, instance.namespace, plan, now));
  }
  return groups;
}
