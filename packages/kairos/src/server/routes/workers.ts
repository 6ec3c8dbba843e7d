import {
  type GroupInfo,
  GroupInfoSchema,
  type GroupLimitRequest,
  GroupLimitRequestSchema,
  GroupListSchema,
  GroupParam,
  WorkerInfoSchema,
  WorkerParam,
} from '@kairos/client';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { compileRateLimit } from '../../core/dispatch-policy.ts';
import { KairosError } from '../../errors.ts';
import type { GroupLimit } from '../../store/store.ts';
import { answers } from '../answers.ts';
import type { NodeContext } from '../context.ts';
import { workerView } from '../views.ts';

/** Steering the fleet: draining and resuming a worker, group limits. */
export function workerAdminRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const { store, clock } = ctx;
  const read = { onRequest: ctx.requireRole('viewer') };
  const write = { onRequest: ctx.requireRole('operator') };

  app.post<{ Params: Static<typeof WorkerParam> }>(
    '/v1/workers/:id/drain',
    {
      ...write,
      schema: {
        operationId: 'drainWorker',
        tags: ['workers'],
        params: WorkerParam,
        response: answers({ 200: WorkerInfoSchema }),
      },
    },
    async (request) => {
      const worker = await store.drainWorker(request.params.id, clock.now());
      if (!worker) throw new KairosError('WORKER_NOT_FOUND', `no worker ${request.params.id}`);
      return workerView(worker);
    },
  );

  app.post<{ Params: Static<typeof WorkerParam> }>(
    '/v1/workers/:id/resume',
    {
      ...write,
      schema: {
        operationId: 'resumeWorker',
        tags: ['workers'],
        params: WorkerParam,
        response: answers({ 200: WorkerInfoSchema }),
      },
    },
    async (request) => {
      const worker = await store.resumeWorker(request.params.id, clock.now());
      if (!worker) throw new KairosError('WORKER_NOT_FOUND', `no worker ${request.params.id}`);
      return workerView(worker);
    },
  );

  const listGroups = {
    operationId: 'listGroups',
    tags: ['workers'],
    response: answers({ 200: GroupListSchema }),
  };
  // A group is a pool of workers of one namespace, and its limits are that namespace's
  // (docs/tenancy.md): both routes act in the request's namespace only.
  app.get('/v1/groups', { ...read, schema: listGroups }, async (request) => ({
    items: (await store.listGroupLimits(request.namespace)).map(groupView),
  }));

  app.put<{ Params: Static<typeof GroupParam>; Body: GroupLimitRequest }>(
    '/v1/groups/:name',
    {
      ...write,
      schema: {
        operationId: 'setGroupLimits',
        tags: ['workers'],
        params: GroupParam,
        body: GroupLimitRequestSchema,
        response: answers({ 200: GroupInfoSchema }),
      },
    },
    async (request) => {
      const now = clock.now();
      const limits = {
        maxConcurrency: request.body.maxConcurrency ?? null,
        rateLimit: compileRateLimit(request.body.rateLimit, 'rateLimit'),
      };
      await store.setGroupLimit(request.params.name, limits, now, request.namespace);
      return groupView({
        namespace: request.namespace,
        group: request.params.name,
        ...limits,
        updatedAt: now,
      });
    },
  );
}

function groupView(limit: GroupLimit): GroupInfo {
  return {
    namespace: limit.namespace,
    group: limit.group,
    maxConcurrency: limit.maxConcurrency,
    rateLimit: limit.rateLimit && { limit: limit.rateLimit.limit, per: limit.rateLimit.perMs },
    updatedAt: new Date(limit.updatedAt).toISOString(),
  };
}
