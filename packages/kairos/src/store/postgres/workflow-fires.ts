import type pg from 'pg';
import type { SkippedRange } from '../../core/fire-plan.ts';
import { decideWorkflowOverlap } from '../../core/overlap.ts';
import { scheduledStartFits, storedMaxQueuedRuns } from '../../core/quotas.ts';
import type { FireEntry, SkipWritten } from '../store.ts';
import { CANCELLED_BY_NEWER_FIRE, cancelledByFire, heldRange, scheduledStart } from '../workflows.ts';
import { APPEND_AUDIT } from './access.ts';
import { COUNT_QUEUED_RUNS } from './quotas.ts';
import { ADVANCE_JOB, afterRunsEnded, COUNT_RUNS, skippedInput, writeSkipped } from './schedules.ts';
import { cancelInstanceIn, startHeldFires, startInstance } from './workflows.ts';

/** The workflow that a job carries, as a fire starts its instances. $1 job id. */
const WORKFLOW_OF_JOB = `SELECT id, namespace, name, version, steps::text AS steps, job_id FROM workflows WHERE job_id = $1`;

/** The maxQueuedRuns quota of namespace $1 as text (JSON columns are read as text here), or null. */
const NAMESPACE_MAX_QUEUED = `SELECT (quotas -> 'maxQueuedRuns')::text AS n FROM namespaces WHERE name = $1`;

/** The workflow's unfinished (running or paused) instances, for the overlap policy (workflow_instances_running). $1 workflow id. */
const UNFINISHED_INSTANCES = `
  SELECT id FROM workflow_instances WHERE workflow_id = $1 AND state IN ('running', 'paused') ORDER BY id`;

/**
 * The same, locked FOR SHARE, before a buffer policy decides: an end of one of them that locked it
 * first (FOR UPDATE) commits before this answers, and one that comes later waits for this fire's
 * commit and then reads the fire it held (see startHeldFires). $1 workflow id.
 */
const LOCK_UNFINISHED_INSTANCES = `${UNFINISHED_INSTANCES.trim()} FOR SHARE`;

/** Unfinished instances and held fires, read anew after the lock. $1 workflow id. */
const OVERLAP_STATE = `
  SELECT (SELECT count(*) FROM workflow_instances WHERE workflow_id = $1 AND state IN ('running', 'paused'))::int
      AS unfinished,
    (SELECT count(*) FROM workflow_held_fires WHERE workflow_id = $1)::int AS held`;

/**
 * Hold a fire (overlap buffer-one, buffer-all) unless an instance of its fire time exists (a stale
 * plan of a fire that ran). $1 workflow id, $2 fire time, $3 now.
 */
const HOLD_FIRE = `
  INSERT INTO workflow_held_fires (workflow_id, fire_time, held_at)
  SELECT $1, $2, $3 WHERE NOT EXISTS (
    SELECT 1 FROM workflow_instances WHERE workflow_id = $1 AND scheduled_for = $2)
  ON CONFLICT DO NOTHING`;

/** Drop a workflow's held fires (overlap cancel-previous), answering their fire times. $1 workflow id. */
const DROP_HELD_FIRES = `DELETE FROM workflow_held_fires WHERE workflow_id = $1 RETURNING fire_time`;

/**
 * The fires of a workflow's job (docs/workflows.md#triggers), inside the fire transaction: the
 * compare-and-set of the job's next fire (its row lock orders the fires of one workflow, so two
 * nodes firing it at once write one instance: the loser's compare-and-set finds the next fire moved
 * and writes nothing), then each fire that runs starts an instance (cause `schedule`; the unique key
 * of workflow and fire time keeps one per fire on top), never a plain run of the job. The overlap
 * policy judges the workflow's unfinished instances and held fires (decideWorkflowOverlap): a
 * buffered fire is held (workflow_held_fires) until the transaction that ends the last unfinished
 * instance starts it (startHeldFires); `cancel-previous` cancels the unfinished instances (audited,
 * actor `schedule`) and drops the held fires to the ledger. `maxRuns` counts instances started and
 * fires held; the namespace's `maxQueuedRuns` turns a fire that would start an instance into a
 * ledger row (`quota`) while that many runs are queued; the ledger is the job's, as for any job.
 *
 * Locks: the job (compare-and-set), then the instances (FOR SHARE to hold a fire; a cancel locks
 * each one's step runs, then it, as the instance cancel does), then held fires: the order of an
 * end, which locks its runs, its instances, then held fires, and never the job.
 */
