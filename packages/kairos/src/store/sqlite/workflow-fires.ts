import type Database from 'better-sqlite3';
import type { SkippedRange } from '../../core/fire-plan.ts';
import { decideWorkflowOverlap } from '../../core/overlap.ts';
import { scheduledStartFits, storedMaxQueuedRuns } from '../../core/quotas.ts';
import type { FireEntry, SkipWritten } from '../store.ts';
import { CANCELLED_BY_NEWER_FIRE, cancelledByFire, heldRange, scheduledStart } from '../workflows.ts';
import { countQueuedRuns } from './quotas.ts';
import { afterRunsEnded, countRuns, overlapRange, recordSkipped } from './schedules.ts';
import { cancelInstanceIn, startHeldFires, startInstance } from './workflows.ts';

type Sql = (text: string) => Database.Statement<unknown[], unknown>;

/**
 * The fires of a workflow's job (docs/workflows.md#triggers), inside the fire transaction, after
 * its compare-and-set won: each fire that runs starts an instance (cause `schedule`, one per fire
 * time by the unique key of workflow and fire time), never a plain run of the job. The overlap
 * policy judges the workflow's unfinished instances and held fires (decideWorkflowOverlap): a
 * buffered fire is held (workflow_held_fires) until the transaction that ends the last unfinished
 * instance starts it (startHeldFires); `cancel-previous` cancels the unfinished instances (audited,
 * actor `schedule`) and drops the held fires to the ledger. `maxRuns` counts instances started and
 * fires held; the namespace's `maxQueuedRuns` turns a fire that would start an instance into a
 * ledger row (`quota`) while that many runs are queued; the ledger is the job's, as for any job.
 * Answers the root steps' runs, their groups and the ledger rows written.
 */
export function fireWorkflow(
  sql: Sql,
  entry: FireEntry,
  now: number,
): { runs: number; groups: string[]; skipped: SkipWritten[] } {
  const workflow = sql(
    'SELECT id, namespace, name, version, steps, job_id FROM workflows WHERE job_id = ?',
  ).get(entry.jobId) as
    | { id: number; namespace: string; name: string; version: number; steps: string; job_id: number }
    | undefined;
  if (!workflow) return { runs: 0, groups: [], skipped: [] };
  // The namespace's maxQueuedRuns (docs/workflows.md#queued-runs-and-the-namespaces-quota): a
  // fire while the namespace holds that many queued runs starts nothing and goes to the ledger. Read
  // in the fire's transaction (one writer: nothing else writes until it commits).
  const quota = sql(`SELECT json_extract(quotas, '$.maxQueuedRuns') AS n FROM namespaces WHERE name = ?`).get(
    workflow.namespace,
  ) as { n: unknown } | undefined;
  const maxQueuedRuns = storedMaxQueuedRuns(quota?.n);
  let queued = maxQueuedRuns === null ? 0 : countQueuedRuns(sql, workflow.namespace, maxQueuedRuns + 1);
  const overQuota: number[] = [];
  const groups: string[] = [];
  /** The groups of runs that the cancels set off (dependents), not the fire's own. */
  const cancelGroups: string[] = [];
  const ranges: SkippedRange[] = [...(entry.skipped ?? [])];
  let decision: Array<'run' | 'buffer' | 'skip'> = entry.fires.map(() => 'run');
  if (entry.overlap && entry.fires.length > 0) {
    const unfinished = sql(
      `SELECT id FROM workflow_instances INDEXED BY workflow_instances_running
       WHERE workflow_id = ? AND state IN ('running', 'paused') ORDER BY id`,
    ).all(workflow.id) as Array<{ id: number }>;
    const held = (
      sql('SELECT count(*) AS n FROM workflow_held_fires WHERE workflow_id = ?').get(workflow.id) as {
        n: number;
      }
    ).n;
    const overlap = decideWorkflowOverlap(entry.overlap, entry.fires.length, {
      unfinished: unfinished.length,
      held,
    });
    decision = overlap.fires;
    if (overlap.promoteOldest) groups.push(...startHeldFires(sql, [workflow.id], now));
    if (overlap.cancelActive) {
      const newest = entry.fires[entry.fires.length - 1]!;
      const ended = (e: Parameters<typeof afterRunsEnded>[1], at: number) => afterRunsEnded(sql, e, at);
      for (const { id } of unfinished) {
        const cancelled = cancelInstanceIn(sql, id, now, CANCELLED_BY_NEWER_FIRE, ended);
        if (cancelled) cancelGroups.push(...cancelled.groups);
        writeAudit(sql, cancelledByFire(workflow.namespace, id, workflow.name, newest, now));
      }
      const dropped = sql('DELETE FROM workflow_held_fires WHERE workflow_id = ? RETURNING fire_time').all(
        workflow.id,
      ) as Array<{ fire_time: number }>;
      const range = heldRange(dropped.map((d) => d.fire_time));
      if (range) ranges.push(range);
    }
  }
  const hold = sql(
    `INSERT INTO workflow_held_fires (workflow_id, fire_time, held_at)
     SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM workflow_instances WHERE workflow_id = ? AND scheduled_for = ?)
     ON CONFLICT DO NOTHING`,
  );
  let counted = 0;
  entry.fires.forEach((fireTime, i) => {
    if (decision[i] === 'buffer') {
      counted += hold.run(workflow.id, fireTime, now, workflow.id, fireTime).changes;
      return;
    }
    if (decision[i] !== 'run') return;
    if (!scheduledStartFits(maxQueuedRuns, queued)) {
      overQuota.push(fireTime);
      return;
    }
    const instance = startInstance(
      sql,
      workflow,
      scheduledStart(fireTime, entry.availableAt?.[i] ?? fireTime),
      now,
    );
    if (!instance.created) return;
    counted++;
    queued += instance.groups.length;
    groups.push(...instance.groups);
  });
  // An instance that ended as it started (its steps' jobs are gone) leaves nothing unfinished.
  if (decision.includes('buffer')) groups.push(...startHeldFires(sql, [workflow.id], now));
  if (entry.countRuns) countRuns(sql, entry.jobId, counted);
  const dropped = overlapRange(
    entry,
    entry.fires.filter((_, i) => decision[i] === 'skip'),
  );
  if (dropped) ranges.push(dropped);
  const refused = overlapRange(entry, overQuota, 'quota');
  if (refused) ranges.push(refused);
  return {
    runs: groups.length,
    groups: [...groups, ...cancelGroups],
    skipped: recordSkipped(sql, entry.jobId, ranges, now),
  };
}

function writeAudit(sql: Sql, entry: ReturnType<typeof cancelledByFire>): void {
  sql('INSERT INTO audit_log (at, actor, action, target, details, namespace) VALUES (?, ?, ?, ?, ?, ?)').run(
    entry.at,
    entry.actor,
    entry.action,
    entry.target,
    JSON.stringify(entry.details),
    entry.namespace ?? 'default',
  );
}
