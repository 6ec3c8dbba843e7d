import {
  IdParam,
  type Json,
  NameParam,
  SkippedPageSchema,
  SkippedQuery,
  type Workflow,
  WorkflowBody,
  type WorkflowInstance,
  WorkflowInstancePageSchema,
  WorkflowInstanceSchema,
  type WorkflowMapItem,
  WorkflowMapItemPageSchema,
  WorkflowMapItemQuery,
  WorkflowPageQuery,
  WorkflowPageSchema,
  WorkflowSchema,
  type WorkflowSpec,
  type WorkflowStart,
  WorkflowStartSchema,
  WorkflowStepParam,
} from '@kairos/client';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { firstScheduledFire } from '../../core/fire-plan.ts';
import { checkParams } from '../../core/job.ts';
import { checkInterval, checkJobCountAndRate } from '../../core/quotas.ts';
import { describeSchedule } from '../../core/schedule-policy.ts';
import { describeTrigger, type Trigger } from '../../core/trigger.ts';
import { compileWorkflow, workflowSpecOf } from '../../core/workflow.ts';
import { KairosError } from '../../errors.ts';
import {
  type MapItemRecord,
  type WorkflowInstanceRecord,
  type WorkflowRecord,
  type WorkflowRepair,
  workflowJobName,
} from '../../store/workflows.ts';
import { answers, NoContent } from '../answers.ts';
import type { NodeContext } from '../context.ts';
import { idCursor, nameCursor } from '../cursor.ts';
import { fitPage } from '../page-budget.ts';
import { skippedView } from './schedules.ts';

type NameParams = Static<typeof NameParam>;
type IdParams = Static<typeof IdParam>;
type StepParams = Static<typeof WorkflowStepParam>;

const iso = (ms: number) => new Date(ms).toISOString();

const PageQuery = WorkflowPageQuery;
type PageQueryType = Static<typeof WorkflowPageQuery>;

export function workflowView(record: WorkflowRecord): Workflow {
  return {
    ...(workflowSpecOf(record) as Pick<Workflow, 'name' | 'steps'>),
    description: record.description,
    trigger: describeTrigger(record.trigger),
    schedule: describeSchedule(record.schedule),
    paused: record.paused,
    nextFireAt: record.nextFireAt === null ? null : iso(record.nextFireAt),
    namespace: record.namespace,
    version: record.version,
    createdAt: iso(record.createdAt),
    updatedAt: iso(record.updatedAt),
  };
}

export function instanceView(record: WorkflowInstanceRecord): WorkflowInstance {
  return {
    id: record.id,
    workflow: record.workflow,
    namespace: record.namespace,
    version: record.version,
    state: record.state,
    context: record.context,
    cause: record.cause,
    scheduledFor: record.scheduledFor === null ? null : iso(record.scheduledFor),
    createdAt: iso(record.createdAt),
    startedAt: iso(record.startedAt),
    finishedAt: record.finishedAt === null ? null : iso(record.finishedAt),
    steps: record.steps.map((step) => ({
      ...step,
      startedAt: step.startedAt === null ? null : iso(step.startedAt),
      finishedAt: step.finishedAt === null ? null : iso(step.finishedAt),
    })),
  };
}

/**
 * `/v1/workflows` and `/v1/workflow-instances` (docs/workflows.md): definitions of the request's
 * namespace, their instances, starting, cancelling and repairing one (pause, resume, retry, re-run
 * or skip a step). Viewers read; operators change. Every change is audited (server/audit.ts).
 */
