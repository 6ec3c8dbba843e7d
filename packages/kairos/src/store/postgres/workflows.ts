import type { JsonObject } from '@kairos/client';
import type pg from 'pg';
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
import type { PostgresConnection } from './connection.ts';
import { checkJobQuota, checkQueuedRunsAfter, LOCK_NAMESPACE } from './quotas.ts';
import { cancelMapItems, endMapItems, replaceMapItems, settleMaps, writeMapItems } from './workflow-maps.ts';
import { insertStepRuns } from './workflow-runs.ts';

const WORKFLOW_COLUMNS =
  'id, namespace, name, description, version, steps::text AS steps, job_id, created_at, updated_at';
/** A workflow with its job's trigger, schedule, pause and next fire (`workflows w JOIN jobs j`). */
const WORKFLOW_JOB_COLUMNS = `w.id, w.namespace, w.name, w.description, w.version, w.steps::text AS steps, w.job_id,
  w.created_at, w.updated_at, j.trigger::text AS trigger, j.schedule::text AS schedule, j.paused, j.next_fire_at`;
const INSTANCE_COLUMNS = `i.id, i.workflow_id, w.name AS workflow_name, i.namespace, i.workflow_version, i.steps::text AS steps,
  i.state, i.context::text AS context, i.cause, i.scheduled_for, i.created_at, i.started_at, i.finished_at`;

/** The workflows part of the PostgreSQL store (store/workflows.ts has the contract). */
export class PostgresWorkflows implements WorkflowStore {
  constructor(
    private readonly c: PostgresConnection,
    /** Wakes the pollers of groups that got runs (NOTIFY). */
    private readonly wake: (groups: readonly string[]) => Promise<void>,
    /** What the end of runs sets off (store/postgres/schedules.ts), in the caller's transaction. */
    private readonly afterRunsEnded: (
      client: pg.PoolClient,
      runIds: readonly number[],
      now: number,
    ) => Promise<string[]>,
    /** Tells the trigger loops that a workflow's job (its trigger) changed (NOTIFY). */
    private readonly jobsChanged: () => Promise<void> = async () => {},
  ) {}

  async put(
    definition: WorkflowDefinition,
    namespace: string,
    now: number,
    quota?: JobQuotaCheck,
    schedule: WorkflowSchedule = { next: null },
  ) {
    let saved: Awaited<ReturnType<typeof this.putOnce>>;
    try {
      saved = await this.putOnce(definition, namespace, now, quota, schedule);
    } catch (error) {
      // Two creates of one name at once: the second's insert waited on the first's unique key and
      // failed; now the row exists, and the second is a replace.
      if ((error as { cause?: { code?: string } }).cause?.code !== '23505') throw error;
      saved = await this.putOnce(definition, namespace, now, quota, schedule);
    }
    await this.jobsChanged();
    return saved;
  }

  private async putOnce(
    definition: WorkflowDefinition,
    namespace: string,
    now: number,
    quota: JobQuotaCheck | undefined,
    schedule: WorkflowSchedule,
  ) {
    return this.c.transaction('putWorkflow', async (client) => {
      // With the quota, the namespace is locked before anything else (store/postgres/quotas.ts): a
      // concurrent create in it waits, then counts this workflow's job.
      if (quota || schedule.rateQuota) await client.query(LOCK_NAMESPACE, [namespace]);
      const steps = JSON.stringify(definition.steps);
      const trigger = JSON.stringify(definition.trigger);
      const policy = JSON.stringify(definition.schedule);
      const updated = await client.query<{ id: number; job_id: number }>(
        `UPDATE workflows SET description = $1, steps = $2::jsonb, version = version + 1, updated_at = $3
         WHERE namespace = $4 AND name = $5 RETURNING id, job_id`,
        [definition.description, steps, now, namespace, definition.name],
      );
      if (updated.rows[0]) {
        const { id, job_id: jobId } = updated.rows[0];
        // The job carries the trigger: the same trigger and schedule keep its next fire (and a pause
        // keeps it too); a new one starts from `next`. The version moves, so that an edit of the job
        // decided on what it was (a pause) is made anew (scheduler/job-service.ts).
        const job = await client.query<{ kept: boolean }>(
          'SELECT trigger = $2::jsonb AND schedule = $3::jsonb AS kept FROM jobs WHERE id = $1 FOR UPDATE',
          [jobId, trigger, policy],
        );
        const kept = job.rows[0]!.kept;
        if (!kept && schedule.rateQuota) await checkJobQuota(client, namespace, jobId, schedule.rateQuota);
        await client.query(
          `UPDATE jobs SET trigger = $2::jsonb, schedule = $3::jsonb, version = version + 1, updated_at = $4,
             next_fire_at = CASE WHEN $5::boolean THEN next_fire_at ELSE $6::bigint END WHERE id = $1`,
          [jobId, trigger, policy, now, kept, schedule.next],
        );
        return { workflow: (await readWorkflow(client, id))!, created: false };
      }
      if (quota) await checkJobQuota(client, namespace, -1, quota);
      const job = await client.query<{ id: number }>(
        `INSERT INTO jobs (name, group_name, handler, params, trigger, schedule, next_fire_at, retry, timeout_ms,
           priority, created_at, updated_at, namespace)
         VALUES ($1, 'default', 'workflow', '{}', $6::jsonb, $7::jsonb, $8, $2::jsonb, $3, 0, $4, $4, $5) RETURNING id`,
        [
          workflowJobName(namespace, definition.name),
          JSON.stringify(DEFAULT_RETRY),
          DEFAULT_TIMEOUT_MS,
          now,
          namespace,
          trigger,
          policy,
          schedule.next,
        ],
      );
      const jobId = job.rows[0]!.id;
      const row = await client.query<{ id: number }>(
        `INSERT INTO workflows (namespace, name, description, version, steps, job_id, created_at, updated_at)
         VALUES ($1, $2, $3, 1, $4::jsonb, $5, $6, $6) RETURNING id`,
        [namespace, definition.name, definition.description, steps, jobId, now],
      );
      await client.query('UPDATE jobs SET workflow_id = $1 WHERE id = $2', [row.rows[0]!.id, jobId]);
      return { workflow: (await readWorkflow(client, row.rows[0]!.id))!, created: true };
    });
  }

