// Jobs on PostgreSQL (the Store contract's "Jobs" and "Secret params" sections): create, edit, read,
// list and delete jobs, and the key rotation's reads and writes of secret params. Batches arrive as
// one jsonb parameter read with jsonb_to_recordset, so that a batch of any size is one round trip.

import type { JsonObject } from '@kairos/client';
import type pg from 'pg';
import type { JobDefinition, JobRecord } from '../../core/job.ts';
import { retentionColumn } from '../../core/retention.ts';
import { KairosError } from '../../errors.ts';
import { DEFAULT_NAMESPACE } from '../namespaces.ts';
import { delayOf, dispatchValues, type JobRow, jobFromRow } from '../rows.ts';
import {
  checkedTable,
  type JobExpectation,
  type JobQuotaCheck,
  type SecretParamsRow,
  type SecretTable,
} from '../store.ts';
import { JOB_DELETED } from '../workflows.ts';
import type { PostgresConnection } from './connection.ts';
import { checkDependencyCycle, lockNamespaceEdits, NAMESPACE_OF_JOB } from './dependencies.ts';
import * as quotas from './quotas.ts';
import { buffersRuns, startBuffering } from './schedules.ts';
import { advanceWorkflows } from './workflows.ts';

const JOB_COLUMNS = `name, description, group_name, handler, params, trigger, delay_ms, retry, timeout_ms, priority, paused, schedule`;

/**
 * Insert a job. $1..$12 job values, $13 next_fire_at, $14 now, $15 dispatch, $16 schedule_to_start_ms,
 * $17 task, $18 whether its policy buffers runs, $19 retention, $20 owner, $21 revision, $22 secret params, $23 namespace.
 */
export const CREATE_JOB = `
  INSERT INTO jobs (${JOB_COLUMNS}, next_fire_at, created_at, updated_at, dispatch, schedule_to_start_ms, task, buffers, retention, owner, revision, secret_params, namespace)
  VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8::jsonb, $9, $10, $11, $12::jsonb, $13, $14, $14, $15::jsonb, $16, $17::jsonb, $18, $19::jsonb, $20, $21, $22::jsonb, $23)
  RETURNING *`;

/**
 * Replace a job's definition, bumping its version. $1..$12 job values, $13 next_fire_at, $14 now, $15 id,
 * $16 dispatch, $17 schedule_to_start_ms, $18 task; the edit's expectation: $19 version or null, $20
 * whether the next fire is checked, $21 the next fire it read; $22 retention, $23 owner, $24 revision, $25 secret params.
 */
export const UPDATE_JOB = `
  UPDATE jobs SET name = $1, description = $2, group_name = $3, handler = $4, params = $5::jsonb, trigger = $6::jsonb,
    delay_ms = $7, retry = $8::jsonb, timeout_ms = $9, priority = $10, paused = $11, schedule = $12::jsonb,
    next_fire_at = $13, updated_at = $14, dispatch = $16::jsonb, schedule_to_start_ms = $17, task = $18::jsonb,
    retention = $22::jsonb, owner = $23, revision = $24, secret_params = $25::jsonb, version = version + 1
  WHERE id = $15 AND ($19::integer IS NULL OR version = $19) AND (NOT $20::boolean OR next_fire_at IS NOT DISTINCT FROM $21::bigint)
  RETURNING *`;

/** Resume a paused job (Schedules): as UPDATE_JOB, only while it is still paused. */
export const RESUME_JOB = `${UPDATE_JOB.replace('WHERE id = $15', 'WHERE id = $15 AND paused')}`;

/** Jobs by name, one page. $1 group or null, $2 name to start after or null, $3 limit, $4 namespace or null. */
export const LIST_JOBS = `
  SELECT * FROM jobs WHERE ($1::text IS NULL OR group_name = $1) AND ($2::text IS NULL OR name > $2)
    AND ($4::text IS NULL OR namespace = $4) AND workflow_id IS NULL
  ORDER BY name LIMIT $3`;

/** Lock a job's queued and running runs (before deleting the job: runs first, as ending a run does). $1 job name. */
export const LOCK_ACTIVE_RUNS_OF_JOB = `
  SELECT r.id FROM runs r JOIN jobs j ON j.id = r.job_id
  WHERE j.name = $1 AND r.status IN ('queued', 'running') ORDER BY r.id FOR UPDATE OF r`;

/**
 * End job $1's queued and running workflow step runs (locked by the caller) as cancelled at $2 with
 * error $3, a running one's attempt with its row; answers their ids. The job is being deleted.
 */
export const CANCEL_STEP_RUNS_OF_JOB = `
  WITH active AS (
    SELECT id, status, attempt, worker_id, started_at FROM runs
    WHERE job_id = $1 AND workflow_instance_id IS NOT NULL AND status IN ('queued', 'running')),
  attempt_ended AS (
    INSERT INTO attempts (run_id, attempt, worker_id, status, started_at, finished_at, error)
    SELECT id, attempt, worker_id, 'cancelled', started_at, $2::bigint, $3::jsonb FROM active WHERE status = 'running')
  UPDATE runs r SET status = 'cancelled', finished_at = $2::bigint, error = $3::jsonb, deadline_at = NULL
  FROM active a WHERE r.id = a.id RETURNING r.id`;

