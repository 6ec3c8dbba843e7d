import type { Preview, PreviewRequest, TriggerSpec } from '@kairos/client';
import type { FastifyInstance } from 'fastify';
import { compileTrigger, firstFire, nextFireAfter } from '../../core/trigger.ts';
import { PreviewSchema } from '../access-schemas.ts';
import type { NodeContext } from '../context.ts';

/**
 * `POST /v1/preview {trigger, count}`: the next fire times of a trigger from now, computed by the
 * same core functions the trigger loop uses, so the console's preview is what will happen.
 * Invalid triggers answer the same codes as creating a job (INVALID_CRON, …).
 */
export function previewRoutes(app: FastifyInstance, ctx: NodeContext): void {
  app.post<{ Body: PreviewRequest }>(
    '/v1/preview',
    { onRequest: ctx.requireRole('viewer'), schema: { tags: ['jobs'], body: PreviewSchema } },
    async (request) => {
      const trigger = compileTrigger(request.body.trigger as TriggerSpec);
      const count = request.body.count ?? 10;
      const times: number[] = [];
      // Fixed delay depends on when runs finish, and manual has no schedule: no fire times to show.
      if (trigger.kind !== 'delay' && trigger.kind !== 'manual') {
        let next = firstFire(trigger, ctx.clock.now());
        while (next !== null && times.length < count) {
          times.push(next);
          next = nextFireAfter(trigger, next);
        }
      }
      const preview: Preview = {
        fires: times.map((ms) => {
          const at = new Date(ms).toISOString();
          return { fireTime: at, runAt: at };
        }),
        skipped: [],
      };
      return preview;
    },
  );
}