  async get(namespace: string, name: string): Promise<WorkflowRecord | null> {
    const [row] = await this.c.query<WorkflowRow>(
      'getWorkflow',
      `SELECT ${WORKFLOW_JOB_COLUMNS} FROM workflows w JOIN jobs j ON j.id = w.job_id
       WHERE w.namespace = $1 AND w.name = $2`,
      [namespace, name],
    );
    return row ? workflowFromRow(row) : null;
  }

  async list(filter: { namespace?: string | undefined; after?: string | undefined; limit: number }) {
    const rows = await this.c.query<WorkflowRow>(
      'listWorkflows',
      `SELECT ${WORKFLOW_JOB_COLUMNS} FROM workflows w JOIN jobs j ON j.id = w.job_id
       WHERE ($1::text IS NULL OR w.namespace = $1) AND ($2::text IS NULL OR w.name > $2)
       ORDER BY w.name, w.namespace LIMIT $3`,
      [filter.namespace ?? null, filter.after ?? null, filter.limit],
    );
    return rows.map(workflowFromRow);
  }

  async delete(namespace: string, name: string): Promise<boolean> {
    return this.c.transaction('deleteWorkflow', async (client) => {
      // Runs first, then instances, as ending a step run takes them (see advanceWorkflows).
      await client.query(
        `SELECT r.id FROM runs r JOIN workflow_instances i ON i.id = r.workflow_instance_id
         JOIN workflows w ON w.id = i.workflow_id
         WHERE w.namespace = $1 AND w.name = $2 AND r.status IN ('queued', 'running') ORDER BY r.id FOR UPDATE OF r`,
        [namespace, name],
      );
      const { rows } = await client.query<{ id: number; job_id: number }>(
        'SELECT id, job_id FROM workflows WHERE namespace = $1 AND name = $2 FOR UPDATE',
        [namespace, name],
      );
      if (!rows[0]) return false;
      await client.query(
        detachJobStepRuns((name) => (name === 'workflow' ? '$1' : '$2')),
        [rows[0].id, rows[0].job_id],
      );
      await client.query('DELETE FROM workflows WHERE id = $1', [rows[0].id]);
      await client.query('DELETE FROM jobs WHERE id = $1', [rows[0].job_id]);
      return true;
    });
  }

