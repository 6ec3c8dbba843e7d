import type Database from 'better-sqlite3';
import { decideOverlap } from '../../core/overlap.ts';
import { scheduledStartFits, storedMaxQueuedRuns } from '../../core/quotas.ts';
import type { FireEntry, SkipWritten } from '../store.ts';
import { countQueuedRuns } from './quotas.ts';
import { countRuns, overlapRange, recordSkipped } from './schedules.ts';
import { startInstance } from './workflows.ts';

type Sql = (text: string) => Database.Statement<unknown[], unknown>;

/**
 * The fires of a workflow's job (docs/workflows.md#triggers), inside the fire transaction, after
 * its compare-and-set won: each fire that runs starts an instance (cause `schedule`, one per fire
 * time by the unique key of workflow and fire time), never a plain run of the job. The overlap
 * policy judges the workflow's running instances; `maxRuns` counts instances; the namespace's
 * `maxQueuedRuns` turns a fire into a ledger row (`quota`) while that many runs are queued; the
 * ledger is the job's, as for any job. Answers the root steps' runs, their groups and the ledger rows written.
 */
export function fireWorkflow(
  sql: Sql,
  entry: FireEntry,
  now: number,
): { runs: number; groups: string[]; skipped: SkipWritten[] } {
  const workflow = sql('SELECT id, namespace, version, steps, job_id FROM workflows WHERE job_id = ?').get(
    entry.jobId,
  ) as { id: number; namespace: string; version: number; steps: string; job_id: number } | undefined;
  if (!workflow) return { runs: 0, groups: [], skipped: [] };
  const running = entry.overlap
    ? (
        sql(
          `SELECT count(*) AS n FROM workflow_instances INDEXED BY workflow_instances_running
           WHERE workflow_id = ? AND state IN ('running', 'paused')`,
        ).get(workflow.id) as { n: number }
      ).n
    : 0;
  const decision = decideOverlap(entry.overlap ?? 'allow', entry.fires.length, {
    inFlight: running,
    buffered: 0,
  }).fires;
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
  let started = 0;
  entry.fires.forEach((fireTime, i) => {
    if (decision[i] !== 'run') return;
    if (!scheduledStartFits(maxQueuedRuns, queued)) {
      overQuota.push(fireTime);
      return;
    }
    const instance = startInstance(
      sql,
      workflow,
      {
        // What a step reads of its fire: `$workflow.context.scheduledFor`.
        context: { scheduledFor: new Date(fireTime).toISOString() },
        idempotencyKey: null,
        cause: 'schedule',
        scheduledFor: fireTime,
        availableAt: entry.availableAt?.[i] ?? fireTime,
      },
      now,
    );
    if (!instance.created) return;
    started++;
    queued += instance.groups.length;
    groups.push(...instance.groups);
  });
  if (entry.countRuns) countRuns(sql, entry.jobId, started);
  const dropped = overlapRange(
    entry,
    entry.fires.filter((_, i) => decision[i] === 'skip'),
  );
  const refused = overlapRange(entry, overQuota, 'quota');
  const ranges = [...(entry.skipped ?? []), ...(dropped ? [dropped] : []), ...(refused ? [refused] : [])];
  return { runs: groups.length, groups, skipped: recordSkipped(sql, entry.jobId, ranges, now) };
}
