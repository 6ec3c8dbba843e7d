// Jobs and their secret params on SQLite (the Store contract's Jobs and Secret params sections).

import type { JsonObject } from '@kairos/client';
import type { JobDefinition, JobRecord } from '../../core/job.ts';
import { retentionColumn } from '../../core/retention.ts';
import { KairosError } from '../../errors.ts';
import { DEFAULT_NAMESPACE } from '../namespaces.ts';
import { delayOf, dispatchValues, type JobRow, jobFromRow, json } from '../rows.ts';
import {
  checkedTable,
  type JobExpectation,
  type JobQuotaCheck,
  type SecretParamsRow,
  type SecretTable,
} from '../store.ts';
import { JOB_DELETED } from '../workflows.ts';
import type { SqliteConnection } from './connection.ts';
import { checkDependencyCycle } from './dependencies.ts';
import * as hot from './hot-statements.ts';
import * as quotas from './quotas.ts';
import * as secrets from './secret-queries.ts';
import { advanceWorkflows } from './workflows.ts';

/**
 * Replace a job's definition and next fire time, bumping its version. Parameters: job values,
 * next_fire_at, now, dispatch values, id, then the expectation (expectationValues): version or
 * null, whether the next fire is checked, the next fire read.
 */
export const UPDATE_JOB = `UPDATE jobs SET name = ?, description = ?, group_name = ?, handler = ?, params = ?, trigger = ?,
    delay_ms = ?, retry = ?, timeout_ms = ?, priority = ?, paused = ?, schedule = ?, next_fire_at = ?, updated_at = ?,
    dispatch = ?, schedule_to_start_ms = ?, task = ?, retention = ?, owner = ?, revision = ?, secret_params = ?, version = version + 1
  WHERE id = ? AND (? IS NULL OR version = ?) AND (? = 0 OR next_fire_at IS ?)`;

/** The parameters of UPDATE_JOB, in its order. */
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