export function workflowRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const { store, clock } = ctx;
  const read = { onRequest: ctx.requireRole('viewer') };
  const write = { onRequest: ctx.requireRole('operator') };
  const notFound = (name: string) =>
    new KairosError('WORKFLOW_NOT_FOUND', `no workflow named ${JSON.stringify(name)}`);
  const instanceNotFound = (id: number) =>
    new KairosError('WORKFLOW_INSTANCE_NOT_FOUND', `no workflow instance ${id}`);

  app.put<{ Params: NameParams; Body: Omit<WorkflowSpec, 'name'> & { name?: string } }>(
    '/v1/workflows/:name',
    {
      ...write,
      schema: {
        operationId: 'putWorkflow',
        tags: ['workflows'],
        params: NameParam,
        body: WorkflowBody,
        response: answers({ 200: WorkflowSchema, 201: WorkflowSchema }),
      },
    },
    async (request, reply) => {
      if (request.body.name !== undefined && request.body.name !== request.params.name) {
        throw new KairosError('VALIDATION_FAILED', 'name: the body names another workflow than the path', {
          field: 'name',
        });
      }
      const definition = compileWorkflow({ ...request.body, name: request.params.name });
      await checkCalendars(ctx, definition.schedule.calendars, request.namespace);
      // A create adds the workflow's own job, which carries its trigger: the namespace's maxJobs,
      // maxFiresPerSecond and minInterval judge it as a job's (422); a replace that changes the
      // trigger is judged for the rate only.
      const quotas = await ctx.quotas.of(request.namespace);
      checkInterval(quotas, definition.trigger);
      const quota =
        quotas.maxJobs === null && quotas.maxFiresPerSecond === null
          ? undefined
          : (others: readonly Trigger[]) => checkJobCountAndRate(quotas, definition.trigger, others, true);
      const rateQuota =
        quotas.maxFiresPerSecond === null
          ? undefined
          : (others: readonly Trigger[]) => checkJobCountAndRate(quotas, definition.trigger, others, false);
      const now = clock.now();
      const saved = await store.workflows.put(definition, request.namespace, now, quota, {
        next: firstScheduledFire(definition.trigger, definition.schedule, now),
        rateQuota,
      });
      if (saved.created) reply.status(201);
      return workflowView(saved.workflow);
    },
  );

  app.get<{ Querystring: PageQueryType }>(
    '/v1/workflows',
    {
      ...read,
      schema: {
        operationId: 'listWorkflows',
        tags: ['workflows'],
        querystring: PageQuery,
        response: answers({ 200: WorkflowPageSchema }),
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 50;
      const items = await store.workflows.list({
        namespace: request.namespace,
        after: nameCursor(request.query.cursor),
        limit,
      });
      const last = items[items.length - 1];
      return {
        items: items.map(workflowView),
        nextCursor: last && items.length === limit ? last.name : null,
      };
    },
  );

  app.get<{ Params: NameParams }>(
    '/v1/workflows/:name',
    {
      ...read,
      schema: {
        operationId: 'getWorkflow',
        tags: ['workflows'],
        params: NameParam,
        response: answers({ 200: WorkflowSchema }),
      },
    },
    async (request) => {
      const workflow = await store.workflows.get(request.namespace, request.params.name);
      if (!workflow) throw notFound(request.params.name);
      return workflowView(workflow);
    },
  );

  app.delete<{ Params: NameParams }>(
    '/v1/workflows/:name',
    {
      ...write,
      schema: {
        operationId: 'deleteWorkflow',
        tags: ['workflows'],
        params: NameParam,
        response: answers({ 204: NoContent }),
      },
    },
    async (request, reply) => {
      if (!(await store.workflows.delete(request.namespace, request.params.name))) {
        throw notFound(request.params.name);
      }
      reply.status(204);
    },
  );

  for (const action of ['pause', 'resume'] as const) {
    app.post<{ Params: NameParams }>(
      `/v1/workflows/:name/${action}`,
      {
        ...write,
        schema: {
          operationId: action === 'pause' ? 'pauseWorkflow' : 'resumeWorkflow',
          tags: ['workflows'],
          params: NameParam,
          response: answers({ 200: WorkflowSchema }),
        },
      },
      async (request) => {
        const workflow = await store.workflows.get(request.namespace, request.params.name);
        if (!workflow) throw notFound(request.params.name);
        // The workflow's job carries its trigger: pausing it is a job's pause, and a resume records
        // the fires missed meanwhile in the ledger (`paused`), as for any job (docs/schedules.md).
        const name = workflowJobName(request.namespace, request.params.name);
        try {
          await ctx.jobs.setWorkflowPaused(name, action === 'pause');
        } catch (error) {
          // Deleted since it was read.
          if (error instanceof KairosError && error.code === 'JOB_NOT_FOUND')
            throw notFound(request.params.name);
          throw error;
        }
        const updated = await store.workflows.get(request.namespace, request.params.name);
        if (!updated) throw notFound(request.params.name);
        return workflowView(updated);
      },
    );
  }

  app.get<{ Params: NameParams; Querystring: Static<typeof SkippedQuery> }>(
    '/v1/workflows/:name/skipped',
    {
      ...read,
      schema: {
        operationId: 'listWorkflowSkipped',
        tags: ['workflows'],
        params: NameParam,
        querystring: SkippedQuery,
        response: answers({ 200: SkippedPageSchema }),
      },
    },
    async (request) => {
      const workflow = await store.workflows.get(request.namespace, request.params.name);
      if (!workflow) throw notFound(request.params.name);
      const limit = request.query.limit ?? 50;
      const items = await store.listSkipped(workflow.jobId, {
        before: idCursor(request.query.cursor),
        limit,
      });
      return {
        items: items.map(skippedView),
        nextCursor: items.length === limit ? String(items[items.length - 1]!.id) : null,
      };
    },
  );

  app.post<{ Params: NameParams; Body: WorkflowStart | undefined }>(
    '/v1/workflows/:name/instances',
    {
      ...write,
      schema: {
        operationId: 'startWorkflow',
        tags: ['workflows'],
        params: NameParam,
        body: Type.Optional(WorkflowStartSchema),
        response: answers({ 201: WorkflowInstanceSchema }),
      },
    },
    async (request, reply) => {
      const body = request.body ?? {};
      const context = checkParams(body.context ?? {}, 'context');
      const instance = await store.workflows.start(
        request.namespace,
        request.params.name,
        { context, idempotencyKey: body.idempotencyKey },
        clock.now(),
        // A start queues its root steps' runs like a trigger: the namespace's maxQueuedRuns applies (429).
        (await ctx.quotas.of(request.namespace)).maxQueuedRuns,
      );
      if (!instance) throw notFound(request.params.name);
      reply.status(201);
      return instanceView(instance);
    },
  );

  app.get<{ Params: NameParams; Querystring: PageQueryType }>(
    '/v1/workflows/:name/instances',
    {
      ...read,
      schema: {
        operationId: 'listWorkflowInstances',
        tags: ['workflows'],
        params: NameParam,
        querystring: PageQuery,
        response: answers({ 200: WorkflowInstancePageSchema }),
      },
    },
    async (request) => {
      const workflow = await store.workflows.get(request.namespace, request.params.name);
      if (!workflow) throw notFound(request.params.name);
      const limit = request.query.limit ?? 50;
      const items = await store.workflows.listInstances(workflow.id, idCursor(request.query.cursor), limit);
      const last = items[items.length - 1];
      return {
        items: items.map(instanceView),
        nextCursor: last && items.length === limit ? String(last.id) : null,
      };
    },
  );

  app.get<{ Params: IdParams }>(
    '/v1/workflow-instances/:id',
    {
      ...read,
      schema: {
        operationId: 'getWorkflowInstance',
        tags: ['workflows'],
        params: IdParam,
        response: answers({ 200: WorkflowInstanceSchema }),
      },
    },
    async (request) => {
      const instance = await store.workflows.getInstance(request.params.id);
      if (!instance) throw instanceNotFound(request.params.id);
      return instanceView(instance);
    },
  );

  app.get<{ Params: StepParams; Querystring: Static<typeof WorkflowMapItemQuery> }>(
    '/v1/workflow-instances/:id/steps/:step/items',
    {
      ...read,
      schema: {
        operationId: 'listWorkflowMapItems',
        tags: ['workflows'],
        params: WorkflowStepParam,
        querystring: WorkflowMapItemQuery,
        response: answers({ 200: WorkflowMapItemPageSchema }),
      },
    },
    async (request) => {
      const { id, step } = request.params;
      const limit = request.query.limit ?? 50;
      // The cursor is the index the page starts from: the previous page's last index + 1.
      const from = idCursor(request.query.cursor) ?? 0;
      const page = await store.workflows.mapItems(id, step, { from, limit, state: request.query.state });
      if (!page) throw instanceNotFound(id);
      const withResult = request.query.include === 'result';
      const fitted = fitPage(page.items, (item) => mapItemView(item, withResult));
      const last = fitted.rows[fitted.rows.length - 1];
      return {
        items: fitted.items,
        nextCursor: last && (fitted.cut || page.items.length === limit) ? String(last.index + 1) : null,
        counts: page.counts,
      };
    },
  );

  app.post<{ Params: IdParams }>(
    '/v1/workflow-instances/:id/cancel',
    {
      ...write,
      schema: {
        operationId: 'cancelWorkflowInstance',
        tags: ['workflows'],
        params: IdParam,
        response: answers({ 200: WorkflowInstanceSchema }),
      },
    },
    async (request) => {
      const instance = await store.workflows.cancelInstance(request.params.id, clock.now());
      if (!instance) throw instanceNotFound(request.params.id);
      return instanceView(instance);
    },
  );

  // Repairs (docs/workflows.md#repair): each one transaction with the instance locked; each
  // answers the instance as it is after.
  const repair = async (id: number, action: WorkflowRepair, namespace: string) => {
    const instance = await store.workflows.repairInstance(
      id,
      action,
      clock.now(),
      // A repair queues runs at an operator's request, as a start does: the namespace's
      // maxQueuedRuns applies (429). Step ends that advance an instance are never judged.
      (await ctx.quotas.of(namespace)).maxQueuedRuns,
    );
    if (!instance) throw instanceNotFound(id);
    return instanceView(instance);
  };
  for (const [verb, operationId] of [
    ['pause', 'pauseWorkflowInstance'],
    ['resume', 'resumeWorkflowInstance'],
    ['retry', 'retryWorkflowInstance'],
  ] as const) {
    app.post<{ Params: IdParams }>(
      `/v1/workflow-instances/:id/${verb}`,
      {
        ...write,
        schema: {
          operationId,
          tags: ['workflows'],
          params: IdParam,
          response: answers({ 200: WorkflowInstanceSchema }),
        },
      },
      async (request) => repair(request.params.id, { kind: verb }, request.namespace),
    );
  }
  for (const [verb, operationId] of [
    ['rerun', 'rerunWorkflowStep'],
    ['skip', 'skipWorkflowStep'],
  ] as const) {
    app.post<{ Params: StepParams }>(
      `/v1/workflow-instances/:id/steps/:step/${verb}`,
      {
        ...write,
        schema: {
          operationId,
          tags: ['workflows'],
          params: WorkflowStepParam,
          response: answers({ 200: WorkflowInstanceSchema }),
        },
      },
      async (request) =>
        repair(request.params.id, { kind: verb, step: request.params.step }, request.namespace),
    );
  }
}

