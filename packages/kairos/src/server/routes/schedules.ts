import {
  type BackfillRequest,
  BackfillRequestSchema,
  BackfillResponseSchema,
  NameParam,
  PreviewQuery,
  type PreviewRequest,
  PreviewRequestBody,
  PreviewSchema,
  type SkippedFires,
  SkippedPageSchema,
  SkippedQuery,
} from '@kairos/client';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { previewFires } from '../../core/preview.ts';
import { compileSchedule } from '../../core/schedule-policy.ts';
import { compileTrigger, parseInstant } from '../../core/trigger.ts';
import { KairosError } from '../../errors.ts';
import type { SkippedRecord } from '../../store/store.ts';
import { answers } from '../answers.ts';
import type { NodeContext } from '../context.ts';
import { idCursor } from '../cursor.ts';
import { requestTraceContext } from '../tracing.ts';

type NameParams = Static<typeof NameParam>;

/** Schedules: the ledger of fires that did not run, and previews of upcoming fires. */
export function scheduleRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const { jobs, store, clock } = ctx;
  const read = { onRequest: ctx.requireRole('viewer') };
  const write = { onRequest: ctx.requireRole('operator') };

  app.get<{ Params: NameParams; Querystring: Static<typeof SkippedQuery> }>(
    '/v1/jobs/:name/skipped',
    {
      ...read,
      schema: {
        operationId: 'listSkipped',
        tags: ['schedules'],
        params: NameParam,
        querystring: SkippedQuery,
        response: answers({ 200: SkippedPageSchema }),
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 50;
      const { cursor } = request.query;
      const before = idCursor(cursor);
      const job = await jobs.get(request.params.name);
      const items = await store.listSkipped(job.id, { before, limit });
      return {
        items: items.map(skippedView),
        nextCursor: items.length === limit ? String(items[items.length - 1]!.id) : null,
      };
    },
  );

  app.get<{ Params: NameParams; Querystring: Static<typeof PreviewQuery> }>(
    '/v1/jobs/:name/preview',
    {
      ...read,
      schema: {
        operationId: 'previewJob',
        tags: ['schedules'],
        params: NameParam,
        querystring: PreviewQuery,
        response: answers({ 200: PreviewSchema }),
      },
    },
    async (request) => {
      const job = await jobs.get(request.params.name);
      const calendars = await store.getCalendars(job.schedule.calendars);
      return previewFires({ ...job, calendars }, clock.now(), request.query.count ?? 20);
    },
  );

  app.post<{ Params: NameParams; Body: BackfillRequest }>(
    '/v1/jobs/:name/backfill',
    {
      ...write,
      schema: {
        operationId: 'backfill',
        tags: ['schedules'],
        params: NameParam,
        body: BackfillRequestSchema,
        response: answers({ 201: BackfillResponseSchema }),
      },
    },
    async (request, reply) => {
      const result = await jobs.backfill(
        request.params.name,
        request.body,
        requestTraceContext(request),
        await ctx.quotas.of(request.namespace),
      );
      ctx.metrics.runsCreated.inc({ cause: 'backfill' }, result.runs.length);
      reply.status(201);
      return result;
    },
  );

  app.post<{ Body: PreviewRequest }>(
    '/v1/preview',
    {
      ...read,
      schema: {
        operationId: 'preview',
        tags: ['schedules'],
        body: PreviewRequestBody,
        response: answers({ 200: PreviewSchema }),
      },
    },
    async (request) => {
      const { trigger, schedule, count, from } = request.body;
      const policy = compileSchedule(schedule);
      // Only the request's namespace's calendars: another's is as unknown as one that does not exist.
      const calendars = (await store.getCalendars(policy.calendars)).filter(
        (calendar) => calendar.namespace === request.namespace,
      );
      return previewFires(
        { trigger: compileTrigger(trigger), schedule: policy, calendars },
        from === undefined ? clock.now() : instant(from),
        count ?? 10,
      );
    },
  );
}

function instant(value: string): number {
  try {
    return parseInstant(value, 'from');
  } catch {
    throw new KairosError(
      'VALIDATION_FAILED',
      'from: expected an RFC 3339 instant with an offset, such as 2030-01-01T09:00:00Z',
      { field: 'from' },
    );
  }
}

export function skippedView(record: SkippedRecord): SkippedFires {
  return {
    id: record.id,
    jobName: record.jobName,
    reason: record.reason,
    firstFireTime: new Date(record.first).toISOString(),
    lastFireTime: new Date(record.last).toISOString(),
    count: record.count,
    recordedAt: new Date(record.recordedAt).toISOString(),
  };
}
