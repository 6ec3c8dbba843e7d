import type { Json } from '@kairos/client';
import type pg from 'pg';
import type { StepEnd } from '../../core/workflow-graph.ts';
import { mapOutcome } from '../../core/workflow-map.ts';
import { endOf, itemRuns, type MapInput, runConflicts } from '../workflows.ts';
import { insertStepRuns } from './workflow-runs.ts';

/**
 * Map steps on PostgreSQL (core/workflow-map.ts has the model): their items written when the step
 * becomes ready, and each item run's end, in the transaction that ends the run, with the instance's
 * row locked by the caller (store/postgres/workflows.ts, advanceWorkflows): two item runs of one map
 * ending at once on two nodes are ordered by that lock, the second reads what the first wrote, so
 * no item is queued twice nor skipped (each item run also has the key `workflow:<i>:<step>:<index>`).
 */

/** Writes a map step's items: the first `runIds.length` ready with their runs, the others waiting. */
export async function writeMapItems(
  client: pg.PoolClient,
  instanceId: number,
  step: string,
  items: readonly Json[],
  runIds: ReadonlyArray<number | null>,
): Promise<void> {
  await client.query(
    `INSERT INTO workflow_map_items (instance_id, step_id, idx, item, state, run_id)
     SELECT $1, $2, (x.ordinality - 1)::integer, x.value,
       CASE WHEN x.ordinality <= $4 THEN 'ready' ELSE 'waiting' END, (($3::jsonb) ->> (x.ordinality - 1)::integer)::bigint
     FROM jsonb_array_elements($5::jsonb) WITH ORDINALITY AS x(value, ordinality)`,
    [instanceId, step, JSON.stringify(runIds), runIds.length, JSON.stringify(items)],
  );
}

/**
 * Item runs that this transaction ended: marks their items, queues the next waiting items of their
 * maps (as many as `maxParallel` allows, in index order), and answers the map steps whose items all
 * ended, with their end, for the instance to advance. With more items failed than tolerated, the
 * waiting items are skipped instead. The caller holds the instance's row lock.
 */
export async function endMapItems(
  client: pg.PoolClient,
  input: MapInput,
  namespace: string,
  ended: ReadonlyArray<{ id: number; workflow_step: string; status: string; result: string | null }>,
  now: number,
): Promise<{ ends: Array<{ step: string; end: StepEnd }>; groups: string[] }> {
  if (ended.length === 0) return { ends: [], groups: [] };
  const touched = new Set<string>();
  for (const run of [...ended].sort((a, b) => a.id - b.id)) {
    const end = endOf(run.status, run.result);
    const marked = await client.query(
      `UPDATE workflow_map_items SET state = $4, result = $5::jsonb
       WHERE instance_id = $1 AND step_id = $2 AND state = 'ready' AND run_id = $3`,
      [
        input.instanceId,
        run.workflow_step,
        run.id,
        end.ok ? 'succeeded' : 'failed',
        end.ok ? JSON.stringify(end.result ?? null) : null,
      ],
    );
    if ((marked.rowCount ?? 0) > 0) touched.add(run.workflow_step);
  }
  return settleMaps(client, input, namespace, touched, now);
}

/**
 * Queues the next waiting items of these map steps (as many as `maxParallel` allows, in index
 * order; none while the instance is paused: they stay waiting, held, until the resume settles them
 * again), and answers the map steps whose items all ended, with their end. With more items failed
 * than tolerated, the waiting items are skipped. The caller holds the instance's row lock.
 */
