import type { Json } from '@kairos/client';
import type { StepEnd } from '../../core/workflow-graph.ts';
import { mapOutcome } from '../../core/workflow-map.ts';
import { endOf, itemRuns, type MapInput, runConflicts } from '../workflows.ts';
import { insertStepRuns, type Sql } from './workflow-runs.ts';

/**
 * Map steps on SQLite (core/workflow-map.ts has the model): their items written when the step
 * becomes ready, and each item run's end, in the transaction that ends the run (one writer: the
 * transaction is the instance's lock). Each item run has the key `workflow:<i>:<step>:<index>`.
 */

/** Writes a map step's items: the first `runIds.length` ready with their runs, the others waiting. */
export function writeMapItems(
  sql: Sql,
  instanceId: number,
  step: string,
  items: readonly Json[],
  runIds: ReadonlyArray<number | null>,
): void {
  // One row at a time from JSON text: json_each would hand a string item over unquoted.
  const insert = sql(
    `INSERT INTO workflow_map_items (instance_id, step_id, idx, item, state, run_id) VALUES (?, ?, ?, ?, ?, ?)`,
  );
  items.forEach((item, index) => {
    const runId = runIds[index];
    insert.run(
      instanceId,
      step,
      index,
      JSON.stringify(item),
      runId === undefined ? 'waiting' : 'ready',
      runId ?? null,
    );
  });
}

/**
 * Item runs that this transaction ended: marks their items, queues the next waiting items of their
 * maps (as many as `maxParallel` allows, in index order), and answers the map steps whose items all
 * ended, with their end. With more items failed than tolerated, the waiting items are skipped.
 */
export function endMapItems(
  sql: Sql,
  input: MapInput,
  namespace: string,
  ended: ReadonlyArray<{ id: number; workflow_step: string; status: string; result: string | null }>,
  now: number,
): { ends: Array<{ step: string; end: StepEnd }>; groups: string[] } {
  if (ended.length === 0) return { ends: [], groups: [] };
  const touched = new Set<string>();
  const mark = sql(
    `UPDATE workflow_map_items SET state = ?, result = ?
     WHERE instance_id = ? AND step_id = ? AND state = 'ready' AND run_id = ?`,
  );
  for (const run of [...ended].sort((a, b) => a.id - b.id)) {
    const end = endOf(run.status, run.result);
    const marked = mark.run(
      end.ok ? 'succeeded' : 'failed',
      end.ok ? JSON.stringify(end.result ?? null) : null,
      input.instanceId,
      run.workflow_step,
      run.id,
    );
    if (marked.changes > 0) touched.add(run.workflow_step);
  }
  return settleMaps(sql, input, namespace, touched, now);
}

/**
 * Queues the next waiting items of these map steps (as many as `maxParallel` allows, in index
 * order; none while the instance is paused: they stay waiting, held, until the resume settles them
 * again), and answers the map steps whose items all ended, with their end. With more items failed
 * than tolerated, the waiting items are skipped.
 */
export function settleMaps(
  sql: Sql,
  input: MapInput,
  namespace: string,
  stepIds: Iterable<string>,
  now: number,
): { ends: Array<{ step: string; end: StepEnd }>; groups: string[] } {
  const ends: Array<{ step: string; end: StepEnd }> = [];
  const groups: string[] = [];
  for (const stepId of stepIds) {
    const step = input.steps.find((s) => s.id === stepId)!;
    const map = step.map!;
    const { ready, failed, waiting } = sql(
      `SELECT
         (SELECT count(*) FROM workflow_map_items WHERE instance_id = @i AND step_id = @s AND state = 'ready') AS ready,
         (SELECT count(*) FROM workflow_map_items WHERE instance_id = @i AND step_id = @s AND state = 'failed') AS failed,
         EXISTS (SELECT 1 FROM workflow_map_items WHERE instance_id = @i AND step_id = @s AND state = 'waiting') AS waiting`,
    ).get({ i: input.instanceId, s: stepId }) as { ready: number; failed: number; waiting: number };
    let active = ready;
    let held = false;
    if (waiting && failed > map.tolerateFailures) {
      sql(
        `UPDATE workflow_map_items SET state = 'skipped' WHERE instance_id = ? AND step_id = ? AND state = 'waiting'`,
      ).run(input.instanceId, stepId);
    } else if (waiting && input.paused) {
      held = true;
    } else if (waiting && ready < map.maxParallel) {
      const next = sql(
        `SELECT idx, item FROM workflow_map_items
         WHERE instance_id = ? AND step_id = ? AND state = 'waiting' ORDER BY idx LIMIT ?`,
      ).all(input.instanceId, stepId, map.maxParallel - ready) as Array<{ idx: number; item: string }>;
      const runs = itemRuns(
        input,
        step,
        next.map((r) => ({ index: r.idx, item: JSON.parse(r.item) as Json })),
      );
      if (runs === null) {
        // Its job is gone: every waiting item fails without a run.
        sql(
          `UPDATE workflow_map_items SET state = 'failed' WHERE instance_id = ? AND step_id = ? AND state = 'waiting'`,
        ).run(input.instanceId, stepId);
      } else {
        const inserted = insertStepRuns(sql, input.instanceId, namespace, runs, now);
        groups.push(...[...inserted.values()].map((r) => r.group));
        const queue = sql(
          `UPDATE workflow_map_items SET state = 'ready', run_id = ?
           WHERE instance_id = ? AND step_id = ? AND idx = ? AND state = 'waiting'`,
        );
        for (const run of runs) {
          const row = inserted.get(run.idempotencyKey);
          if (row) queue.run(row.id, input.instanceId, stepId, run.index);
        }
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
    const items = sql(
      'SELECT state, result FROM workflow_map_items WHERE instance_id = ? AND step_id = ? ORDER BY idx',
    ).all(input.instanceId, stepId) as Array<{ state: string; result: string | null }>;
    const outcome = mapOutcome(
      map,
      items.map((r) => ({
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
export function replaceMapItems(
  sql: Sql,
  instanceId: number,
  reset: readonly string[],
  skipped: string | null,
): number[] {
  const steps = [...reset, ...(skipped === null ? [] : [skipped])];
  if (steps.length === 0) return [];
  const active = sql(
    `SELECT run_id FROM workflow_map_items WHERE instance_id = ? AND step_id IN (SELECT value FROM json_each(?))
       AND state = 'ready' AND run_id IS NOT NULL`,
  ).all(instanceId, JSON.stringify(steps)) as Array<{ run_id: number }>;
  sql(
    `DELETE FROM workflow_map_items WHERE instance_id = ? AND step_id IN (SELECT value FROM json_each(?))`,
  ).run(instanceId, JSON.stringify(reset));
  if (skipped !== null) {
    sql(
      `UPDATE workflow_map_items SET state = 'cancelled'
       WHERE instance_id = ? AND step_id = ? AND state IN ('waiting', 'ready')`,
    ).run(instanceId, skipped);
  }
  return active.map((r) => r.run_id);
}

/** Cancels a cancelled instance's waiting and ready items. */
export function cancelMapItems(sql: Sql, instanceId: number): void {
  sql(
    `UPDATE workflow_map_items SET state = 'cancelled' WHERE instance_id = ? AND state IN ('waiting', 'ready')`,
  ).run(instanceId);
}
