// Namespace quota checks of the PostgreSQL store (docs/tenancy.md#quotas), inside the transaction of
// the write they judge. Each write that checks a quota locks its namespace's row first, before any
// other lock: writes of one namespace are judged one after the other (READ COMMITTED: the count
// that follows the lock sees what the previous holder committed), and a lock taken first in every
// such transaction cannot deadlock with another.

import type pg from 'pg';
import { checkQueuedRuns } from '../../core/quotas.ts';
import type { Trigger } from '../../core/trigger.ts';
import type { JobQuotaCheck } from '../store.ts';

/** Lock namespace $1 against other quota-checked writes in it; no row: no such namespace. */
export const LOCK_NAMESPACE = 'SELECT name FROM namespaces WHERE name = $1 FOR UPDATE';

/** Lock the namespace of the job of id $1, answering its name; no row: no such job. */
export const LOCK_NAMESPACE_OF_JOB = `
  SELECT name FROM namespaces WHERE name = (SELECT namespace FROM jobs WHERE id = $1) FOR UPDATE`;

/** Lock the namespace of the job named $1, answering its name; no row: no such job. */
export const LOCK_NAMESPACE_OF_JOB_NAMED = `
  SELECT name FROM namespaces WHERE name = (SELECT namespace FROM jobs WHERE name = $1) FOR UPDATE`;

/** The triggers of namespace $1's jobs but job $2 (-1: all of them). */
export const NAMESPACE_TRIGGERS = `SELECT trigger::text AS trigger FROM jobs WHERE namespace = $1 AND id <> $2`;

/**
 * The queued runs of namespace $1, counted up to $2: a pass over the partial index of queued runs
 * stopped at the bound (the check only needs to know whether the quota is passed).
 */
export const COUNT_QUEUED_RUNS = `
  SELECT count(*) AS n FROM (SELECT 1 FROM runs
    WHERE status = 'queued' AND job_id IN (SELECT id FROM jobs WHERE namespace = $1) LIMIT $2) AS q`;

/** Locks the namespace of a job (by id or name); its name, or null when there is no such job. */
export async function lockNamespaceOfJob(
  client: pg.PoolClient,
  job: number | string,
): Promise<string | null> {
  const { rows } = await client.query<{ name: string }>(
    typeof job === 'number' ? LOCK_NAMESPACE_OF_JOB : LOCK_NAMESPACE_OF_JOB_NAMED,
    [job],
  );
  return rows[0]?.name ?? null;
}

/** Runs a job write's quota check with the triggers of its namespace's jobs, `jobId` left out. */
export async function checkJobQuota(
  client: pg.PoolClient,
  namespace: string,
  jobId: number,
  quota: JobQuotaCheck,
): Promise<void> {
  const { rows } = await client.query<{ trigger: string }>(NAMESPACE_TRIGGERS, [namespace, jobId]);
  quota(rows.map((r) => JSON.parse(r.trigger) as Trigger));
}

/**
 * maxQueuedRuns after a write inserted `inserted` queued runs (and a broadcast job's shards of
 * them), in its transaction (the namespace locked first): throws QUOTA_EXCEEDED (429) when the
 * namespace now holds more, and the caller's transaction rolls them back.
 */
export async function checkQueuedRunsAfter(
  client: pg.PoolClient,
  namespace: string,
  maxQueuedRuns: number,
  inserted: number,
): Promise<void> {
  if (inserted === 0) return;
  const { rows } = await client.query<{ n: string }>(COUNT_QUEUED_RUNS, [
    namespace,
    maxQueuedRuns + 1 + inserted,
  ]);
  checkQueuedRuns(maxQueuedRuns, Number(rows[0]!.n) - inserted, inserted);
}