export async function fireWorkflow(
  client: pg.PoolClient,
  entry: FireEntry,
  now: number,
): Promise<{ advanced: boolean; runs: number; groups: string[]; skipped: SkipWritten[] }> {
  const advanced = await client.query(ADVANCE_JOB, [entry.jobId, entry.expected, entry.next]);
  if (advanced.rows.length === 0) return { advanced: false, runs: 0, groups: [], skipped: [] };
  const workflow = (
    await client.query<{
      id: number;
      namespace: string;
      name: string;
      version: number;
      steps: string;
      job_id: number;
    }>(WORKFLOW_OF_JOB, [entry.jobId])
  ).rows[0];
  if (!workflow) return { advanced: true, runs: 0, groups: [], skipped: [] };
  // The namespace's maxQueuedRuns (docs/workflows.md#queued-runs-and-the-namespaces-quota): a fire
  // while the namespace holds that many queued runs starts nothing and goes to the ledger. Counted
  // without the namespace's lock: the fire transaction holds the job's row already, and a trigger
  // takes the namespace's lock before a job's (an edit), so waiting for it here could deadlock.
  const quota = (await client.query<{ n: string | null }>(NAMESPACE_MAX_QUEUED, [workflow.namespace]))
    .rows[0];
  const maxQueuedRuns = storedMaxQueuedRuns(quota?.n == null ? null : JSON.parse(quota.n));
  let queued =
    maxQueuedRuns === null
      ? 0
      : Number(
          (await client.query<{ n: string }>(COUNT_QUEUED_RUNS, [workflow.namespace, maxQueuedRuns + 1]))
            .rows[0]!.n,
        );
  const overQuota: number[] = [];
  const groups: string[] = [];
  /** The groups of runs that the cancels set off (dependents), not the fire's own. */
  const cancelGroups: string[] = [];
  const ranges: SkippedRange[] = [...(entry.skipped ?? [])];
  let decision: Array<'run' | 'buffer' | 'skip'> = entry.fires.map(() => 'run');
  if (entry.overlap && entry.fires.length > 0) {
    const buffers = entry.overlap === 'buffer-one' || entry.overlap === 'buffer-all';
    const unfinished = (
      await client.query<{ id: number }>(buffers ? LOCK_UNFINISHED_INSTANCES : UNFINISHED_INSTANCES, [
        workflow.id,
      ])
    ).rows;
    const state = (await client.query<{ unfinished: number; held: number }>(OVERLAP_STATE, [workflow.id]))
      .rows[0]!;
    const overlap = decideWorkflowOverlap(entry.overlap, entry.fires.length, state);
    decision = overlap.fires;
    if (overlap.promoteOldest) groups.push(...(await startHeldFires(client, [workflow.id], now)));
    if (overlap.cancelActive) {
      const newest = entry.fires[entry.fires.length - 1]!;
      for (const { id } of unfinished) {
        const cancelled = await cancelInstanceIn(
          client,
          id,
          now,
          CANCELLED_BY_NEWER_FIRE,
          afterRunsEnded,
          'skip',
        );
        if (!cancelled) continue;
        cancelGroups.push(...cancelled.groups);
        const audit = cancelledByFire(workflow.namespace, id, workflow.name, newest, now);
        await client.query(APPEND_AUDIT, [
          audit.at,
          audit.actor,
          audit.action,
          audit.target,
          JSON.stringify(audit.details),
          audit.namespace,
        ]);
      }
      const dropped = await client.query<{ fire_time: number }>(DROP_HELD_FIRES, [workflow.id]);
      const range = heldRange(dropped.rows.map((r) => Number(r.fire_time)));
      if (range) ranges.push(range);
    }
  }
  let counted = 0;
  for (const [i, fireTime] of entry.fires.entries()) {
    if (decision[i] === 'buffer') {
      counted += (await client.query(HOLD_FIRE, [workflow.id, fireTime, now])).rowCount ?? 0;
      continue;
    }
    if (decision[i] !== 'run') continue;
    if (!scheduledStartFits(maxQueuedRuns, queued)) {
      overQuota.push(fireTime);
      continue;
    }
    const instance = await startInstance(
      client,
      workflow,
      scheduledStart(fireTime, entry.availableAt?.[i] ?? fireTime),
      now,
    );
    if (!instance.created) continue;
    counted++;
    queued += instance.groups.length;
    groups.push(...instance.groups);
  }
  // An instance that ended as it started (its steps' jobs are gone) leaves nothing unfinished.
  if (decision.includes('buffer')) groups.push(...(await startHeldFires(client, [workflow.id], now)));
  if (entry.countRuns && counted > 0) await client.query(COUNT_RUNS, [entry.jobId, counted]);
  for (const [reason, dropped] of [
    ['overlap', entry.fires.filter((_, i) => decision[i] === 'skip')],
    ['quota', overQuota],
  ] as const) {
    if (dropped.length === 0) continue;
    // As for a job (fireWithPolicies): one range, continuing the ledger row of the fire before.
    const index = entry.fires.indexOf(dropped[0]!);
    ranges.push({
      reason,
      first: dropped[0]!,
      last: dropped[dropped.length - 1]!,
      count: dropped.length,
      after: index > 0 ? entry.fires[index - 1] : entry.previousFire,
    });
  }
  const skipped = await writeSkipped(client, skippedInput(entry, ranges), now);
  return { advanced: true, runs: groups.length, groups: [...groups, ...cancelGroups], skipped };
}
