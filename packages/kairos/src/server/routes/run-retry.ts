import { IdParam, RunSchema } from '@kairos/client';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { KairosError } from '../../errors.ts';
import { answers } from '../answers.ts';
import type { NodeContext } from '../context.ts';
import { runView } from '../views.ts';

/** `POST /v1/runs/:id/retry`: a new manual run of the same job with the same params and priority. */
export function runRetryRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const { store, clock, metrics, keyring } = ctx;
  app.post<{ Params: Static<typeof IdParam> }>(
    '/v1/runs/:id/retry',
    {
      onRequest: ctx.requireRole('operator'),
      schema: {
        operationId: 'retryRun',
        tags: ['runs'],
        params: IdParam,
        response: answers({ 201: RunSchema }),
      },
    },
    async (request, reply) => {
      const run = await store.getRun(request.params.id);
      if (!run) throw new KairosError('RUN_NOT_FOUND', `no run ${request.params.id}`);
      // A step's run belongs to its instance (docs/workflows.md): a copy would advance nothing, and
      // a handler step's job is the workflow's own (handler `workflow`), which no worker runs.
      if (run.cause === 'workflow') {
        throw new KairosError(
          'WORKFLOW_STEP_RUN',
          `run ${run.id} is a workflow step's run: start a new instance of its workflow instead`,
        );
      }
      const [id] = await store.enqueueRuns(
        run.jobId,
        // The run was read before this write: a rotation in between must not leave its copy under an old key.
        [{ params: keyring.underCurrentKey(run.params), priority: run.priority }],
        clock.now(),
        // A retry queues a run like a trigger: the namespace's maxQueuedRuns applies (429).
        (await ctx.quotas.of(request.namespace)).maxQueuedRuns,
      );
      metrics.runsCreated.inc({ cause: 'manual' });
      reply.status(201);
      return runView((await store.getRun(id!))!);
    },
  );
}
