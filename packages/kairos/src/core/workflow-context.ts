import type { Json, JsonObject } from '@kairos/client';
import { type StepFailure, stepFailure } from './workflow-failures.ts';

/**
 * Context writes (docs/workflows.md#context): a step whose result is an object with a `$context`
 * object writes it into the instance context when the step succeeds, each of its entries replacing
 * the context's entry of that name (a shallow merge), in the transaction that ends the step. Ends
 * are merged in the order they commit under the instance's lock (within one transaction, in the
 * order of their runs' ids). Pure.
 */

/** The key of a result that holds a context write. */
export const CONTEXT_KEY = '$context';
/** The most an instance context may weigh, in bytes of JSON: what a start takes, and what writes may reach. */
export const CONTEXT_LIMIT_BYTES = 64 * 1024;

/**
 * The context after a step's result wrote it: `unchanged` when the result writes nothing (not an
 * object, or no `$context` key), an error when `$context` is not an object or the merged context
 * would weigh more than {@link CONTEXT_LIMIT_BYTES} (the context is then left as it was).
 */
export function writeContext(
  context: JsonObject,
  result: unknown,
): { context: JsonObject } | { unchanged: true } | { error: StepFailure } {
  if (result === null || typeof result !== 'object' || Array.isArray(result)) return { unchanged: true };
  if (!Object.hasOwn(result, CONTEXT_KEY)) return { unchanged: true };
  const write = (result as Record<string, Json>)[CONTEXT_KEY];
  if (write === null || typeof write !== 'object' || Array.isArray(write)) {
    return { error: stepFailure('CONTEXT_INVALID', `the result's ${CONTEXT_KEY} is not a JSON object`) };
  }
  const merged = { ...context, ...write };
  const size = Buffer.byteLength(JSON.stringify(merged));
  if (size > CONTEXT_LIMIT_BYTES) {
    return {
      error: stepFailure(
        'CONTEXT_TOO_LARGE',
        `the context would weigh ${size} bytes with this write, over the limit of ${CONTEXT_LIMIT_BYTES}`,
      ),
    };
  }
  return { context: merged };
}
