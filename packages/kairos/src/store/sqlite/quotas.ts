// Namespace quota checks of the SQLite store (docs/tenancy.md#quotas), inside the immediate
// transaction of the write they judge: its write lock keeps every other write of the file out
// (other processes too) from the count to the commit.

import type Database from 'better-sqlite3';
import { checkQueuedRuns } from '../../core/quotas.ts';
import type { Trigger } from '../../core/trigger.ts';
import type { JobQuotaCheck } from '../store.ts';

type Sql = (text: string) => Database.Statement<unknown[], unknown>;

/** Runs a job write's quota check with the triggers of its namespace's jobs, `jobId` left out (-1: none). */
export function checkJobQuota(sql: Sql, namespace: string, jobId: number, quota: JobQuotaCheck): void {
  const rows = sql('SELECT trigger FROM jobs WHERE namespace = ? AND id <> ?').all(
    namespace,
    jobId,
  ) as Array<{
    trigger: string;
  }>;
  quota(rows.map((row) => JSON.parse(row.trigger) as Trigger));
}

/** The queued runs of a namespace, counted up to `upTo` (a bound on the work). */
export function countQueuedRuns(sql: Sql, namespace: string, upTo: number): number {
  const { n } = sql(
    `SELECT count(*) AS n FROM (SELECT 1 FROM runs
       WHERE status = 'queued' AND job_id IN (SELECT id FROM jobs WHERE namespace = ?) LIMIT ?)`,
  ).get(namespace, upTo) as { n: number };
  return n;
}

/**
 * maxQueuedRuns after a write inserted `inserted` queued runs of the job `jobId` (and a broadcast
 * job's shards of them), in its transaction: throws QUOTA_EXCEEDED (429) when the namespace now
 * holds more, and the transaction rolls them back.
 */
export function checkQueuedRunsAfter(sql: Sql, jobId: number, maxQueuedRuns: number, inserted: number): void {
  if (inserted === 0) return;
  const job = sql('SELECT namespace FROM jobs WHERE id = ?').get(jobId) as { namespace: string } | undefined;
  if (!job) return;
  const queued = countQueuedRuns(sql, job.namespace, maxQueuedRuns + 1 + inserted);
  checkQueuedRuns(maxQueuedRuns, queued - inserted, inserted);
}
