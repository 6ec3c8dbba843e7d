// Dependency edits of the SQLite store (docs/schedules.md#dependencies): the `after` chain is
// checked inside the immediate transaction that writes the job, whose write lock keeps every
// other write of the file out, so two concurrent definitions cannot close a cycle between them.

import type Database from 'better-sqlite3';
import { checkDependencyChain } from '../../core/dependency-chain.ts';
import type { JobDefinition } from '../../core/job.ts';
import type { Trigger } from '../../core/trigger.ts';

type Sql = (text: string) => Database.Statement<unknown[], unknown>;

/**
 * Inside a job write's immediate transaction: throws DEPENDENCY_CYCLE when the job's `after` chain
 * leads back to itself through the jobs stored in its namespace. Nothing to read for other triggers.
 */
export function checkDependencyCycle(sql: Sql, namespace: string, job: JobDefinition): void {
  if (job.trigger.kind !== 'after') return;
  const rows = sql(
    `SELECT name, trigger FROM jobs
     WHERE namespace = ? AND name <> ? AND workflow_id IS NULL AND json_extract(trigger, '$.kind') = 'after'`,
  ).all(namespace, job.name) as Array<{ name: string; trigger: string }>;
  const triggers = new Map(rows.map((r) => [r.name, JSON.parse(r.trigger) as Trigger]));
  checkDependencyChain(job.name, job.trigger, (name) => triggers.get(name));
}
