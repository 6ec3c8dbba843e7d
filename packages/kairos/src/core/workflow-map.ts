import type { Json, JsonObject, WorkflowMapSpec } from '@kairos/client';
import { KairosError } from '../errors.ts';
import { type StepFailure, stepFailure } from './workflow-failures.ts';
import { valueAt } from './workflow-graph.ts';

/**
 * Map steps (docs/workflows.md#map-and-reduce): a step that runs once per item of a list, the list
 * taken from a parent's result or the instance context when the step becomes ready. Items states:
 *
 *   waiting ──▶ ready (its run queued) ──▶ succeeded | failed
 *   waiting ──▶ skipped                    (more items failed than tolerated: none is queued after)
 *
 * At most `maxParallel` items are ready at once; each item's end queues the next waiting ones, in
 * index order, in its own transaction. The step ends when no item is waiting or ready: succeeded
 * when at most `tolerateFailures` items failed (its result: the items' results in index order, null
 * for a failed one), failed otherwise. Pure: the store reads and writes (store/workflow-maps.ts).
 */

/** A compiled map: every field set. */
export interface MapConfig {
  /** A parent step's id, or {@link CONTEXT_SOURCE}. */
  from: string;
  /** A dotted path into the source; null: the source itself. */
  path: string | null;
  maxParallel: number;
  maxItems: number;
  tolerateFailures: number;
}

/** `from` naming the instance context instead of a parent. */
export const CONTEXT_SOURCE = '$context';
export const DEFAULT_MAX_PARALLEL = 10;
/** The widest a map may be (items per map step), and the default of `maxItems`. */
export const MAP_WIDTH_LIMIT = 10_000;

/** Compiles a map spec; `parents` are the step's parents (its `from` must be one, or `$context`). */
export function compileMap(spec: WorkflowMapSpec, field: string): MapConfig {
  const whole = (value: number | undefined, name: string, min: number, max: number, fallback: number) => {
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new KairosError(
        'VALIDATION_FAILED',
        `${field}.${name}: expected a whole number from ${min} to ${max}`,
        {
          field: `${field}.${name}`,
        },
      );
    }
    return value;
  };
  return {
    from: spec.from,
    path: spec.path ?? null,
    maxParallel: whole(spec.maxParallel, 'maxParallel', 1, 1000, DEFAULT_MAX_PARALLEL),
    maxItems: whole(spec.maxItems, 'maxItems', 1, MAP_WIDTH_LIMIT, MAP_WIDTH_LIMIT),
    tolerateFailures: whole(spec.tolerateFailures, 'tolerateFailures', 0, MAP_WIDTH_LIMIT, 0),
  };
}

/**
 * The items of a map step that became ready: the list at `path` of its source (the `from` parent's
 * result, or the context). Anything but a JSON array, or a longer one than `maxItems`, is a failure.
 */
export function mapItems(map: MapConfig, source: unknown): { items: Json[] } | { error: StepFailure } {
  const where = `${map.from === CONTEXT_SOURCE ? 'the context' : `the result of '${map.from}'`}${map.path === null ? '' : ` at '${map.path}'`}`;
  const list = map.path === null ? source : valueAt(source, map.path);
  if (!Array.isArray(list)) {
    const kind =
      list === undefined
        ? 'nothing'
        : list === null
          ? 'null'
          : typeof list === 'object'
            ? 'an object'
            : `a ${typeof list}`;
    return { error: stepFailure('MAP_NOT_A_LIST', `${where} is ${kind}, not a list`) };
  }
  if (list.length > map.maxItems) {
    return {
      error: stepFailure(
        'MAP_TOO_WIDE',
        `${where} holds ${list.length} items, more than the ${map.maxItems} a map step takes`,
      ),
    };
  }
  return { items: list as Json[] };
}

/** What a map step whose items all ended ended with. */
export function mapOutcome(
  map: MapConfig,
  items: ReadonlyArray<{ state: string; result: Json | null }>,
): { ok: true; result: Json[] } | { ok: false; error: StepFailure } {
  const failed = items.filter((i) => i.state !== 'succeeded').length;
  if (failed > map.tolerateFailures) {
    return {
      ok: false,
      error: stepFailure(
        'MAP_ITEMS_FAILED',
        `${failed} of ${items.length} items failed or were not run, more than the ${map.tolerateFailures} tolerated`,
      ),
    };
  }
  return { ok: true, result: items.map((i) => (i.state === 'succeeded' ? i.result : null)) };
}

/** The `$workflow` fields an item run gets on top of a step run's. */
export function itemFields(item: Json, index: number): JsonObject {
  return { item, index };
}