  async start(
    namespace: string,
    name: string,
    request: { context: JsonObject; idempotencyKey?: string | undefined },
    now: number,
    maxQueuedRuns: number | null = null,
  ): Promise<WorkflowInstanceRecord | null> {
    const started = await this.c.transaction('startWorkflow', async (client) => {
      // With the quota, the namespace is locked before anything else (store/postgres/quotas.ts).
      if (maxQueuedRuns !== null) await client.query(LOCK_NAMESPACE, [namespace]);
      const workflow = (
        await client.query<WorkflowRow>(
          `SELECT ${WORKFLOW_COLUMNS} FROM workflows WHERE namespace = $1 AND name = $2 FOR SHARE`,
          [namespace, name],
        )
      ).rows[0];
      if (!workflow) return null;
      const started = await startInstance(
        client,
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
      if (maxQueuedRuns !== null) await checkQueuedRunsAfter(client, namespace, maxQueuedRuns, groups.length);
      return { id, groups };
    });
    if (!started) return null;
    await this.wake(started.groups);
    return this.getInstance(started.id);
  }

  async mapItems(
    instanceId: number,
    step: string,
    filter: { from: number; limit: number; state?: MapItemState | undefined },
  ): Promise<MapItemsPage | null> {
    const [instance] = await this.c.query<{ steps: string }>(
      'workflowMapItems',
      'SELECT steps::text AS steps FROM workflow_instances WHERE id = $1',
      [instanceId],
    );
    if (!instance) return null;
    checkMapStep(instanceId, instance.steps, step);
    // A range of the items' primary key, or of workflow_map_items_state with a state.
    const rows = await this.c.query<MapItemRow>(
      'workflowMapItems',
      `SELECT m.idx, m.state, m.run_id, r.attempt AS run_attempt, m.result::text AS result, r.error::text AS run_error
       FROM workflow_map_items m LEFT JOIN runs r ON r.id = m.run_id
       WHERE m.instance_id = $1 AND m.step_id = $2 AND m.idx >= $3 AND ($4::text IS NULL OR m.state = $4)
       ORDER BY m.idx LIMIT $5`,
      [instanceId, step, filter.from, filter.state ?? null, filter.limit],
    );
    const counts = await this.c.query<{ state: string; n: string }>(
      'workflowMapItems',
      'SELECT state, count(*) AS n FROM workflow_map_items WHERE instance_id = $1 AND step_id = $2 GROUP BY state',
      [instanceId, step],
    );
    return { items: rows.map(mapItemFromRow), counts: mapItemCounts(counts) };
  }

  async getInstance(id: number): Promise<WorkflowInstanceRecord | null> {
    const [row] = await this.c.query<InstanceRow>(
      'getWorkflowInstance',
      `SELECT ${INSTANCE_COLUMNS} FROM workflow_instances i JOIN workflows w ON w.id = i.workflow_id WHERE i.id = $1`,
      [id],
    );
    if (!row) return null;
    const steps = await this.c.query<StepReadRow>(
      'getWorkflowInstance',
      `SELECT ${STEP_READ_COLUMNS} FROM workflow_steps s ${STEP_RUN_JOIN} WHERE s.instance_id = $1`,
      [id],
    );
    return instanceFromRow(row, steps);
  }

  async listInstances(workflowId: number, before: number | undefined, limit: number) {
    const rows = await this.c.query<InstanceRow>(
      'listWorkflowInstances',
      `SELECT ${INSTANCE_COLUMNS} FROM workflow_instances i JOIN workflows w ON w.id = i.workflow_id
       WHERE i.workflow_id = $1 AND ($2::bigint IS NULL OR i.id < $2) ORDER BY i.id DESC LIMIT $3`,
      [workflowId, before ?? null, limit],
    );
    const steps = await this.c.query<StepReadRow & { instance_id: number }>(
      'listWorkflowInstances',
      `SELECT s.instance_id, ${STEP_READ_COLUMNS} FROM workflow_steps s ${STEP_RUN_JOIN}
       WHERE s.instance_id = ANY($1::bigint[])`,
      [rows.map((r) => r.id)],
    );
    return rows.map((row) =>
      instanceFromRow(
        row,
        steps.filter((s) => s.instance_id === row.id),
      ),
    );
  }

  async cancelInstance(id: number, now: number): Promise<WorkflowInstanceRecord | null> {
    const groups = await this.c.transaction('cancelWorkflowInstance', async (client) => {
      const cancelled = await cancelInstanceIn(
        client,
        id,
        now,
        CANCELLED_WITH_INSTANCE,
        this.afterRunsEnded,
        'throw',
      );
      if (cancelled === null) return null;
      // The workflow's oldest held fire starts when this was its last unfinished instance.
      return [...cancelled.groups, ...(await startHeldFires(client, [cancelled.workflowId], now))];
    });
    if (groups === null) return null;
    await this.wake(groups);
    return this.getInstance(id);
  }

  async repairInstance(
    id: number,
    action: WorkflowRepair,
    now: number,
    maxQueuedRuns: number | null = null,
  ): Promise<WorkflowInstanceRecord | null> {
    const groups = await this.c.transaction('repairWorkflowInstance', async (client) => {
      // With the quota, the instance's namespace (which never changes) is locked before anything
      // else, as every quota-checked write locks it (store/postgres/quotas.ts).
      let namespace: string | null = null;
      if (maxQueuedRuns !== null) {
        const { rows } = await client.query<{ namespace: string }>(
          'SELECT namespace FROM workflow_instances WHERE id = $1',
          [id],
        );
        if (!rows[0]) return null;
        namespace = rows[0].namespace;
        await client.query(LOCK_NAMESPACE, [namespace]);
      }
      // A re-run or a skip may cancel step runs: the instance's active runs are locked first, then
      // the instance, the order in which ending a step run locks them (as cancelInstance does). A
      // report racing the repair either ended its run before (the repair then reads its step ended)
      // or finds it cancelled after, and changes nothing.
      if (action.kind === 'rerun' || action.kind === 'skip') {
        await client.query(
          `SELECT id FROM runs WHERE workflow_instance_id = $1 AND status IN ('queued', 'running')
           ORDER BY id FOR UPDATE`,
          [id],
        );
      }
      const instance = await lockInstance(client, id);
      if (!instance) return null;
      const steps = JSON.parse(instance.steps) as CompiledStep[];
      const input = {
        instanceId: id,
        steps,
        context: JSON.parse(instance.context) as JsonObject,
        rows: await readSteps(client, id),
        jobs: await stepJobs(client, instance.namespace, steps),
        carrier: { jobId: instance.job_id },
      };
      const repair = planRepair({
        ...input,
        state: instance.state as WorkflowInstanceRecord['state'],
        action,
      });
      if (!repair) return [];
      const written = await writeRepair(client, input, instance.namespace, repair, now, this.afterRunsEnded);
      // A repair queues runs at an operator's request, as a start does: judged, and a refusal rolls
      // the whole repair back (429 QUOTA_EXCEEDED, nothing written).
      if (namespace !== null && maxQueuedRuns !== null)
        await checkQueuedRunsAfter(client, namespace, maxQueuedRuns, written.queued);
      return written.groups;
    });
    if (groups === null) return null;
    await this.wake(groups);
    return this.getInstance(id);
  }
}

/**
 * Cancels an unfinished instance inside the caller's transaction (the instance cancel API, and a
 * newer fire's `cancel-previous`): its queued and running step runs are cancelled with `error`,
 * its waiting and ready steps become `cancelled`, and it ends `cancelled`. The step runs are locked
 * first, then the instance, the order in which ending a step run locks them. An instance that
 * already ended: WORKFLOW_INSTANCE_FINISHED (`finished: 'throw'`), or nothing (`'skip'`, a fire
 * that read it unfinished before an end committed). Null when there is none. Starts no held fire:
 * the caller decides.
 */
export async function cancelInstanceIn(
  client: pg.PoolClient,
  id: number,
  now: number,
  error: string,
  afterRunsEnded: (client: pg.PoolClient, runIds: readonly number[], now: number) => Promise<string[]>,
  finished: 'throw' | 'skip',
): Promise<{ workflowId: number; groups: string[] } | null> {
  await client.query(
    `SELECT id FROM runs WHERE workflow_instance_id = $1 AND status IN ('queued', 'running')
     ORDER BY id FOR UPDATE`,
    [id],
  );
  const instance = (
    await client.query<{ state: string; workflow_id: number }>(
      'SELECT state, workflow_id FROM workflow_instances WHERE id = $1 FOR UPDATE',
      [id],
    )
  ).rows[0];
  if (!instance) return null;
  if (instance.state !== 'running' && instance.state !== 'paused') {
    if (finished === 'skip') return null;
    throw new KairosError(
      'WORKFLOW_INSTANCE_FINISHED',
      `workflow instance ${id} already ended (${instance.state})`,
    );
  }
  await client.query(`UPDATE workflow_instances SET state = 'cancelled', finished_at = $2 WHERE id = $1`, [
    id,
    now,
  ]);
  await client.query(
    `UPDATE workflow_steps SET state = 'cancelled' WHERE instance_id = $1 AND state IN ('waiting', 'ready')`,
    [id],
  );
  await cancelMapItems(client, id);
  // The instance's active runs read again, now that it is locked: an end of a step run that held
  // one of the runs locked above has committed meanwhile and may have queued a next step's run,
  // which the first read did not see (it would run after the cancel).
  const cancelled = await client.query<{ id: number }>(
    `WITH active AS (
       SELECT id, status, attempt, worker_id, started_at FROM runs
       WHERE workflow_instance_id = $1 AND status IN ('queued', 'running')),
     attempt_ended AS (
       INSERT INTO attempts (run_id, attempt, worker_id, status, started_at, finished_at, error)
       SELECT id, attempt, worker_id, 'cancelled', started_at, $2::bigint, $3::jsonb FROM active WHERE status = 'running')
     UPDATE runs r SET status = 'cancelled', finished_at = $2::bigint, error = $3::jsonb, deadline_at = NULL
     FROM active a WHERE r.id = a.id AND r.status IN ('queued', 'running') RETURNING r.id`,
    [id, now, error],
  );
  const groups = await afterRunsEnded(
    client,
    cancelled.rows.map((r) => r.id),
    now,
  );
  return { workflowId: instance.workflow_id, groups };
}

/** The oldest held fire of a workflow, locked. $1 workflow id. */
const OLDEST_HELD_FIRE = `
  SELECT fire_time FROM workflow_held_fires WHERE workflow_id = $1 ORDER BY fire_time LIMIT 1 FOR UPDATE`;

/** How many instances of a workflow are unfinished (workflow_instances_running). $1 workflow id. */
const UNFINISHED_INSTANCES = `
  SELECT count(*)::int AS n FROM workflow_instances WHERE workflow_id = $1 AND state IN ('running', 'paused')`;

/**
 * Starts the held fires of these workflows (docs/workflows.md#triggers) in the caller's
 * transaction, the one that ended an instance: while a workflow has held fires and no unfinished
 * instance, its oldest held fire is deleted and its instance started (cause `schedule`, the held
 * fire's time; its root steps' runs available now). One at a time: the instance started is
 * unfinished, unless it ended at once (its steps' jobs are gone), and then the next one starts.
 *
 * Why it starts each held fire once, and never leaves one behind:
 * - the oldest held fire's row is locked first: two transactions that end the last two unfinished
 *   instances of a workflow queue on it, and the second counts the unfinished instances (a new
 *   statement, a new snapshot) after the first committed, so one of them sees none left; a second
 *   that waited on a row the first deleted reads no row, and the instance the first started is
 *   unfinished anyway;
 * - a fire that holds a fire locks the unfinished instances first (FOR SHARE, in fireWorkflow): an
 *   end that locked its instance before makes the fire wait and count again after it; an end that
 *   comes after waits for the fire's commit and reads its held fire here;
 * - the instance's unique key (workflow, fire time) keeps one instance per fire on top.
 * Locks in order: instances (the caller's), then held fires, as the fire takes them after its job.
 */
export async function startHeldFires(
  client: pg.PoolClient,
  workflowIds: Iterable<number>,
  now: number,
): Promise<string[]> {
  const groups: string[] = [];
  for (const workflowId of [...new Set(workflowIds)].sort((a, b) => a - b)) {
    for (;;) {
      const held = (await client.query<{ fire_time: number }>(OLDEST_HELD_FIRE, [workflowId])).rows[0];
      if (!held) break;
      const unfinished = (await client.query<{ n: number }>(UNFINISHED_INSTANCES, [workflowId])).rows[0]!.n;
      if (!startsHeldFire({ unfinished, held: 1 })) break;
      await client.query('DELETE FROM workflow_held_fires WHERE workflow_id = $1 AND fire_time = $2', [
        workflowId,
        held.fire_time,
      ]);
      const workflow = (
        await client.query<Pick<WorkflowRow, 'id' | 'namespace' | 'version' | 'steps' | 'job_id'>>(
          'SELECT id, namespace, version, steps::text AS steps, job_id FROM workflows WHERE id = $1',
          [workflowId],
        )
      ).rows[0]!;
      groups.push(
        ...(await startInstance(client, workflow, scheduledStart(held.fire_time, now), now)).groups,
      );
    }
  }
  return groups;
}

/** An instance's row, locked (FOR UPDATE), with what advancing it needs. */
async function lockInstance(client: pg.PoolClient, id: number) {
  const { rows } = await client.query<{
    namespace: string;
    steps: string;
    state: string;
    context: string;
    job_id: number;
    workflow_id: number;
  }>(
    `SELECT i.namespace, i.steps::text AS steps, i.state, i.context::text AS context, w.job_id, i.workflow_id
     FROM workflow_instances i JOIN workflows w ON w.id = i.workflow_id WHERE i.id = $1 FOR UPDATE OF i`,
    [id],
  );
  return rows[0];
}

/** An instance's steps with their runs' ends (read with the instance locked). */
async function readSteps(client: pg.PoolClient, id: number): Promise<StepRow[]> {
  const { rows } = await client.query<StepRow>(
    `SELECT s.step_id, s.state, s.run_id, r.status AS run_status, r.result::text AS run_result,
       s.result::text AS result, s.run_count, s.hand_skipped
     FROM workflow_steps s ${STEP_RUN_JOIN} WHERE s.instance_id = $1`,
    [id],
  );
  return rows;
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
async function writeRepair(
  client: pg.PoolClient,
  input: Omit<MapInput, 'paused'>,
  namespace: string,
  repair: RepairPlan,
  now: number,
  afterRunsEnded: (client: pg.PoolClient, runIds: readonly number[], now: number) => Promise<string[]>,
): Promise<{ groups: string[]; queued: number }> {
  const id = input.instanceId;
  const maps = new Set(input.steps.filter((s) => s.map).map((s) => s.id));
  const skippedMap = repair.handSkipped !== null && maps.has(repair.handSkipped) ? repair.handSkipped : null;
  const itemRunIds = await replaceMapItems(
    client,
    id,
    repair.reset.map((r) => r.step).filter((s) => maps.has(s)),
    skippedMap,
  );
  if (repair.reset.length > 0) {
    await client.query(
      `UPDATE workflow_steps s SET state = 'waiting', run_id = NULL, result = NULL, error = NULL, hand_skipped = false,
         run_count = x.run_count
       FROM jsonb_to_recordset($2::jsonb) AS x(step_id text, run_count int)
       WHERE s.instance_id = $1 AND s.step_id = x.step_id`,
      [id, JSON.stringify(repair.reset.map((r) => ({ step_id: r.step, run_count: r.runCount })))],
    );
  }
  const groups = await writePlan(
    client,
    { ...input, paused: repair.state === 'paused' },
    namespace,
    repair.plan,
    now,
  );
  if (repair.handSkipped !== null) {
    await client.query(
      'UPDATE workflow_steps SET hand_skipped = true, result = NULL, error = NULL WHERE instance_id = $1 AND step_id = $2',
      [id, repair.handSkipped],
    );
  }
  await client.query('UPDATE workflow_instances SET state = $2, finished_at = $3 WHERE id = $1', [
    id,
    repair.state,
    repair.ended ? now : null,
  ]);
  if (repair.state === 'running' && maps.size > 0) {
    const rows = await readSteps(client, id);
    const ready = rows.filter((r) => r.state === 'ready' && maps.has(r.step_id)).map((r) => r.step_id);
    const mapInput = { ...input, rows, paused: false };
    const settled = await settleMaps(client, mapInput, namespace, ready, now);
    groups.push(...settled.groups);
    if (settled.ends.length > 0) {
      const plan = planInstance({ ...mapInput, ended: settled.ends });
      groups.push(...(await writePlan(client, mapInput, namespace, plan, now)));
    }
  }
  // The runs this repair queued (one group per run): what the namespace's maxQueuedRuns judges.
  const queued = groups.length;
  // The replaced runs, with every shard of a broadcast whose first shard they are.
  const cancel = [...repair.cancel, ...itemRunIds];
  if (cancel.length > 0) groups.push(...(await cancelReplaced(client, cancel, now, afterRunsEnded)));
  // A repair that ended the instance (a skip, a resume with nothing left to run) starts the
  // workflow's oldest held fire when it was the last unfinished one.
  const after = (
    await client.query<{ state: string; workflow_id: number }>(
      'SELECT state, workflow_id FROM workflow_instances WHERE id = $1',
      [id],
    )
  ).rows[0]!;
  if (after.state !== 'running' && after.state !== 'paused') {
    groups.push(...(await startHeldFires(client, [after.workflow_id], now)));
  }
  return { groups, queued };
}

/** Cancels the runs a repair replaced; their ends advance nothing (their steps no longer hold them). */
async function cancelReplaced(
  client: pg.PoolClient,
  cancel: readonly number[],
  now: number,
  afterRunsEnded: (client: pg.PoolClient, runIds: readonly number[], now: number) => Promise<string[]>,
): Promise<string[]> {
  const cancelled = await client.query<{ id: number }>(
    `WITH active AS (
       SELECT id, status, attempt, worker_id, started_at FROM runs
       WHERE (id = ANY($1::bigint[]) OR broadcast_run_id = ANY($1::bigint[])) AND status IN ('queued', 'running')),
     attempt_ended AS (
       INSERT INTO attempts (run_id, attempt, worker_id, status, started_at, finished_at, error)
       SELECT id, attempt, worker_id, 'cancelled', started_at, $2::bigint, $3::jsonb FROM active WHERE status = 'running')
     UPDATE runs r SET status = 'cancelled', finished_at = $2::bigint, error = $3::jsonb, deadline_at = NULL
     FROM active a WHERE r.id = a.id AND r.status IN ('queued', 'running') RETURNING r.id`,
    [cancel, now, REPLACED_BY_REPAIR],
  );
  return afterRunsEnded(
    client,
    cancelled.rows.map((r) => r.id),
    now,
  );
}

type WorkflowSchedule = { next: number | null; rateQuota?: JobQuotaCheck | undefined };

async function readWorkflow(client: pg.PoolClient, id: number): Promise<WorkflowRecord | null> {
  const { rows } = await client.query<WorkflowRow>(
    `SELECT ${WORKFLOW_JOB_COLUMNS} FROM workflows w JOIN jobs j ON j.id = w.job_id WHERE w.id = $1`,
    [id],
  );
  return rows[0] ? workflowFromRow(rows[0]) : null;
}

/**
 * Starts an instance of `workflow` inside the caller's transaction: the instance, its steps, and
 * its root steps' runs. An idempotency key or a fire time that started one before answers that
 * instance (`created: false`) and writes nothing; a concurrent start with the same key or fire
 * time waits on the unique key, then inserts nothing.
 */
export async function startInstance(
  client: pg.PoolClient,
  workflow: Pick<WorkflowRow, 'id' | 'namespace' | 'version' | 'steps' | 'job_id'>,
  start: InstanceStart,
  now: number,
): Promise<{ id: number; created: boolean; groups: string[] }> {
  const inserted = await client.query<{ id: number }>(
    `INSERT INTO workflow_instances (workflow_id, namespace, workflow_version, steps, state, context,
       idempotency_key, cause, scheduled_for, created_at, started_at)
     VALUES ($1, $2, $3, $4::jsonb, 'running', $5::jsonb, $6, $7, $8, $9, $9)
     ON CONFLICT DO NOTHING RETURNING id`,
    [
      workflow.id,
      workflow.namespace,
      workflow.version,
      workflow.steps,
      JSON.stringify(start.context),
      start.idempotencyKey,
      start.cause,
      start.scheduledFor,
      now,
    ],
  );
  if (!inserted.rows[0]) {
    const existing = await client.query<{ id: number }>(
      `SELECT id FROM workflow_instances WHERE workflow_id = $1
         AND (idempotency_key = $2 OR scheduled_for = $3::bigint)`,
      [workflow.id, start.idempotencyKey, start.scheduledFor],
    );
    return { id: existing.rows[0]!.id, created: false, groups: [] };
  }
  const id = inserted.rows[0].id;
  const steps = JSON.parse(workflow.steps) as CompiledStep[];
  const input = {
    instanceId: id,
    steps,
    context: start.context,
    jobs: await stepJobs(client, workflow.namespace, steps),
    carrier: { jobId: workflow.job_id },
  };
  const plan = planInstance({ ...input, rows: [], ended: [] });
  const groups = await writePlan(client, input, workflow.namespace, plan, now, start.availableAt);
  return { id, created: true, groups };
}

/** The jobs an instance's `job` steps name, as they are now. */
async function stepJobs(
  client: pg.PoolClient,
  namespace: string,
  steps: readonly CompiledStep[],
  goneJobId: number | null = null,
): Promise<Map<string, StepJob>> {
  const names = stepJobNames(steps);
  if (names.length === 0) return new Map();
  const { rows } = await client.query<{
    id: number;
    name: string;
    group_name: string;
    handler: string;
    params: string;
    retry: string;
    timeout_ms: number;
    priority: number;
    paused: boolean;
  }>(
    `SELECT id, name, group_name, handler, params::text AS params, retry::text AS retry, timeout_ms, priority, paused FROM jobs
     WHERE namespace = $1 AND name = ANY($2::text[]) AND workflow_id IS NULL AND id IS DISTINCT FROM $3::bigint`,
    [namespace, names, goneJobId],
  );
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
        paused: r.paused,
      },
    ]),
  );
}

