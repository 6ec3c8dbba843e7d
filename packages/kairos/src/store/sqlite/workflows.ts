import { isDeepStrictEqual } from 'node:util';
import type { JsonObject } from '@kairos/client';
import { DEFAULT_TIMEOUT_MS } from '../../core/job.ts';
import { startsHeldFire } from '../../core/overlap.ts';
import { DEFAULT_RETRY } from '../../core/retry.ts';
import type { CompiledStep, WorkflowDefinition } from '../../core/workflow.ts';
import { KairosError } from '../../errors.ts';
import type { JobQuotaCheck } from '../store.ts';
import {
  CANCELLED_WITH_INSTANCE,
  checkMapStep,
  detachJobStepRuns,
  endOf,
  type InstancePlan,
  type InstanceRow,
  type InstanceStart,
  instanceFromRow,
  type MapInput,
  type MapItemRow,
  type MapItemState,
  type MapItemsPage,
  mapItemCounts,
  mapItemFromRow,
  type PlanContext,
  planInstance,
  planRepair,
  REPLACED_BY_REPAIR,
  type RepairPlan,
  runConflicts,
  STEP_READ_COLUMNS,
  STEP_RUN_JOIN,
  type StepJob,
  type StepReadRow,
  type StepRow,
  scheduledStart,
  stepJobNames,
  type WorkflowInstanceRecord,
  type WorkflowRecord,
  type WorkflowRepair,
  type WorkflowRow,
  type WorkflowStore,
  workflowFromRow,
  workflowJobName,
} from '../workflows.ts';
import { endedBroadcasts } from './broadcasts.ts';
import type { SqliteConnection } from './connection.ts';
import { END_ATTEMPTS } from './hot-statements.ts';
import { checkJobQuota, checkQueuedRunsAfter } from './quotas.ts';
import { cancelMapItems, endMapItems, replaceMapItems, settleMaps, writeMapItems } from './workflow-maps.ts';
import { insertStepRuns, type Sql } from './workflow-runs.ts';

const INSTANCE_COLUMNS = `i.id, i.workflow_id, w.name AS workflow_name, i.namespace, i.workflow_version, i.steps, i.state,
  i.context, i.cause, i.scheduled_for, i.created_at, i.started_at, i.finished_at`;
