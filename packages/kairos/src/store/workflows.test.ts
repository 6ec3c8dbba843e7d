import type { JsonObject } from '@kairos/client';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { arbitraryInstance } from '../../test/workflow-arbitrary.ts';
import { jsonEqual, referenceEvaluation } from '../../test/workflow-reference.ts';
import { DEFAULT_RETRY } from '../core/retry.ts';
import type { CompiledStep } from '../core/workflow.ts';
import { endOf, type InstancePlan, planInstance, type StepRow } from './workflows.ts';

/** A JSON text as PostgreSQL's jsonb answers it: every object's keys sorted by length, then bytes. */
function asJsonb(value: unknown): string {
  const reorder = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(reorder);
    if (v === null || typeof v !== 'object') return v;
    const keys = Object.keys(v).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
    return Object.fromEntries(keys.map((k) => [k, reorder((v as Record<string, unknown>)[k])]));
  };
  return JSON.stringify(reorder(value === undefined ? null : value));
}

/**
 * The store's way of advancing an instance, as both dialects do it: planInstance on the steps' rows
 * as read back (results as JSON text, keys in jsonb's order, some ended runs pruned meanwhile), with
 * one or several step runs ending in one transaction, in a random order. What it decides must be the
 * reference evaluation of docs/workflows.md (test/workflow-reference.ts): the steps that get a run
 * (each one run, one idempotency key), the steps skipped, the instance's outcome, and the parents'
 * runs, states and results that each step's run receives.
 */
it('plans an instance as the reference evaluation, whatever ends together and whatever runs were pruned', () => {
  fc.assert(
    fc.property(arbitraryInstance(60), ({ steps, ends, picks }) => {
      const compiled: CompiledStep[] = steps.map((s) => ({
        ...s,
        after: [...s.after],
        run: {
          kind: 'handler',
          handler: 'h',
          group: 'g',
          params: {},
          retry: DEFAULT_RETRY,
          timeoutMs: 60_000,
          priority: 0,
          resources: null,
        },
      }));
      const rows = new Map<string, Omit<StepRow, 'run_status' | 'run_result'>>();
      const runs = new Map<number, { step: string; status: string; result: string | null }>();
      const keys = new Set<string>();
      let nextRunId = 1;
      let outcome: string | null = null;
      let turn = 0;
      const pick = () => picks[turn++ % picks.length]!;

      // Checked with `problems` rather than expect() in the loops: thousands of expects are slow.
      const problems: string[] = [];
      const check = (ok: boolean, what: string) => {
        if (!ok) problems.push(what);
      };
      const apply = (plan: InstancePlan) => {
        check(outcome === null, 'a plan after the instance ended');
        const runIds = new Map<string, number>();
        for (const run of plan.runs) {
          check(!keys.has(run.idempotencyKey), `a second run of ${run.step}`);
          keys.add(run.idempotencyKey);
          // What the step's run receives: one entry per edge; a parent that ended, as it ended.
          const parents = (run.params.$workflow as JsonObject).parents as JsonObject;
          const step = steps.find((s) => s.id === run.step)!;
          check(
            jsonEqual(Object.keys(parents).sort(), step.after.map((e) => e.from).sort()),
            `${run.step}: parents ${Object.keys(parents)}`,
          );
          for (const edge of step.after) {
            const row = rows.get(edge.from)!;
            const given = parents[edge.from] as JsonObject;
            if (row.state !== 'succeeded' && row.state !== 'failed') continue;
            const end = ends.get(edge.from)!;
            check(
              given.runId === row.run_id &&
                given.state === row.state &&
                jsonEqual(given.result, end.ok ? (end.result ?? null) : null),
              `${run.step} receives ${JSON.stringify(given)} from ${edge.from}`,
            );
          }
          const id = nextRunId++;
          runs.set(id, { step: run.step, status: 'queued', result: null });
          runIds.set(run.step, id);
        }
        for (const [step, state] of plan.states) {
          const before = rows.get(step);
          rows.set(step, {
            step_id: step,
            state,
            run_id: runIds.get(step) ?? before?.run_id ?? null,
            result: plan.results.get(step) ?? before?.result ?? null,
          });
        }
        outcome = plan.outcome;
      };
      const read = (): StepRow[] =>
        [...rows.values()].map((row) => {
          const run = row.run_id === null ? undefined : runs.get(row.run_id);
          return { ...row, run_status: run?.status ?? null, run_result: run?.result ?? null };
        });
      const plan = (ended: Array<{ step: string; end: ReturnType<typeof endOf> }>, fresh: boolean) =>
        planInstance({
          instanceId: 7,
          steps: compiled,
          context: { day: 1 },
          rows: fresh ? [] : read(),
          ended,
          jobs: new Map(),
          carrier: { jobId: 1 },
        });

      apply(plan([], true));
      for (;;) {
        const active = [...runs].filter(([, r]) => r.status === 'queued');
        if (active.length === 0) break;
        check(outcome === null, 'the instance ended with a step run queued');
        // One to three step runs end in one transaction, as a batch of reports or a sweep ends them.
        const batch = new Set<number>();
        const size = 1 + (pick() % 3);
        for (let i = 0; i < size; i++) batch.add(active[pick() % active.length]![0]);
        for (const id of batch) {
          const run = runs.get(id)!;
          const end = ends.get(run.step)!;
          run.status = end.ok ? 'succeeded' : (['failed', 'timed_out', 'cancelled'] as const)[pick() % 3]!;
          run.result = end.ok ? asJsonb(end.result) : null;
        }
        const now = read();
        const ended = [...batch]
          .map((id) => ({ id, run: runs.get(id)! }))
          .filter(({ id, run }) => {
            const row = now.find((r) => r.step_id === run.step);
            return row?.state === 'ready' && row.run_id === id;
          })
          .map(({ run }) => ({ step: run.step, end: endOf(run.status, run.result) }));
        apply(plan(ended, false));
        // Retention prunes some ended runs while the instance runs: their steps' rows keep the ends.
        for (const [id, run] of [...runs]) if (run.status !== 'queued' && pick() % 4 === 0) runs.delete(id);
      }

      expect(problems).toEqual([]);
      const reference = referenceEvaluation(steps, (id) => ends.get(id)!);
      const queued = [...keys].map((k) => k.split(':')[2]!);
      expect(queued.sort()).toEqual([...reference.ran].sort());
      for (const step of steps) {
        const end = ends.get(step.id)!;
        expect(rows.get(step.id)?.state).toBe(
          reference.skipped.includes(step.id) ? 'skipped' : end.ok ? 'succeeded' : 'failed',
        );
      }
      expect(outcome).toBe(reference.outcome);
    }),
    { numRuns: 200 },
  );
}, 120_000);