/**
 * Writes what {@link planInstance} decided: the runs (one statement), the items of map steps, the
 * steps' states (one statement), the context, the instance's end. Answers the groups that got runs.
 */
async function writePlan(
  client: pg.PoolClient,
  /** The instance as planned: decided again when a run could not be queued ({@link runConflicts}). */
  input: PlanContext,
  namespace: string,
  plan: InstancePlan,
  now: number,
  /** When the runs become available (a scheduled start's jitter); default now. */
  availableAt = now,
): Promise<string[]> {
  const instanceId = input.instanceId;
  const inserted = await insertStepRuns(client, instanceId, namespace, plan.runs, now, availableAt);
  const runIds = new Map<string, number>();
  for (const run of plan.runs) {
    const row = inserted.get(run.idempotencyKey);
    if (row && run.index === undefined) runIds.set(run.step, row.id);
  }
  const groups = [...inserted.values()].map((r) => r.group);
  for (const map of plan.maps) {
    const items = plan.runs.filter((r) => r.step === map.step && r.index !== undefined);
    await writeMapItems(
      client,
      instanceId,
      map.step,
      map.items,
      items.map((r) => inserted.get(r.idempotencyKey)?.id ?? null),
    );
  }
  // A step's run, or a map step's fan-out, counts one more run (its next keys count on from it).
  const fannedOut = new Set(plan.maps.map((m) => m.step));
  await client.query(
    `INSERT INTO workflow_steps (instance_id, step_id, state, run_id, result, error, run_count)
     SELECT $1, x.step_id, x.state, x.run_id, x.result::jsonb, x.error, x.run_count
     FROM jsonb_to_recordset($2::jsonb)
       AS x(step_id text, state text, run_id bigint, result text, error jsonb, run_count int)
     ON CONFLICT (instance_id, step_id) DO UPDATE SET state = excluded.state,
       run_id = coalesce(excluded.run_id, workflow_steps.run_id),
       result = coalesce(excluded.result, workflow_steps.result),
       error = coalesce(excluded.error, workflow_steps.error),
       run_count = workflow_steps.run_count + excluded.run_count`,
    [
      instanceId,
      JSON.stringify(
        [...plan.states].map(([step, state]) => ({
          step_id: step,
          state,
          run_id: runIds.get(step) ?? null,
          result: plan.results.get(step) ?? null,
          error: plan.errors.get(step) ?? null,
          run_count: runIds.has(step) || fannedOut.has(step) ? 1 : 0,
        })),
      ),
    ],
  );
  if (plan.context) {
    await client.query('UPDATE workflow_instances SET context = $1::jsonb WHERE id = $2', [
      JSON.stringify(plan.context),
      instanceId,
    ]);
  }
  if (plan.outcome) {
    await client.query(
      `UPDATE workflow_instances SET state = $1, finished_at = $2 WHERE id = $3 AND state IN ('running', 'paused')`,
      [plan.outcome, now, instanceId],
    );
  }
  // A run not queued (its key held by another run) fails its step: the instance is decided again.
  const conflicts = runConflicts(plan.runs, inserted);
  if (conflicts.length > 0) {
    const next = { ...input, context: plan.context ?? input.context };
    const replanned = planInstance({ ...next, rows: await readSteps(client, instanceId), ended: conflicts });
    groups.push(...(await writePlan(client, next, namespace, replanned, now, availableAt)));
  }
  return groups;
}

