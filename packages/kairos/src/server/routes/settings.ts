import { type RetentionSettings, RetentionSettingsSchema } from '@kairos/client';
import type { FastifyInstance } from 'fastify';
import type { PrunerState } from '../../scheduler/pruner.ts';
import { answers } from '../answers.ts';
import type { NodeContext } from '../context.ts';

const iso = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();

/** `GET /v1/settings/retention`: the console's Settings → Retention page (docs/retention.md). */
export function settingsRoutes(app: FastifyInstance, ctx: NodeContext): void {
  app.get(
    '/v1/settings/retention',
    {
      onRequest: ctx.requireRole('viewer'),
      schema: {
        operationId: 'retentionSettings',
        tags: ['node'],
        response: answers({ 200: RetentionSettingsSchema }),
      },
    },
    async (): Promise<RetentionSettings> => {
      const { retention, nodeId } = ctx.config;
      const state: PrunerState = ctx.pruner?.state ?? {
        lastTry: null,
        lastCycle: null,
        nextCycleAt: null,
        prunedSinceStart: {
          runs: 0,
          run_logs: 0,
          skipped_fires: 0,
          audit_log: 0,
          workers: 0,
          workflow_instances: 0,
          workflow_map_items: 0,
        },
      };
      return {
        enabled: retention.intervalMs > 0,
        intervalMs: retention.intervalMs,
        batch: retention.batch,
        keep: {
          finishedMs: retention.finishedMs,
          failedMs: retention.failedMs,
          logsMs: retention.logsMs,
          skippedFiresMs: retention.skippedFiresMs,
          auditMs: retention.auditMs,
          workersMs: retention.workersMs,
        },
        pruner: {
          nodeId,
          lastTryAt: iso(state.lastTry?.at),
          heldLease: state.lastTry?.heldLease ?? null,
          lastCycle: state.lastCycle && {
            endedAt: new Date(state.lastCycle.endedAt).toISOString(),
            tookMs: state.lastCycle.tookMs,
            pruned: state.lastCycle.pruned,
          },
          nextCycleAt: iso(state.nextCycleAt),
          prunedSinceStart: state.prunedSinceStart,
        },
      };
    },
  );
}