/** A workflow with its job's trigger, schedule, pause and next fire (`workflows w JOIN jobs j`). */
const WORKFLOW_COLUMNS = `w.id, w.namespace, w.name, w.description, w.version, w.steps, w.job_id, w.created_at,
  w.updated_at, j.trigger, j.schedule, j.paused, j.next_fire_at`;

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
    /** Tells the trigger loops that a workflow's job (its trigger) changed. */
    private readonly jobsChanged: () => void = () => {},
  ) {}

  async put(
    definition: WorkflowDefinition,
    namespace: string,
    now: number,
    quota?: JobQuotaCheck,
    schedule: { next: number | null; rateQuota?: JobQuotaCheck } = { next: null },
  ) {
    const saved = this.c.run('putWorkflow', () =>
      this.c.db
        .transaction(() => {
          const sql = this.c.sql;
          const steps = JSON.stringify(definition.steps);
          const trigger = JSON.stringify(definition.trigger);
          const policy = JSON.stringify(definition.schedule);
          const updated = sql(
            `UPDATE workflows SET description = ?, steps = ?, version = version + 1, updated_at = ?
             WHERE namespace = ? AND name = ? RETURNING id, job_id`,
          ).get(definition.description, steps, now, namespace, definition.name) as
            | { id: number; job_id: number }
            | undefined;
          if (updated) {
            // The job carries the trigger: the same trigger and schedule keep its next fire (and a
            // pause keeps it too); a new one starts from `next`. The version moves, so that an edit
            // of the job decided on what it was (a pause) is made anew (scheduler/job-service.ts).
            const job = sql('SELECT trigger, schedule FROM jobs WHERE id = ?').get(updated.job_id) as {
              trigger: string;
              schedule: string;
            };
            // Compared as values: an edit of the job (a pause) writes them back in another key order.
            const kept =
              isDeepStrictEqual(JSON.parse(job.trigger), definition.trigger) &&
              isDeepStrictEqual(JSON.parse(job.schedule), definition.schedule);
            if (!kept && schedule.rateQuota)
              checkJobQuota(sql, namespace, updated.job_id, schedule.rateQuota);
            sql(
              `UPDATE jobs SET trigger = ?, schedule = ?, version = version + 1, updated_at = ?,
                 next_fire_at = CASE WHEN ? THEN next_fire_at ELSE ? END WHERE id = ?`,
            ).run(trigger, policy, now, kept ? 1 : 0, schedule.next, updated.job_id);
            return { workflow: readWorkflow(sql, updated.id)!, created: false };
          }
          if (quota) checkJobQuota(sql, namespace, -1, quota);
          const job = sql(
            `INSERT INTO jobs (name, group_name, handler, params, trigger, schedule, next_fire_at, retry, timeout_ms,
               priority, created_at, updated_at, namespace)
             VALUES (?, 'default', 'workflow', '{}', ?, ?, ?, ?, ?, 0, ?, ?, ?) RETURNING id`,
          ).get(
            workflowJobName(namespace, definition.name),
            trigger,
            policy,
            schedule.next,
            JSON.stringify(DEFAULT_RETRY),
            DEFAULT_TIMEOUT_MS,
            now,
            now,
            namespace,
          ) as { id: number };
          const row = sql(
            `INSERT INTO workflows (namespace, name, description, version, steps, job_id, created_at, updated_at)
             VALUES (?, ?, ?, 1, ?, ?, ?, ?) RETURNING id`,
          ).get(namespace, definition.name, definition.description, steps, job.id, now, now) as {
            id: number;
          };
          sql('UPDATE jobs SET workflow_id = ? WHERE id = ?').run(row.id, job.id);
          return { workflow: readWorkflow(sql, row.id)!, created: true };
        })
        .immediate(),
    );
    this.jobsChanged();
    return saved;
  }

  async get(namespace: string, name: string): Promise<WorkflowRecord | null> {
    return this.c.run('getWorkflow', () => {
      const row = this.c
        .sql(`SELECT ${WORKFLOW_COLUMNS} FROM workflows w JOIN jobs j ON j.id = w.job_id
              WHERE w.namespace = ? AND w.name = ?`)
        .get(namespace, name) as WorkflowRow | undefined;
      return row ? workflowFromRow(row) : null;
    });
  }

  async list(filter: { namespace?: string | undefined; after?: string | undefined; limit: number }) {
    return this.c.run('listWorkflows', () =>
      (
        this.c
          .sql(
            `SELECT ${WORKFLOW_COLUMNS} FROM workflows w JOIN jobs j ON j.id = w.job_id
             WHERE (@namespace IS NULL OR w.namespace = @namespace)
               AND (@after IS NULL OR w.name > @after) ORDER BY w.name, w.namespace LIMIT @limit`,
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
            .sql('SELECT id, job_id FROM workflows WHERE namespace = ? AND name = ?')
            .get(namespace, name) as { id: number; job_id: number } | undefined;
          if (!row) return false;
          this.c.sql(detachJobStepRuns((name) => `@${name}`)).run({ workflow: row.id, job: row.job_id });
          this.c.sql('DELETE FROM workflows WHERE id = ?').run(row.id);
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
          const started = startInstance(
            sql,
            workflow,
            {
              context: request.context,
              idempotencyKey: request.idempotencyKey ?? null,
              cause: 'manual',
              scheduledFor: null,
            },
            now,
          );
          if (!started.created) return { id: started.id, groups: [] };
          const { id, groups } = started;
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

  async mapItems(
    instanceId: number,
    step: string,
    filter: { from: number; limit: number; state?: MapItemState | undefined },
  ): Promise<MapItemsPage | null> {
    return this.c.run('workflowMapItems', () => {
      const sql = this.c.sql;
      const instance = sql('SELECT steps FROM workflow_instances WHERE id = ?').get(instanceId) as
        | { steps: string }
        | undefined;
      if (!instance) return null;
      checkMapStep(instanceId, instance.steps, step);
      const state = filter.state ?? null;
      // A range of the items' primary key, or of workflow_map_items_state with a state.
      const rows = sql(
        `SELECT m.idx, m.state, m.run_id, r.attempt AS run_attempt, m.result, r.error AS run_error
         FROM workflow_map_items m LEFT JOIN runs r ON r.id = m.run_id
         WHERE m.instance_id = ? AND m.step_id = ? AND m.idx >= ? AND (? IS NULL OR m.state = ?)
         ORDER BY m.idx LIMIT ?`,
      ).all(instanceId, step, filter.from, state, state, filter.limit) as MapItemRow[];
      const counts = sql(
        'SELECT state, count(*) AS n FROM workflow_map_items WHERE instance_id = ? AND step_id = ? GROUP BY state',
      ).all(instanceId, step) as Array<{ state: string; n: number }>;
      return { items: rows.map(mapItemFromRow), counts: mapItemCounts(counts) };
    });
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
          `SELECT s.instance_id, ${STEP_READ_COLUMNS} FROM workflow_steps s ${STEP_RUN_JOIN}
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
          const cancelled = cancelInstanceIn(sql, id, now, CANCELLED_WITH_INSTANCE, this.afterRunsEnded);
          if (cancelled === null) return null;
          // The workflow's oldest held fire starts when this was its last unfinished instance.
          return [...cancelled.groups, ...startHeldFires(sql, [cancelled.workflowId], now)];
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
    maxQueuedRuns: number | null = null,
  ): Promise<WorkflowInstanceRecord | null> {
    const groups = this.c.run('repairWorkflowInstance', () =>
      this.c.db
        .transaction(() => {
          const sql = this.c.sql;
          // One writer: the transaction holds the instance, no run ends meanwhile.
          const instance = readForAdvance(sql, id);
          if (!instance) return null;
          const steps = JSON.parse(instance.steps) as CompiledStep[];
          const input = {
            instanceId: id,
            steps,
            context: JSON.parse(instance.context) as JsonObject,
            rows: readSteps(sql, id),
            jobs: stepJobs(sql, instance.namespace, steps),
            carrier: { jobId: instance.job_id },
          };
          const repair = planRepair({
            ...input,
            state: instance.state as WorkflowInstanceRecord['state'],
            action,
          });
          if (!repair) return [];
          const written = this.writeRepair(sql, input, instance.namespace, repair, now);
          // A repair queues runs at an operator's request, as a start does: judged, and a refusal
          // rolls the whole repair back (429 QUOTA_EXCEEDED, nothing written). One writer: nothing
          // else writes between the count and the commit.
          if (maxQueuedRuns !== null)
            checkQueuedRunsAfter(sql, instance.job_id, maxQueuedRuns, written.queued);
          return written.groups;
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
   *
   * Map steps: the items of the steps put back are deleted first (the step fans out again with new
   * keys), those of a skipped step cancelled, and their item runs cancelled with the others. Once the
   * instance runs (a resume), its ready map steps queue the items the pause held.
   */
  private writeRepair(
    sql: Sql,
    input: Omit<MapInput, 'paused'>,
    namespace: string,
    repair: RepairPlan,
    now: number,
  ): { groups: string[]; queued: number } {
    const id = input.instanceId;
    const maps = new Set(input.steps.filter((s) => s.map).map((s) => s.id));
    const skippedMap =
      repair.handSkipped !== null && maps.has(repair.handSkipped) ? repair.handSkipped : null;
    const itemRunIds = replaceMapItems(
      sql,
      id,
      repair.reset.map((r) => r.step).filter((s) => maps.has(s)),
      skippedMap,
    );
    const reset = sql(
      `UPDATE workflow_steps SET state = 'waiting', run_id = NULL, result = NULL, error = NULL, hand_skipped = 0,
         run_count = ?
       WHERE instance_id = ? AND step_id = ?`,
    );
    for (const { step, runCount } of repair.reset) reset.run(runCount, id, step);
    const groups = writePlan(
      sql,
      { ...input, paused: repair.state === 'paused' },
      namespace,
      repair.plan,
      now,
    );
    if (repair.handSkipped !== null) {
      sql(
        'UPDATE workflow_steps SET hand_skipped = 1, result = NULL, error = NULL WHERE instance_id = ? AND step_id = ?',
      ).run(id, repair.handSkipped);
    }
    sql('UPDATE workflow_instances SET state = ?, finished_at = ? WHERE id = ?').run(
      repair.state,
      repair.ended ? now : null,
      id,
    );
    if (repair.state === 'running' && maps.size > 0) {
      const rows = readSteps(sql, id);
      const ready = rows.filter((r) => r.state === 'ready' && maps.has(r.step_id)).map((r) => r.step_id);
      const mapInput = { ...input, rows, paused: false };
      const settled = settleMaps(sql, mapInput, namespace, ready, now);
      groups.push(...settled.groups);
      if (settled.ends.length > 0) {
        const plan = planInstance({ ...mapInput, ended: settled.ends });
        groups.push(...writePlan(sql, mapInput, namespace, plan, now));
      }
    }
    // The runs this repair queued (one group per run): what the namespace's maxQueuedRuns judges.
    const queued = groups.length;
    const cancelled = cancelRuns(sql, [...repair.cancel, ...itemRunIds], now, REPLACED_BY_REPAIR);
    groups.push(...this.afterRunsEnded(cancelled, now));
    // A repair that ended the instance (a skip, a resume with nothing left to run) starts the
    // workflow's oldest held fire when it was the last unfinished one.
    const after = sql('SELECT state, workflow_id FROM workflow_instances WHERE id = ?').get(id) as {
      state: string;
      workflow_id: number;
    };
    if (after.state !== 'running' && after.state !== 'paused') {
      groups.push(...startHeldFires(sql, [after.workflow_id], now));
    }
    return { groups, queued };
  }
}

/**
 * Cancels an unfinished instance inside the caller's transaction (the instance cancel API, and a
 * newer fire's `cancel-previous`): its queued and running step runs are cancelled with `error`,
 * its waiting and ready steps become `cancelled`, and it ends `cancelled`. Throws
 * WORKFLOW_INSTANCE_FINISHED when it already ended; null when there is none. Starts no held fire:
 * the caller decides.
 */
export function cancelInstanceIn(
  sql: Sql,
  id: number,
  now: number,
  error: string,
  afterRunsEnded: (
    ended: ReadonlyArray<{ runId: number; jobId: number; workflowInstanceId: number | null }>,
    now: number,
  ) => string[],
): { workflowId: number; groups: string[] } | null {
  const instance = sql('SELECT state, workflow_id FROM workflow_instances WHERE id = ?').get(id) as
    | { state: string; workflow_id: number }
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
  cancelMapItems(sql, id);
  const active = sql(
    `SELECT id FROM runs WHERE workflow_instance_id = ? AND status IN ('queued', 'running')`,
  ).all(id) as Array<{ id: number }>;
  const groups = afterRunsEnded(
    cancelRuns(
      sql,
      active.map((r) => r.id),
      now,
      error,
    ),
    now,
  );
  return { workflowId: instance.workflow_id, groups };
}

/**
 * Starts the held fires of these workflows (docs/workflows.md#triggers) in the caller's
 * transaction, the one that ended an instance: while a workflow has held fires and no unfinished
 * instance, its oldest held fire is deleted and its instance started (cause `schedule`, the held
 * fire's time; its root steps' runs available now). One at a time: the instance started is
 * unfinished, unless it ended at once (its steps' jobs are gone), and then the next one starts.
 * SQLite has one writer: nothing fires or ends between the reads and the writes.
 */
export function startHeldFires(sql: Sql, workflowIds: Iterable<number>, now: number): string[] {
  const groups: string[] = [];
  for (const workflowId of new Set(workflowIds)) {
    for (;;) {
      const held = sql(
        'SELECT fire_time FROM workflow_held_fires WHERE workflow_id = ? ORDER BY fire_time LIMIT 1',
      ).get(workflowId) as { fire_time: number } | undefined;
      if (!held) break;
      const unfinished = (
        sql(
          `SELECT count(*) AS n FROM workflow_instances INDEXED BY workflow_instances_running
           WHERE workflow_id = ? AND state IN ('running', 'paused')`,
        ).get(workflowId) as { n: number }
      ).n;
      if (!startsHeldFire({ unfinished, held: 1 })) break;
      sql('DELETE FROM workflow_held_fires WHERE workflow_id = ? AND fire_time = ?').run(
        workflowId,
        held.fire_time,
      );
      const workflow = sql('SELECT id, namespace, version, steps, job_id FROM workflows WHERE id = ?').get(
        workflowId,
      ) as Pick<WorkflowRow, 'id' | 'namespace' | 'version' | 'steps' | 'job_id'>;
      groups.push(...startInstance(sql, workflow, scheduledStart(held.fire_time, now), now).groups);
    }
  }
  return groups;
}

/**
 * Cancels the runs of these ids that are still queued or running, with every shard of a broadcast
 * whose first shard they are (their running attempts end `cancelled` with `error`). Answers them,
 * for afterRunsEnded.
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
     WHERE (id IN (SELECT value FROM json_each(@ids)) OR broadcast_run_id IN (SELECT value FROM json_each(@ids)))
       AND status IN ('queued', 'running')`,
  ).all({ ids: JSON.stringify(ids) }) as Array<{
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
    `SELECT i.namespace, i.steps, i.state, i.context, w.job_id, i.workflow_id FROM workflow_instances i
     JOIN workflows w ON w.id = i.workflow_id WHERE i.id = ?`,
  ).get(id) as
    | {
        namespace: string;
        steps: string;
        state: string;
        context: string;
        job_id: number;
        workflow_id: number;
      }
    | undefined;
}

/** An instance's steps with their runs' ends. */
function readSteps(sql: Sql, id: number): StepRow[] {
  return sql(
    `SELECT s.step_id, s.state, s.run_id, r.status AS run_status, r.result AS run_result, s.result, s.run_count,
       s.hand_skipped
     FROM workflow_steps s ${STEP_RUN_JOIN} WHERE s.instance_id = ?`,
  ).all(id) as StepRow[];
}

function readWorkflow(sql: Sql, id: number): WorkflowRecord | null {
  const row = sql(
    `SELECT ${WORKFLOW_COLUMNS} FROM workflows w JOIN jobs j ON j.id = w.job_id WHERE w.id = ?`,
  ).get(id) as WorkflowRow | undefined;
  return row ? workflowFromRow(row) : null;
}

/**
 * Starts an instance of `workflow` inside the caller's transaction: the instance, its steps, and
 * its root steps' runs. An idempotency key or a fire time that started one before answers that
 * instance (`created: false`) and writes nothing.
 */
export function startInstance(
  sql: Sql,
  workflow: Pick<WorkflowRow, 'id' | 'namespace' | 'version' | 'steps' | 'job_id'>,
  start: InstanceStart,
  now: number,
): { id: number; created: boolean; groups: string[] } {
  const key = start.idempotencyKey;
  if (key !== null) {
    const existing = sql(
      'SELECT id FROM workflow_instances WHERE workflow_id = ? AND idempotency_key = ?',
    ).get(workflow.id, key) as { id: number } | undefined;
    if (existing) return { id: existing.id, created: false, groups: [] };
  }
  const inserted = sql(
    `INSERT INTO workflow_instances (workflow_id, namespace, workflow_version, steps, state, context,
       idempotency_key, cause, scheduled_for, created_at, started_at)
     VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`,
  ).get(
    workflow.id,
    workflow.namespace,
    workflow.version,
    workflow.steps,
    JSON.stringify(start.context),
    key,
    start.cause,
    start.scheduledFor,
    now,
    now,
  ) as { id: number } | undefined;
  if (!inserted) {
    // The fire started its instance before (the unique key of workflow and fire time).
    const existing = sql('SELECT id FROM workflow_instances WHERE workflow_id = ? AND scheduled_for = ?').get(
      workflow.id,
      start.scheduledFor,
    ) as { id: number };
    return { id: existing.id, created: false, groups: [] };
  }
  const { id } = inserted;
  const steps = JSON.parse(workflow.steps) as CompiledStep[];
  const input = {
    instanceId: id,
    steps,
    context: start.context,
    jobs: stepJobs(sql, workflow.namespace, steps),
    carrier: { jobId: workflow.job_id },
  };
  const plan = planInstance({ ...input, rows: [], ended: [] });
  return {
    id,
    created: true,
    groups: writePlan(sql, input, workflow.namespace, plan, now, start.availableAt),
  };
}

function readInstance(sql: Sql, id: number): WorkflowInstanceRecord | null {
  const row = sql(
    `SELECT ${INSTANCE_COLUMNS} FROM workflow_instances i JOIN workflows w ON w.id = i.workflow_id WHERE i.id = ?`,
  ).get(id) as InstanceRow | undefined;
  if (!row) return null;
  const steps = sql(
    `SELECT ${STEP_READ_COLUMNS} FROM workflow_steps s ${STEP_RUN_JOIN} WHERE s.instance_id = ?`,
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

/** Writes what {@link planInstance} decided: the runs, map items, the steps' states, the context, the instance's end. Answers the groups. */
function writePlan(
  sql: Sql,
  /** The instance as planned: decided again when a run could not be queued ({@link runConflicts}). */
  input: PlanContext,
  namespace: string,
  plan: InstancePlan,
  now: number,
  /** When the runs become available (a scheduled start's jitter); default now. */
  availableAt = now,
): string[] {
  const instanceId = input.instanceId;
  const inserted = insertStepRuns(sql, instanceId, namespace, plan.runs, now, availableAt);
  const runIds = new Map<string, number>();
  for (const run of plan.runs) {
    const row = inserted.get(run.idempotencyKey);
    if (row && run.index === undefined) runIds.set(run.step, row.id);
  }
  const groups = [...inserted.values()].map((r) => r.group);
  for (const map of plan.maps) {
    const items = plan.runs.filter((r) => r.step === map.step && r.index !== undefined);
    writeMapItems(
      sql,
      instanceId,
      map.step,
      map.items,
      items.map((r) => inserted.get(r.idempotencyKey)?.id ?? null),
    );
  }
  const upsert = sql(
    `INSERT INTO workflow_steps (instance_id, step_id, state, run_id, result, error, run_count)
     VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (instance_id, step_id) DO UPDATE SET state = excluded.state,
       run_id = coalesce(excluded.run_id, workflow_steps.run_id),
       result = coalesce(excluded.result, workflow_steps.result),
       error = coalesce(excluded.error, workflow_steps.error),
       run_count = workflow_steps.run_count + excluded.run_count`,
  );
  // A step's run, or a map step's fan-out, counts one more run (its next keys count on from it).
  const fannedOut = new Set(plan.maps.map((m) => m.step));
  for (const [step, state] of plan.states) {
    const runId = runIds.get(step) ?? null;
    const error = plan.errors.get(step);
    upsert.run(
      instanceId,
      step,
      state,
      runId,
      plan.results.get(step) ?? null,
      error ? JSON.stringify(error) : null,
      runId !== null || fannedOut.has(step) ? 1 : 0,
    );
  }
  if (plan.context) {
    sql('UPDATE workflow_instances SET context = ? WHERE id = ?').run(
      JSON.stringify(plan.context),
      instanceId,
    );
  }
  if (plan.outcome) {
    sql(
      `UPDATE workflow_instances SET state = ?, finished_at = ? WHERE id = ? AND state IN ('running', 'paused')`,
    ).run(plan.outcome, now, instanceId);
  }
  // A run not queued (its key held by another run) fails its step: the instance is decided again.
  const conflicts = runConflicts(plan.runs, inserted);
  if (conflicts.length > 0) {
    const next = { ...input, context: plan.context ?? input.context };
    const replanned = planInstance({ ...next, rows: readSteps(sql, instanceId), ended: conflicts });
    groups.push(...writePlan(sql, next, namespace, replanned, now, availableAt));
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
  /** Workflows an instance of which ended here: their held fires may start. */
  const endedWorkflows: number[] = [];
  const instances = [...new Set(ended.map((e) => e.workflow_instance_id))].sort((a, b) => a - b);
  for (const instanceId of instances) {
    const instance = readForAdvance(sql, instanceId);
    // Ended, or its workflow was deleted. A paused instance advances, holding what becomes ready.
    if (instance?.state !== 'running' && instance?.state !== 'paused') continue;
    const stepRows = readSteps(sql, instanceId);
    const state = new Map(stepRows.map((r) => [r.step_id, r]));
    const steps = JSON.parse(instance.steps) as CompiledStep[];
    const maps = new Set(steps.filter((s) => s.map).map((s) => s.id));
    // Only the current run of a ready step ends it; anything else was decided already. A map
    // step's runs are its items' (store/sqlite/workflow-maps.ts).
    const mine = ended.filter(
      (e) => e.workflow_instance_id === instanceId && state.get(e.workflow_step)?.state === 'ready',
    );
    // In run id order: their context writes apply in that order (docs/workflows.md).
    const ends = mine
      .filter((e) => !maps.has(e.workflow_step) && state.get(e.workflow_step)?.run_id === e.id)
      .sort((a, b) => a.id - b.id);
    const itemEnds = mine.filter((e) => maps.has(e.workflow_step));
    if (ends.length === 0 && itemEnds.length === 0) continue;
    const input = {
      instanceId,
      steps,
      context: JSON.parse(instance.context) as JsonObject,
      rows: stepRows,
      jobs: stepJobs(sql, instance.namespace, steps, goneJobId),
      carrier: { jobId: instance.job_id },
      paused: instance.state === 'paused',
    };
    const items = endMapItems(sql, input, instance.namespace, itemEnds, now);
    groups.push(...items.groups);
    if (ends.length === 0 && items.ends.length === 0) continue;
    const plan = planInstance({
      ...input,
      ended: [...ends.map((e) => ({ step: e.workflow_step, end: endOf(e.status, e.result) })), ...items.ends],
    });
    groups.push(...writePlan(sql, input, instance.namespace, plan, now));
    if (plan.outcome) endedWorkflows.push(instance.workflow_id);
  }
  groups.push(...startHeldFires(sql, endedWorkflows, now));
  return groups;
}