export async function createJob(
  c: PostgresConnection,
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
        ? await c.transaction('createJob', async (client) => {
            // The namespace row locked: a concurrent create or edit in it waits here until this
            // one commits, then counts this job too (READ COMMITTED reads what committed before it),
            // and reads its `after` trigger when walking a chain.
            await lockNamespaceEdits(client, namespace);
            if (quota) await quotas.checkJobQuota(client, namespace, -1, quota);
            if (dependent) await checkDependencyCycle(client, namespace, job);
            return (await client.query<JobRow>(CREATE_JOB, values)).rows;
          })
        : await c.query<JobRow>('createJob', CREATE_JOB, values);
    await c.notify([{ type: 'jobs' }]);
    return jobFromRow(row!);
  } catch (error) {
    if ((error as { cause?: { code?: string } }).cause?.code === '23505') {
      throw new KairosError('JOB_NAME_TAKEN', `a job named ${JSON.stringify(job.name)} exists`);
    }
    throw error;
  }
}

export async function updateJob(
  c: PostgresConnection,
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
      ? await c.transaction('updateJob', async (client) => {
          // The namespace first, then the job (startBuffering), as every such write does.
          if (dependent) await lockDependencyEdit(client, id, job);
          const namespace = quota ? await quotas.lockNamespaceOfJob(client, id) : null;
          if (buffersRuns(job)) await startBuffering(client, id);
          const { rows } = await client.query<JobRow>(UPDATE_JOB, values);
          // Judged only when the edit applies; a refusal rolls it back.
          if (rows[0] && quota && namespace !== null)
            await quotas.checkJobQuota(client, namespace, id, quota);
          return rows;
        })
      : await c.query<JobRow>('updateJob', UPDATE_JOB, values);
  if (row) await c.notify([{ type: 'jobs' }]);
  return row ? jobFromRow(row) : null;
}

/** An edit of job `id` to an `after` trigger: its namespace locked, its chain checked (DEPENDENCY_CYCLE). */
export async function lockDependencyEdit(
  client: pg.PoolClient,
  id: number,
  job: JobDefinition,
): Promise<void> {
  const { rows } = await client.query<{ namespace: string }>(NAMESPACE_OF_JOB, [id]);
  if (!rows[0]) return;
  await lockNamespaceEdits(client, rows[0].namespace);
  await checkDependencyCycle(client, rows[0].namespace, job);
}

export async function getJob(
  c: PostgresConnection,
  name: string,
  options: { workflowJobs?: boolean } = {},
): Promise<JobRecord | null> {
  const [row] = await c.query<JobRow>(
    'getJob',
    // A workflow's own job (store/workflows.ts) is no job of the API's: its name is never found.
    'SELECT * FROM jobs WHERE name = $1 AND (workflow_id IS NULL OR $2::boolean)',
    [name, options.workflowJobs === true],
  );
  return row ? jobFromRow(row) : null;
}

export async function listJobs(
  c: PostgresConnection,
  filter: {
    namespace?: string | undefined;
    group?: string | undefined;
    after?: string | undefined;
    limit: number;
  },
): Promise<JobRecord[]> {
  const rows = await c.query<JobRow>('listJobs', LIST_JOBS, [
    filter.group ?? null,
    filter.after ?? null,
    filter.limit,
    filter.namespace ?? null,
  ]);
  return rows.map(jobFromRow);
}

export async function deleteJob(
  c: PostgresConnection,
  name: string,
  version?: number,
  now = Date.now(),
): Promise<boolean> {
  const deleted = await c.transaction('deleteJob', async (client) => {
    // Ending a run locks the run, then its job (finishAttempts); deleting the job must take its
    // locks in that order too, or a report arriving meanwhile deadlocks with the cascade.
    await client.query(LOCK_ACTIVE_RUNS_OF_JOB, [name]);
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
    const steps = await client.query<{ id: number }>(CANCEL_STEP_RUNS_OF_JOB, [job.id, now, JOB_DELETED]);
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
  await c.notify([
    { type: 'jobs' },
    ...[...new Set(deleted)].map((group) => ({ type: 'runs' as const, group })),
  ]);
  return true;
}

/**
 * Secret params: the reads and conditional writes of a key rotation (docs/security.md). The table
 * name is one of two constants (SECRET_TABLES), never input. `params::text` is jsonb's canonical
 * text, the same for the same value, so it serves as the row's params as read.
 */
const secrets = {
  /** Rows of a table whose params hold an envelope, after an id, in id order. $1 after, $2 limit. */
  secretParamsPage(table: SecretTable): string {
    return `SELECT id, params::text AS params FROM ${table}
    WHERE id > $1 AND params::text LIKE '%"$kairos:secret"%' ORDER BY id LIMIT $2`;
  },
  /** Replace a row's params while they are still as read (a concurrent edit wins). $1 id, $2 as read, $3 new. */
  replaceSecretParams(table: SecretTable): string {
    return `UPDATE ${table} SET params = $3::jsonb WHERE id = $1 AND params::text = $2 RETURNING id`;
  },
};

export async function secretParamsPage(
  c: PostgresConnection,
  table: SecretTable,
  afterId: number,
  limit: number,
): Promise<SecretParamsRow[]> {
  const rows = await c.query<{ id: number | string; params: string }>(
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

export async function replaceSecretParams(
  c: PostgresConnection,
  table: SecretTable,
  id: number,
  stored: string,
  params: JsonObject,
): Promise<boolean> {
  const rows = await c.query('replaceSecretParams', secrets.replaceSecretParams(checkedTable(table)), [
    id,
    stored,
    JSON.stringify(params),
  ]);
  return rows.length > 0;
}

/** The parameters of UPDATE_JOB (and RESUME_JOB), in their order. */
export function updateValues(
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

/** The edit's expectation as UPDATE_JOB's $19..$21. */
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
