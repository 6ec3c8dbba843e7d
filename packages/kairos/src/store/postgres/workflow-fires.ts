import type pg from 'pg';
import type { SkippedRange } from '../../core/fire-plan.ts';
import { decideOverlap } from '../../core/overlap.ts';
import { scheduledStartFits, storedMaxQueuedRuns } from '../../core/quotas.ts';
import type { FireEntry, SkipWritten } from '../store.ts';
import { COUNT_QUEUED_RUNS } from './quotas.ts';
import { ADVANCE_JOB, COUNT_RUNS, skippedInput, writeSkipped } from './schedules.ts';
import { startInstance } from './workflows.ts';

/** The workflow that a job carries, as a fire starts its instances. $1 job id. */
const WORKFLOW_OF_JOB = `SELECT id, namespace, version, steps::text AS steps, job_id FROM workflows WHERE job_id = $1`;

/** The maxQueuedRuns quota of namespace $1 as text (JSON columns are read as text here), or null. */
const NAMESPACE_MAX_QUEUED = `SELECT (quotas -> 'maxQueuedRuns')::text AS n FROM namespaces WHERE name = $1`;

/** The workflow's unfinished (running or paused) instances, for the overlap policy (workflow_instances_running). $1 workflow id. */
const RUNNING_INSTANCES = `SELECT count(*)::int AS n FROM workflow_instances WHERE workflow_id = $1 AND state IN ('running', 'paused')`;

/**
 * The fires of a workflow's job (docs/workflows.md#triggers), inside the fire transaction: the
 * compare-and-set of the job's next fire (its row lock orders the fires of one workflow, so two
 * nodes firing it at once write one instance: the loser's compare-and-set finds the next fire moved
 * and writes nothing), then each fire that runs starts an instance (cause `schedule`; the unique key
 * of workflow and fire time keeps one per fire on top), never a plain run of the job. The overlap
 * policy judges the workflow's running instances; `maxRuns` counts instances; the namespace's
 * `maxQueuedRuns` turns a fire into a ledger row (`quota`) while that many runs are queued; the
 * ledger is the job's, as for any job.
 */
export async function fireWorkflow(
  client: pg.PoolClient,
  entry: FireEntry,
  now: number,
): Promise<{ advanced: boolean; runs: number; groups: string[]; skipped: SkipWritten[] }> {
  const advanced = await client.query(ADVANCE_JOB, [entry.jobId, entry.expected, entry.next]);
  if (advanced.rows.length === 0) return { advanced: false, runs: 0, groups: [], skipped: [] };
  const workflow = (
    await client.query<{ id: number; namespace: string; version: number; steps: string; job_id: number }>(
      WORKFLOW_OF_JOB,
      [entry.jobId],
    )
  ).rows[0];
  if (!workflow) return { advanced: true, runs: 0, groups: [], skipped: [] };
  const running = entry.overlap
    ? (await client.query<{ n: number }>(RUNNING_INSTANCES, [workflow.id])).rows[0]!.n
    : 0;
  const decision = decideOverlap(entry.overlap ?? 'allow', entry.fires.length, {
    inFlight: running,
    buffered: 0,
  }).fires;
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
  let started = 0;
  for (const [i, fireTime] of entry.fires.entries()) {
    if (decision[i] !== 'run') continue;
    if (!scheduledStartFits(maxQueuedRuns, queued)) {
      overQuota.push(fireTime);
      continue;
    }
    const instance = await startInstance(
      client,
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
    if (!instance.created) continue;
    started++;
    queued += instance.groups.length;
    groups.push(...instance.groups);
  }
  if (entry.countRuns && started > 0) await client.query(COUNT_RUNS, [entry.jobId, started]);
  const ranges: SkippedRange[] = [...(entry.skipped ?? [])];
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
  return { advanced: true, runs: groups.length, groups, skipped };
}