/** A map step's item as the API answers it: its result's size, and the result itself when asked. */
export function mapItemView(item: MapItemRecord, withResult: boolean): WorkflowMapItem {
  const result = item.result === null ? undefined : (JSON.parse(item.result) as Json);
  return {
    index: item.index,
    state: item.state,
    runId: item.runId,
    attempts: item.attempts,
    // Measured as compact JSON: the dialects keep the text differently (PostgreSQL's jsonb spaces it).
    resultBytes: result === undefined ? null : Buffer.byteLength(JSON.stringify(result)),
    ...(withResult && result !== undefined ? { result } : {}),
    error: item.error,
  };
}

/** The calendars a workflow's schedule names must be of its namespace (CALENDAR_NOT_FOUND), as a job's. */
async function checkCalendars(ctx: NodeContext, names: readonly string[], namespace: string): Promise<void> {
  if (names.length === 0) return;
  const found = new Set(
    (await ctx.store.getCalendars([...names])).filter((c) => c.namespace === namespace).map((c) => c.name),
  );
  const missing = names.filter((name) => !found.has(name));
  if (missing.length > 0) {
    throw new KairosError(
      'CALENDAR_NOT_FOUND',
      `no calendar named ${missing.map((n) => JSON.stringify(n)).join(', ')}`,
      {
        missing,
      },
    );
  }
}
