import {
  IdParam,
  NodeListSchema,
  RunPageSchema,
  RunQuery,
  RunSchema,
  WorkerListSchema,
  WorkerQuery,
} from '@kairos/client';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { whyQueued } from '../../core/queue-wait.ts';
import { KairosError } from '../../errors.ts';
import { answers } from '../answers.ts';
import type { NodeContext } from '../context.ts';
import { idCursor } from '../cursor.ts';
import { fitPage } from '../page-budget.ts';
import { queryInstant } from '../query-instant.ts';
import { nodeView, runSummaryView, runView, workerView } from '../views.ts';

export function runRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const { store, jobs, clock } = ctx;
  const read = { onRequest: ctx.requireRole('viewer') };
  const write = { onRequest: ctx.requireRole('operator') };

  app.get<{ Querystring: Static<typeof RunQuery> }>(
    '/v1/runs',
    {
      ...read,
      schema: {
        operationId: 'listRuns',
        tags: ['runs'],
        querystring: RunQuery,
        response: answers({ 200: RunPageSchema }),
      },
    },
    async (request) => {
      const { job, status, worker, cursor } = request.query;
      const limit = request.query.limit ?? 50;
      const before = idCursor(cursor);
      const createdSince = queryInstant(request.query.since, 'since');
      const createdUntil = queryInstant(request.query.until, 'until');
      if (createdSince !== undefined && createdUntil !== undefined && createdSince >= createdUntil) {
        throw new KairosError('INVALID_TIME_RANGE', 'until must be later than since', {
          since: request.query.since ?? null,
          until: request.query.until ?? null,
        });
      }
      const named = job === undefined ? undefined : await jobs.get(job);
      if (named && named.namespace !== request.namespace)
        throw new KairosError('JOB_NOT_FOUND', `no job named ${JSON.stringify(job)}`);
      const items = await store.listRuns({
        namespace: request.namespace,
        jobId: named?.id,
        status,
        workerId: worker,
        before,
        createdSince,
        createdUntil,
        limit,
        summary: request.query.include !== 'params',
      });
      const withParams = request.query.include === 'params';
      const page = fitPage(items, (run) => (withParams ? runView(run) : runSummaryView(run)));
      const last = page.rows[page.rows.length - 1];
      return {
        items: page.items,
        nextCursor: last && (page.cut || items.length === limit) ? String(last.id) : null,
      };
    },
  );

  app.get<{ Params: Static<typeof IdParam> }>(
    '/v1/runs/:id',
    {
      ...read,
      schema: {
        operationId: 'getRun',
        tags: ['runs'],
        params: IdParam,
        response: answers({ 200: RunSchema }),
      },
    },
    async (request) => {
      const run = await store.getRun(request.params.id);
      if (!run) throw new KairosError('RUN_NOT_FOUND', `no run ${request.params.id}`);
      const view = runView(run, await store.getAttempts(run.id));
      if (run.status === 'queued')
        view.waiting = whyQueued(run, await store.listWorkers(run.namespace), clock.now());
      return view;
    },
  );

  app.post<{ Params: Static<typeof IdParam> }>(
    '/v1/runs/:id/cancel',
    {
      ...write,
      schema: {
        operationId: 'cancelRun',
        tags: ['runs'],
        params: IdParam,
        response: answers({ 200: RunSchema }),
      },
    },
    async (request) => {
      const run = await store.cancelRun(request.params.id, clock.now());
      if (!run) throw new KairosError('RUN_NOT_FOUND', `no run ${request.params.id}`);
      if (run.status === 'cancelled') ctx.metrics.runsEnded.inc({ status: 'cancelled' });
      return runView(run, await store.getAttempts(run.id));
    },
  );

  const listNodes = {
    operationId: 'listNodes',
    tags: ['cluster'],
    response: answers({ 200: NodeListSchema }),
  };
  app.get('/v1/nodes', { ...read, schema: listNodes }, async () => {
    const now = clock.now();
    return { items: (await store.listNodes()).map((node) => nodeView(node, now)) };
  });

  const listWorkers = {
    operationId: 'listWorkers',
    tags: ['workers'],
    querystring: WorkerQuery,
    response: answers({ 200: WorkerListSchema }),
  };
  app.get<{ Querystring: Static<typeof WorkerQuery> }>(
    '/v1/workers',
    { ...read, schema: listWorkers },
    async (request) => {
      // Lost and stopped workers stay until the reaper prunes them; a list of the fleet hides them.
      const workers = (await store.listWorkers(request.namespace)).filter(
        (worker) => request.query.all || worker.status === 'active' || worker.status === 'draining',
      );
      // What the runs of the workers that can hold requests use: read only for those.
      const holders = workers.filter(
        (w) => w.resources && (w.status === 'active' || w.status === 'draining'),
      );
      const inUse = await store.resourcesInUse(holders.map((w) => w.id));
      const held = new Set(holders.map((w) => w.id));
      return {
        items: workers.map((w) => workerView(w, held.has(w.id) ? (inUse.get(w.id) ?? {}) : undefined)),
      };
    },
  );
}
