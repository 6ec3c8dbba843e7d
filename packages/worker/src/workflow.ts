import type { Json, JsonObject } from '@kairos/client';

/**
 * What a workflow step's run receives in `params.$workflow` (docs/workflows.md#what-a-step-receives):
 * its instance, its step, the instance context, its parents' ends, and for an item of a map step,
 * the item and its index.
 */
export interface WorkflowStepParams<Context extends JsonObject = JsonObject, Item extends Json = Json> {
  instanceId: number;
  step: string;
  /** The instance context as it was when this run was queued. */
  context: Context;
  /** One entry per incoming edge; `result` is null unless the parent succeeded. */
  parents: Record<string, { runId: number | null; state: string; result: Json }>;
  /** A map step's item run: the list's element. */
  item?: Item;
  /** A map step's item run: the item's index in the list, from 0. */
  index?: number;
}

/**
 * The workflow part of a run's params, or null for a run that no workflow step queued.
 *
 * ```ts
 * worker.handle('resize-one', async (ctx) => {
 *   const step = workflowOf<{ bucket: string }, string>(ctx);
 *   return { thumb: await resize(step!.context.bucket, step!.item!) };
 * });
 * ```
 */
export function workflowOf<Context extends JsonObject = JsonObject, Item extends Json = Json>(ctx: {
  readonly params: JsonObject;
}): WorkflowStepParams<Context, Item> | null {
  const value = ctx.params.$workflow;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  return value as unknown as WorkflowStepParams<Context, Item>;
}

/**
 * A step's result that also writes the instance context: when the step succeeds, each entry of
 * `write` replaces the context's entry of that name, in the transaction that ends the step; the
 * steps queued after see it (docs/workflows.md#context). The result keeps the `$context` key.
 *
 * ```ts
 * worker.handle('extract', async () => withContext({ rows: 1200 }, { day: '2026-12-05' }));
 * ```
 */
export function withContext<Result extends JsonObject>(
  result: Result,
  write: JsonObject,
): Result & { $context: JsonObject } {
  return { ...result, $context: write };
}
