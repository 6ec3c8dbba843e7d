import { Type } from '@sinclair/typebox';
import { nullable } from './common.ts';

/** Schemas of the node's settings pages (`GET /v1/settings/…`). */

/** Rows one pruner cycle deleted, by table (docs/retention.md). */
export const PrunedRowsSchema = Type.Object({
  runs: Type.Integer(),
  run_logs: Type.Integer(),
  skipped_fires: Type.Integer(),
  audit_log: Type.Integer(),
  workers: Type.Integer(),
  /** Ended workflow instances (their step rows go with them, uncounted). */
  workflow_instances: Type.Integer(),
  /** Items of their map steps, deleted in batches before their instances. */
  workflow_map_items: Type.Integer(),
});

/**
 * `GET /v1/settings/retention`: the node's global retention (its config, in ms) and what its pruner
 * did lately. One node of the cluster prunes at a time (the `retention` lease); another node answers
 * `heldLease: false` and shows its own last cycle, if it ever ran one.
 */
export const RetentionSettingsSchema = Type.Object({
  /** False when `retentionInterval` is 0: nothing is pruned. */
  enabled: Type.Boolean(),
  intervalMs: Type.Integer(),
  batch: Type.Integer(),
  /** How long each kind of row is kept, in ms. */
  keep: Type.Object({
    finishedMs: Type.Integer(),
    failedMs: Type.Integer(),
    logsMs: Type.Integer(),
    skippedFiresMs: Type.Integer(),
    auditMs: Type.Integer(),
    workersMs: Type.Integer(),
  }),
  pruner: Type.Object({
    nodeId: Type.String(),
    /** When this node last tried a cycle; null before its first. */
    lastTryAt: nullable(Type.String()),
    /** Whether it held the `retention` lease then (false: another node prunes); null before its first try. */
    heldLease: nullable(Type.Boolean()),
    /** The last cycle this node ran to its end. */
    lastCycle: nullable(
      Type.Object({ endedAt: Type.String(), tookMs: Type.Integer(), pruned: PrunedRowsSchema }),
    ),
    /** When this node tries its next cycle; null when its pruner does not run. */
    nextCycleAt: nullable(Type.String()),
    /** Rows this node deleted since it started, by table. */
    prunedSinceStart: PrunedRowsSchema,
  }),
});