export async function settleMaps(
  client: pg.PoolClient,
  input: MapInput,
  namespace: string,
  stepIds: Iterable<string>,
  now: number,
): Promise<{ ends: Array<{ step: string; end: StepEnd }>; groups: string[] }> {
  const ends: Array<{ step: string; end: StepEnd }> = [];
  const groups: string[] = [];
  for (const stepId of stepIds) {
    const step = input.steps.find((s) => s.id === stepId)!;
    const map = step.map!;
    const counts = await client.query<{ ready: number; failed: number; waiting: boolean }>(
      `SELECT
         (SELECT count(*) FROM workflow_map_items WHERE instance_id = $1 AND step_id = $2 AND state = 'ready')::integer AS ready,
         (SELECT count(*) FROM workflow_map_items WHERE instance_id = $1 AND step_id = $2 AND state = 'failed')::integer AS failed,
         EXISTS (SELECT 1 FROM workflow_map_items WHERE instance_id = $1 AND step_id = $2 AND state = 'waiting') AS waiting`,
      [input.instanceId, stepId],
    );
    const { ready, failed, waiting } = counts.rows[0]!;
    let active = ready;
    let held = false;
    if (waiting && failed > map.tolerateFailures) {
      await client.query(
        `UPDATE workflow_map_items SET state = 'skipped' WHERE instance_id = $1 AND step_id = $2 AND state = 'waiting'`,
        [input.instanceId, stepId],
      );
    } else if (waiting && input.paused) {
      held = true;
    } else if (waiting && ready < map.maxParallel) {
      const next = await client.query<{ idx: number; item: string }>(
        `SELECT idx, item::text AS item FROM workflow_map_items
         WHERE instance_id = $1 AND step_id = $2 AND state = 'waiting' ORDER BY idx LIMIT $3`,
        [input.instanceId, stepId, map.maxParallel - ready],
      );
      const runs = itemRuns(
        input,
        step,
        next.rows.map((r) => ({ index: r.idx, item: JSON.parse(r.item) as Json })),
      );
      if (runs === null) {
        // Its job is gone: every waiting item fails without a run.
        await client.query(
          `UPDATE workflow_map_items SET state = 'failed' WHERE instance_id = $1 AND step_id = $2 AND state = 'waiting'`,
          [input.instanceId, stepId],
        );
      } else {
        const inserted = await insertStepRuns(client, input.instanceId, namespace, runs, now);
        groups.push(...[...inserted.values()].map((r) => r.group));
        await client.query(
          `UPDATE workflow_map_items i SET state = 'ready', run_id = x.run_id
           FROM jsonb_to_recordset($3::jsonb) AS x(idx integer, run_id bigint)
           WHERE i.instance_id = $1 AND i.step_id = $2 AND i.idx = x.idx AND i.state = 'waiting'`,
          [
            input.instanceId,
            stepId,
            JSON.stringify(
              runs.flatMap((r) => {
                const run = inserted.get(r.idempotencyKey);
                return run ? [{ idx: r.index, run_id: run.id }] : [];
              }),
            ),
          ],
        );
        active += inserted.size;
        // An item run not queued (its key held by another run) fails the step.
        const conflicts = runConflicts(runs, inserted);
        if (conflicts.length > 0) {
          ends.push(...conflicts);
          continue;
        }
      }
    }
    if (active > 0 || held) continue;
    const items = await client.query<{ state: string; result: string | null }>(
      `SELECT state, result::text AS result FROM workflow_map_items
       WHERE instance_id = $1 AND step_id = $2 ORDER BY idx`,
      [input.instanceId, stepId],
    );
    const outcome = mapOutcome(
      map,
      items.rows.map((r) => ({
        state: r.state,
        result: r.result === null ? null : (JSON.parse(r.result) as Json),
      })),
    );
    ends.push({
      step: stepId,
      end: outcome.ok ? { ok: true, result: outcome.result } : { ok: false, error: outcome.error },
    });
  }
  return { ends, groups };
}

/**
 * A repair's part in map steps (docs/workflows.md#repair): the items of the steps it puts back
 * (`reset`: a re-run, a retry) are deleted, so that the step fans out again with new run keys; those
 * of a step skipped by hand are cancelled. Answers their queued or running item runs, for the
 * repair to cancel: their late ends find no item of theirs and advance nothing.
 */
export async function replaceMapItems(
  client: pg.PoolClient,
  instanceId: number,
  reset: readonly string[],
  skipped: string | null,
): Promise<number[]> {
  const steps = [...reset, ...(skipped === null ? [] : [skipped])];
  if (steps.length === 0) return [];
  const active = await client.query<{ run_id: number }>(
    `SELECT run_id FROM workflow_map_items WHERE instance_id = $1 AND step_id = ANY($2::text[])
       AND state = 'ready' AND run_id IS NOT NULL`,
    [instanceId, steps],
  );
  await client.query('DELETE FROM workflow_map_items WHERE instance_id = $1 AND step_id = ANY($2::text[])', [
    instanceId,
    reset,
  ]);
  if (skipped !== null) {
    await client.query(
      `UPDATE workflow_map_items SET state = 'cancelled'
       WHERE instance_id = $1 AND step_id = $2 AND state IN ('waiting', 'ready')`,
      [instanceId, skipped],
    );
  }
  return active.rows.map((r) => r.run_id);
}

/** Cancels a cancelled instance's waiting and ready items. */
export async function cancelMapItems(client: pg.PoolClient, instanceId: number): Promise<void> {
  await client.query(
    `UPDATE workflow_map_items SET state = 'cancelled' WHERE instance_id = $1 AND state IN ('waiting', 'ready')`,
    [instanceId],
  );
}