export function createJob(
  c: SqliteConnection,
  job: JobDefinition,
  nextFireAt: number | null,
  now: number,
  namespace = DEFAULT_NAMESPACE,
  quota?: JobQuotaCheck,
): JobRecord {
  const insert = () => {
    // Under the write lock of the immediate transaction: no other write counts in between.
    if (quota) quotas.checkJobQuota((text) => c.sql(text), namespace, -1, quota);
    checkDependencyCycle((text) => c.sql(text), namespace, job);
    return c
      .sql(
        `INSERT INTO jobs (name, description, group_name, handler, params, trigger, delay_ms, retry, timeout_ms,
             priority, paused, schedule, next_fire_at, created_at, updated_at, dispatch, schedule_to_start_ms, task, retention,
             owner, revision, secret_params, namespace)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
      )
      .get(
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
  return c.run('createJob', () => {
    try {
      const row = quota || job.trigger.kind === 'after' ? c.db.transaction(insert).immediate() : insert();
      c.emit({ type: 'jobs' });
      return jobFromRow(row);
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw new KairosError('JOB_NAME_TAKEN', `a job named ${JSON.stringify(job.name)} exists`);
      }
      throw error;
    }
  });
}

export function updateJob(
  c: SqliteConnection,
  id: number,
  job: JobDefinition,
  nextFireAt: number | null,
  now: number,
  expected?: JobExpectation,
  quota?: JobQuotaCheck,
): JobRecord | null {
  return c.run('updateJob', () => {
    const update = () => {
      const row = c
        .sql(`${UPDATE_JOB} RETURNING *`)
        .get(...updateValues(id, job, nextFireAt, now, expected)) as JobRow | undefined;
      // Judged only when the edit applies, under the write lock; a refusal rolls it back.
      if (row && quota) quotas.checkJobQuota((text) => c.sql(text), row.namespace, id, quota);
      if (row) checkDependencyCycle((text) => c.sql(text), row.namespace, job);
      return row;
    };
    const row = quota || job.trigger.kind === 'after' ? c.db.transaction(update).immediate() : update();
    if (row) c.emit({ type: 'jobs' });
    return row ? jobFromRow(row) : null;
  });
}

export function getJob(
  c: SqliteConnection,
  name: string,
  options: { workflowJobs?: boolean } = {},
): JobRecord | null {
  return c.run('getJob', () => {
    // A workflow's own job (store/workflows.ts) is no job of the API's: its name is never found.
    const row = c
      .sql('SELECT * FROM jobs WHERE name = ? AND (workflow_id IS NULL OR ?)')
      .get(name, options.workflowJobs ? 1 : 0) as JobRow | undefined;
    return row ? jobFromRow(row) : null;
  });
}

export function listJobs(
  c: SqliteConnection,
  filter: {
    namespace?: string | undefined;
    group?: string | undefined;
    after?: string | undefined;
    limit: number;
  },
): JobRecord[] {
  return c.run('listJobs', () => {
    // Written only when given, so that the plan of a namespace's page walks jobs_namespace_name.
    const inNamespace = filter.namespace === undefined ? '' : ' AND namespace = @namespace';
    const rows = c
      .sql(
        `SELECT * FROM jobs WHERE workflow_id IS NULL AND (@group IS NULL OR group_name = @group) AND (@after IS NULL OR name > @after)${inNamespace}
         ORDER BY name LIMIT @limit`,
      )
      .all({
        group: filter.group ?? null,
        after: filter.after ?? null,
        limit: filter.limit,
        ...(filter.namespace === undefined ? {} : { namespace: filter.namespace }),
      }) as JobRow[];
    return rows.map(jobFromRow);
  });
}

export function deleteJob(c: SqliteConnection, name: string, version?: number, now = Date.now()): boolean {
  return c.run('deleteJob', () => {
    const deleted = c.db
      .transaction(() => {
        const job = c
          .sql('SELECT id FROM jobs WHERE name = ? AND workflow_id IS NULL AND (? IS NULL OR version = ?)')
          .get(name, version ?? null, version ?? null) as { id: number } | undefined;
        if (!job) return null;
        // Its workflow step runs end first, so that their instances advance (store/workflows.ts).
        const steps = c
          .sql(
            `SELECT id, status, attempt, worker_id, started_at FROM runs
             WHERE job_id = ? AND workflow_instance_id IS NOT NULL AND status IN ('queued', 'running')`,
          )
          .all(job.id) as Array<{
          id: number;
          status: string;
          attempt: number;
          worker_id: string;
          started_at: number;
        }>;
        const running = steps.filter((r) => r.status === 'running');
        if (running.length > 0) {
          c.sql(hot.END_ATTEMPTS).run(
            now,
            JSON.stringify(
              running.map((r) => [r.id, r.attempt, r.worker_id, 'cancelled', r.started_at, JOB_DELETED]),
            ),
          );
        }
        const cancel = c.sql(
          `UPDATE runs SET status = 'cancelled', finished_at = ?, error = ?, deadline_at = NULL WHERE id = ?`,
        );
        for (const run of steps) cancel.run(now, JOB_DELETED, run.id);
        const groups = advanceWorkflows(
          (text) => c.sql(text),
          steps.map((r) => r.id),
          now,
          job.id,
        );
        c.sql('DELETE FROM jobs WHERE id = ?').run(job.id);
        return groups;
      })
      .immediate();
    if (deleted === null) return false;
    c.emit({ type: 'jobs' });
    for (const group of new Set(deleted)) c.emit({ type: 'runs', group });
    return true;
  });
}

export function secretParamsPage(
  c: SqliteConnection,
  table: SecretTable,
  afterId: number,
  limit: number,
): SecretParamsRow[] {
  return c.run('secretParamsPage', () => {
    const rows = c.sql(secrets.secretParamsPage(checkedTable(table))).all(afterId, limit) as Array<{
      id: number;
      params: string;
    }>;
    return rows.map((row) => ({ id: row.id, params: json<JsonObject>(row.params), stored: row.params }));
  });
}

export function replaceSecretParams(
  c: SqliteConnection,
  table: SecretTable,
  id: number,
  stored: string,
  params: JsonObject,
): boolean {
  return c.run(
    'replaceSecretParams',
    () =>
      c.sql(secrets.replaceSecretParams(checkedTable(table))).run(JSON.stringify(params), id, stored)
        .changes > 0,
  );
}
