// Dependency edits of the PostgreSQL store (docs/schedules.md#dependencies): the `after` chain is
// checked inside the transaction that writes the job, under a lock that makes two dependency edits
// of one namespace wait for each other, so two concurrent definitions cannot close a cycle.

import type pg from 'pg';
import { checkDependencyChain } from '../../core/dependency-chain.ts';
import type { JobDefinition } from '../../core/job.ts';
import type { Trigger } from '../../core/trigger.ts';
import { LOCK_NAMESPACE } from './quotas.ts';

/** The namespace of job $1. */
export const NAMESPACE_OF_JOB = 'SELECT namespace FROM jobs WHERE id = $1';

/**
 * A namespace without a row (a store used without the namespaces API) is locked by its name
 * instead. Transaction-scoped: released at COMMIT or ROLLBACK. $1 namespace.
 */
export const LOCK_NAMESPACE_KEY = `SELECT pg_advisory_xact_lock(hashtext('kairos.namespace:' || $1))`;

/** The `after` triggers of namespace $1's jobs but the one named $2. */
export const AFTER_TRIGGERS = `
  SELECT name, trigger::text AS trigger FROM jobs
  WHERE namespace = $1 AND name <> $2 AND workflow_id IS NULL AND trigger->>'kind' = 'after'`;

/**
 * Locks namespace `namespace` against other dependency edits and quota-checked writes in it: its
 * row FOR UPDATE, the lock that quota checks take first (store/postgres/quotas.ts), so the two
 * never take locks in opposite orders. The chain read after it (READ COMMITTED: a new statement)
 * sees what the previous holder committed.
 */
export async function lockNamespaceEdits(client: pg.PoolClient, namespace: string): Promise<void> {
  const { rows } = await client.query(LOCK_NAMESPACE, [namespace]);
  if (rows.length === 0) await client.query(LOCK_NAMESPACE_KEY, [namespace]);
}

/**
 * Inside a job write's transaction, after {@link lockNamespaceEdits}: throws DEPENDENCY_CYCLE when
 * the job's `after` chain leads back to itself through the jobs stored in its namespace.
 */
export async function checkDependencyCycle(
  client: pg.PoolClient,
  namespace: string,
  job: JobDefinition,
): Promise<void> {
  const { rows } = await client.query<{ name: string; trigger: string }>(AFTER_TRIGGERS, [
    namespace,
    job.name,
  ]);
  const triggers = new Map(rows.map((r) => [r.name, JSON.parse(r.trigger) as Trigger]));
  checkDependencyChain(job.name, job.trigger, (name) => triggers.get(name));
}
