import type { GroupInfo, GroupLimitRequest } from '@kairos/client';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { compileRateLimit } from '../../core/dispatch-policy.ts';
import { KairosError } from '../../errors.ts';
import type { GroupLimit } from '../../store/store.ts';
import type { NodeContext } from '../context.ts';
import { WorkerParam } from '../schemas.ts';
import { workerView } from '../views.ts';
import { GroupLimitSchema, GroupParam } from '../worker-schemas.ts';

/** Steering the fleet: draining a worker, group limits. */
export function workerAdminRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const { store, clock } = ctx;
  const read = { onRequest: ctx.requireRole('viewer') };
  const write = { onRequest: ctx.requireRole('operator') };

  app.post<{ Params: Static<typeof WorkerParam> }>(
    '/v1/workers/:id/drain',
    { ...write, schema: { tags: ['workers'], params: WorkerParam } },
    async (request) => {
      const worker = await store.drainWorker(request.params.id, clock.now());
      if (!worker) throw new KairosError('WORKER_NOT_FOUND', `no worker ${request.params.id}`);
      return workerView(worker);
    },
  );

  app.get('/v1/groups', { ...read, schema: { tags: ['workers'] } }, async () => ({
    items: (await store.listGroupLimits()).map(groupView),
  }));

  app.put<{ Params: Static<typeof GroupParam>; Body: GroupLimitRequest }>(
    '/v1/groups/:name',
    { ...write, schema: { tags: ['workers'], params: GroupParam, body: GroupLimitSchema } },
    async (request) => {
      const now = clock.now();
      const limits = {
        maxConcurrency: request.body.maxConcurrency ?? null,
        rateLimit: compileRateLimit(request.body.rateLimit, 'rateLimit'),
      };
      await store.setGroupLimit(request.params.name, limits, now);
      return groupView({ group: request.params.name, ...limits, updatedAt: now });
    },
  );
}

function groupView(limit: GroupLimit): GroupInfo {
  return {
    group: limit.group,
    maxConcurrency: limit.maxConcurrency,
    rateLimit: limit.rateLimit && { limit: limit.rateLimit.limit, per: limit.rateLimit.perMs },
    updatedAt: new Date(limit.updatedAt).toISOString(),
  };
}
