import {
  type Job,
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
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { describeJob, type JobRecord } from '../../core/job.ts';
import { KairosError } from '../../errors.ts';
import type { EditCondition } from '../../scheduler/job-service.ts';
import { answers, NoContent } from '../answers.ts';
import { describeChange } from '../audit.ts';
import type { NodeContext } from '../context.ts';
import { nameCursor } from '../cursor.ts';
import { fitPage } from '../page-budget.ts';
import { requestTraceContext } from '../tracing.ts';
import { runView } from '../views.ts';

type NameParams = Static<typeof NameParam>;

/** `If-Match` on the routes that change a job: the version (ETag) the change was decided on. */
const IfMatchHeader = Type.Object({
  'if-match': Type.Optional(
    Type.String({
      maxLength: 64,
      description: 'The job version (its ETag) the change applies to; 409 VERSION_CONFLICT otherwise.',
    }),
  ),
});
type IfMatch = Static<typeof IfMatchHeader>;

function etagOf(version: number): string {
  return `"${version}"`;
}

function answerJob(reply: FastifyReply, record: JobRecord): Job {
  const job = describeJob(record);
  reply.header('etag', etagOf(job.version));
  return job;
}

/**
 * The version a change applies to, from `If-Match` (`"3"`, `W/"3"` or `3`; `*`: any) and/or the
 * body's `version`; both given must agree.
 */
function editCondition(headers: IfMatch, bodyVersion: number | undefined): EditCondition {
  const header = headers['if-match']?.trim();
  let version: number | undefined;
  if (header !== undefined && header !== '*') {
    const match = /^(?:W\/)?"?([1-9]\d{0,14})"?$/.exec(header);
    if (!match) {
      throw new KairosError('VALIDATION_FAILED', 'If-Match: expected a job version such as "3"', {
        field: 'If-Match',
      });
    }
    version = Number(match[1]);
  }
  if (version !== undefined && bodyVersion !== undefined && version !== bodyVersion) {
    throw new KairosError(
      'VALIDATION_FAILED',
      `version: ${bodyVersion} in the body, ${version} in If-Match; send one, or the same`,
      { field: 'version' },
    );
  }
  return { version: version ?? bodyVersion };
}

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
      return describeJob(
        await jobs.create(request.body, request.namespace, await ctx.quotas.of(request.namespace)),
      );
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
      const items = await store.listJobs({
        namespace: request.namespace,
        group: request.query.group,
        after,
        limit,
      });
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
    async (request, reply) => {
      const job = describeJob(await jobs.get(request.params.name));
      reply.header('etag', etagOf(job.version));
      return job;
    },
  );

  app.put<{ Params: NameParams; Body: JobSpec; Headers: IfMatch }>(
    '/v1/jobs/:name',
    {
      ...write,
      schema: {
        operationId: 'putJob',
        tags: ['jobs'],
        params: NameParam,
        headers: IfMatchHeader,
        body: JobSpecBody,
        response: answers({ 200: JobSchema }),
      },
    },
    async (request, reply) => {
      const { version, ...spec } = request.body;
      const job = await jobs.put(
        { ...spec, name: request.params.name },
        editCondition(request.headers, version),
        request.namespace,
        await ctx.quotas.of(request.namespace),
      );
      return answerJob(reply, job);
    },
  );

  app.patch<{ Params: NameParams; Body: JobPatch; Headers: IfMatch }>(
    '/v1/jobs/:name',
    {
      ...write,
      schema: {
        operationId: 'updateJob',
        tags: ['jobs'],
        params: NameParam,
        headers: IfMatchHeader,
        body: JobPatchBody,
        response: answers({ 200: JobSchema }),
      },
    },
    async (request, reply) => {
      const { version, ...patch } = request.body;
      const job = await jobs.update(
        request.params.name,
        patch,
        editCondition(request.headers, version),
        await ctx.quotas.of(request.namespace),
      );
      return answerJob(reply, job);
    },
  );

  app.delete<{ Params: NameParams; Headers: IfMatch }>(
    '/v1/jobs/:name',
    {
      ...write,
      schema: {
        operationId: 'deleteJob',
        tags: ['jobs'],
        params: NameParam,
        headers: IfMatchHeader,
        response: answers({ 204: NoContent }),
      },
    },
    async (request, reply) => {
      await jobs.delete(request.params.name, editCondition(request.headers, undefined));
      reply.status(204);
    },
  );

  app.post<{ Params: NameParams; Headers: IfMatch }>(
    '/v1/jobs/:name/pause',
    {
      ...write,
      schema: {
        operationId: 'pauseJob',
        tags: ['jobs'],
        params: NameParam,
        headers: IfMatchHeader,
        response: answers({ 200: JobSchema }),
      },
    },
    async (request, reply) =>
      answerJob(reply, await jobs.pause(request.params.name, editCondition(request.headers, undefined))),
  );

  app.post<{ Params: NameParams; Headers: IfMatch }>(
    '/v1/jobs/:name/resume',
    {
      ...write,
      schema: {
        operationId: 'resumeJob',
        tags: ['jobs'],
        params: NameParam,
        headers: IfMatchHeader,
        response: answers({ 200: JobSchema }),
      },
    },
    async (request, reply) =>
      answerJob(reply, await jobs.resume(request.params.name, editCondition(request.headers, undefined))),
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
        namespace: request.namespace,
        at: clock.now(),
        actor: request.principal?.actor ?? 'anonymous',
        ...describeChange(request, '/v1/jobs/:name/trigger'),
      };
      const run = await jobs.triggerOne(
        request.params.name,
        request.body ?? {},
        audit,
        requestTraceContext(request),
        await ctx.quotas.of(request.namespace),
      );
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
      const runIds = await jobs.trigger(
        request.params.name,
        request.body.runs,
        requestTraceContext(request),
        await ctx.quotas.of(request.namespace),
      );
      metrics.runsCreated.inc({ cause: 'manual' }, runIds.length);
      reply.status(201);
      return { runIds };
    },
  );
}
