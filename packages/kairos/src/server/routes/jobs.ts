import {
  JobPageSchema,
  type JobPatch,
  JobPatchBody,
  JobQuery,
  JobSchema,
  type JobSpec,
  JobSpecBody,
  NameParam,
  RunSchema,
  TriggerBatchResponseSchema,
  TriggerBatchSchema,
  type TriggerRequest,
  TriggerRequestSchema,
} from '@kairos/client';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { describeJob } from '../../core/job.ts';
import { answers, NoContent } from '../answers.ts';
import { describeChange } from '../audit.ts';
import type { NodeContext } from '../context.ts';
import { nameCursor } from '../cursor.ts';
import { fitPage } from '../page-budget.ts';
import { runView } from '../views.ts';

type NameParams = Static<typeof NameParam>;

export function jobRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const { jobs, store, metrics, clock } = ctx;
  const read = { onRequest: ctx.requireRole('viewer') };
  const write = { onRequest: ctx.requireRole('operator') };

  app.post<{ Body: JobSpec }>(
    '/v1/jobs',
    {
      ...write,
      schema: {
        operationId: 'createJob',
        tags: ['jobs'],
        body: JobSpecBody,
        response: answers({ 201: JobSchema }),
      },
    },
    async (request, reply) => {
      reply.status(201);
      return describeJob(await jobs.create(request.body));
    },
  );

  app.get<{ Querystring: Static<typeof JobQuery> }>(
    '/v1/jobs',
    {
      ...read,
      schema: {
        operationId: 'listJobs',
        tags: ['jobs'],
        querystring: JobQuery,
        response: answers({ 200: JobPageSchema }),
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 50;
      const after = nameCursor(request.query.cursor);
      const items = await store.listJobs({ group: request.query.group, after, limit });
      const page = fitPage(items, describeJob);
      const last = page.rows[page.rows.length - 1];
      return {
        items: page.items,
        nextCursor: last && (page.cut || items.length === limit) ? last.name : null,
      };
    },
  );

  app.get<{ Params: NameParams }>(
    '/v1/jobs/:name',
    {
      ...read,
      schema: {
        operationId: 'getJob',
        tags: ['jobs'],
        params: NameParam,
        response: answers({ 200: JobSchema }),
      },
    },
    async (request) => describeJob(await jobs.get(request.params.name)),
  );

  app.put<{ Params: NameParams; Body: JobSpec }>(
    '/v1/jobs/:name',
    {
      ...write,
      schema: {
        operationId: 'putJob',
        tags: ['jobs'],
        params: NameParam,
        body: JobSpecBody,
        response: answers({ 200: JobSchema }),
      },
    },
    async (request) => describeJob(await jobs.put({ ...request.body, name: request.params.name })),
  );

  app.patch<{ Params: NameParams; Body: JobPatch }>(
    '/v1/jobs/:name',
    {
      ...write,
      schema: {
        operationId: 'updateJob',
        tags: ['jobs'],
        params: NameParam,
        body: JobPatchBody,
        response: answers({ 200: JobSchema }),
      },
    },
    async (request) => describeJob(await jobs.update(request.params.name, request.body)),
  );

  app.delete<{ Params: NameParams }>(
    '/v1/jobs/:name',
    {
      ...write,
      schema: {
        operationId: 'deleteJob',
        tags: ['jobs'],
        params: NameParam,
        response: answers({ 204: NoContent }),
      },
    },
    async (request, reply) => {
      await jobs.delete(request.params.name);
      reply.status(204);
    },
  );

  app.post<{ Params: NameParams }>(
    '/v1/jobs/:name/pause',
    {
      ...write,
      schema: {
        operationId: 'pauseJob',
        tags: ['jobs'],
        params: NameParam,
        response: answers({ 200: JobSchema }),
      },
    },
    async (request) => describeJob(await jobs.pause(request.params.name)),
  );

  app.post<{ Params: NameParams }>(
    '/v1/jobs/:name/resume',
    {
      ...write,
      schema: {
        operationId: 'resumeJob',
        tags: ['jobs'],
        params: NameParam,
        response: answers({ 200: JobSchema }),
      },
    },
    async (request) => describeJob(await jobs.resume(request.params.name)),
  );

  app.post<{ Params: NameParams; Body: TriggerRequest | undefined }>(
    '/v1/jobs/:name/trigger',
    {
      ...write,
      // The run, its job's defaults and the audit entry in one write (Store.triggerRun).
      config: { auditedInStore: true },
      schema: {
        operationId: 'triggerJob',
        tags: ['jobs'],
        params: NameParam,
        body: TriggerRequestSchema,
        response: answers({ 201: RunSchema }),
      },
    },
    async (request, reply) => {
      const audit = {
        at: clock.now(),
        actor: request.principal?.actor ?? 'anonymous',
        ...describeChange(request, '/v1/jobs/:name/trigger'),
      };
      const run = await jobs.triggerOne(request.params.name, request.body ?? {}, audit);
      metrics.runsCreated.inc({ cause: 'manual' });
      reply.status(201);
      return runView(run);
    },
  );

  app.post<{ Params: NameParams; Body: { runs: TriggerRequest[] } }>(
    '/v1/jobs/:name/trigger-batch',
    {
      ...write,
      schema: {
        operationId: 'triggerJobBatch',
        tags: ['jobs'],
        params: NameParam,
        body: TriggerBatchSchema,
        response: answers({ 201: TriggerBatchResponseSchema }),
      },
    },
    async (request, reply) => {
      const runIds = await jobs.trigger(request.params.name, request.body.runs);
      metrics.runsCreated.inc({ cause: 'manual' }, runIds.length);
      reply.status(201);
      return { runIds };
    },
  );
}