/**
 * Advances the instances of step runs that this transaction ended (see store/workflows.ts), inside
 * it. Each instance's row is locked (FOR UPDATE, in id order) before its steps are read: a second
 * transaction ending another step run of the instance waits, then reads what the first wrote (READ
 * COMMITTED takes a new snapshot per statement), so a step is decided and queued once. Answers the
 * groups that got runs.
 */
export async function advanceWorkflows(
  client: pg.PoolClient,
  runIds: readonly number[],
  now: number,
  /** A job this transaction deletes: a step naming it fails without a run, as for a missing job. */
  goneJobId: number | null = null,
): Promise<string[]> {
  if (runIds.length === 0) return [];
  const { rows } = await client.query<{
    id: number;
    workflow_instance_id: number;
    workflow_step: string;
    status: string;
    result: string | null;
    broadcast_run_id: number | null;
  }>(
    `SELECT id, workflow_instance_id, workflow_step, status, result::text AS result, broadcast_run_id FROM runs
     WHERE id = ANY($1::bigint[]) AND workflow_instance_id IS NOT NULL
       AND status IN ('succeeded', 'failed', 'timed_out', 'cancelled')`,
    [runIds],
  );
  // A broadcast step ends once, when its last shard ends, as its first shard (store/postgres/broadcasts.ts).
  const ended = rows.filter((r) => r.broadcast_run_id === null);
  if (ended.length < rows.length) {
    for (const b of await endedBroadcasts(
      client,
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
  /** Workflows an instance of which ended here: their held fires may start, once every instance is locked. */
  const endedWorkflows: number[] = [];
  const instances = [...new Set(ended.map((e) => e.workflow_instance_id))].sort((a, b) => a - b);
  for (const instanceId of instances) {
    const instance = await lockInstance(client, instanceId);
    // Ended, or its workflow was deleted. A paused instance advances, holding what becomes ready.
    if (instance?.state !== 'running' && instance?.state !== 'paused') continue;
    const stepRows = await readSteps(client, instanceId);
    const state = new Map(stepRows.map((r) => [r.step_id, r]));
    const steps = JSON.parse(instance.steps) as CompiledStep[];
    const maps = new Set(steps.filter((s) => s.map).map((s) => s.id));
    // Only the current run of a ready step ends it; anything else was decided already. A map
    // step's runs are its items' (store/postgres/workflow-maps.ts).
    const mine = ended.filter(
      (e) => e.workflow_instance_id === instanceId && state.get(e.workflow_step)?.state === 'ready',
    );
    // In run id order: their context writes apply in that order (docs/workflows.md).
    const ends = mine
      .filter((e) => !maps.has(e.workflow_step) && state.get(e.workflow_step)?.run_id === e.id)
      .sort((a, b) => a.id - b.id);
    const itemEnds = mine.filter((e) => maps.has(e.workflow_step));
    if (ends.length === 0 && itemEnds.length === 0) continue;
    const jobs = await stepJobs(client, instance.namespace, steps, goneJobId);
    const input = {
      instanceId,
      steps,
      context: JSON.parse(instance.context) as JsonObject,
      rows: stepRows,
      jobs,
      carrier: { jobId: instance.job_id },
      paused: instance.state === 'paused',
    };
    const items = await endMapItems(client, input, instance.namespace, itemEnds, now);
    groups.push(...items.groups);
    if (ends.length === 0 && items.ends.length === 0) continue;
    const plan = planInstance({
      ...input,
      ended: [...ends.map((e) => ({ step: e.workflow_step, end: endOf(e.status, e.result) })), ...items.ends],
    });
    groups.push(...(await writePlan(client, input, instance.namespace, plan, now)));
    if (plan.outcome) endedWorkflows.push(instance.workflow_id);
  }
  groups.push(...(await startHeldFires(client, endedWorkflows, now)));
  return groups;
}
