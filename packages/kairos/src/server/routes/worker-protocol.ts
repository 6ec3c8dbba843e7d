import { randomBytes, randomUUID } from 'node:crypto';
import {
  type Assignment,
  EmptySchema,
  type HeartbeatRequest,
  HeartbeatRequestSchema,
  HeartbeatResponseSchema,
  type PollRequest,
  PollRequestSchema,
  PollResponseSchema,
  type RegisterRequest,
  RegisterRequestSchema,
  type RegisterResponse,
  RegisterResponseSchema,
  type Report,
  type ReportRequest,
  ReportRequestSchema,
  ReportResponseSchema,
  WorkerParam,
} from '@kairos/client';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { compileResources } from '../../core/resources.ts';
import { checkRegistration } from '../../core/worker-registration.ts';
import { KairosError } from '../../errors.ts';
import type { ReportResult } from '../../scheduler/attempts.ts';
import { answers } from '../answers.ts';
import type { NodeContext } from '../context.ts';
import { body } from '../error-handler.ts';
import { traceDispatch } from '../tracing.ts';
import { assignmentView } from '../views.ts';

export const RESULT_LIMIT_BYTES = 64 * 1024;

type WorkerParams = Static<typeof WorkerParam>;

/** The worker protocol: workers connect out, register, long-poll for runs, heartbeat and report. */
export function workerProtocolRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const { store, clock, config, dispatcher, ender, metrics, keyring } = ctx;
  const worker = { onRequest: ctx.requireRole('worker') };
  // This process's clock for workers (docs/workers.md#fire-ahead-prefetch): one that never steps,
  // named so that a worker never mixes the clocks of two processes (a restart, a load balancer).
  const clockId = randomBytes(8).toString('hex');
  const nodeClock = () => ({ id: clockId, time: performance.timeOrigin + performance.now() });

  /** Ends the attempts that `reports` name, fenced by the worker and attempt: one result each. */
  async function applyReports(reports: Report[], workerId: string): Promise<ReportResult[]> {
    const results = await ender.report(reports.map(limitResult), clock.now(), workerId);
    const accepted = results.filter((r) => r.ok).length;
    metrics.attemptsEnded.inc({ source: 'worker', ok: 'true' }, accepted);
    metrics.staleReports.inc(results.length - accepted);
    return results;
  }

  app.post<{ Body: RegisterRequest }>(
    '/v1/worker/register',
    {
      ...worker,
      schema: {
        operationId: 'register',
        tags: ['worker protocol'],
        body: RegisterRequestSchema,
        response: answers({ 200: RegisterResponseSchema }),
      },
    },
    async (request) => {
      const r = request.body;
      checkRegistration(r);
      const resources = compileResources(r.resources, 'resources', { zero: true });
      const id = randomUUID();
      await store.registerWorker(
        {
          id,
          name: r.name ?? id,
          group: r.group,
          handlers: [...new Set(r.handlers)],
          capacity: r.capacity,
          labels: r.labels ?? {},
          version: r.version ?? '',
          host: r.host ?? request.ip,
          registeredBy: request.principal?.actor ?? '',
          // The token's namespace (a global admin token: the one the request names).
          namespace: request.namespace,
          resources,
        },
        config.workerLeaseMs,
        clock.now(),
      );
      dispatcher.registered(id, r.group);
      const response: RegisterResponse = {
        workerId: id,
        heartbeatMs: config.heartbeatMs,
        leaseMs: config.workerLeaseMs,
        pollWaitMs: config.pollWaitMs,
      };
      return response;
    },
  );

  app.post<{ Params: WorkerParams; Body: HeartbeatRequest }>(
    '/v1/worker/:id/heartbeat',
    {
      ...worker,
      schema: {
        operationId: 'heartbeat',
        tags: ['worker protocol'],
        params: WorkerParam,
        body: HeartbeatRequestSchema,
        response: answers({ 200: HeartbeatResponseSchema }),
      },
    },
    async (request) => {
      const id = request.params.id;
      const answer = await store.heartbeat(
        id,
        request.body.running,
        config.workerLeaseMs,
        clock.now(),
        request.body.polled ?? null,
        request.body.load ?? null,
      );
      if (answer === null) throw unknownWorker(id);
      if (answer.unheld.length > 0) {
        // Claimed for this worker by polls it has settled, and not held: the answer was lost.
        const given = await ender.giveBack(id, answer.unheld, clock.now());
        metrics.attemptsEnded.inc({ source: 'reconcile', ok: 'true' }, given);
        request.log.warn(
          { workerId: id, attempts: answer.unheld },
          'attempts the worker never received given back (lost)',
        );
      }
      return { cancel: answer.cancel, nodeClock: nodeClock() };
    },
  );

  app.post<{ Params: WorkerParams; Body: PollRequest }>(
    '/v1/worker/:id/poll',
    {
      ...worker,
      schema: {
        operationId: 'poll',
        tags: ['worker protocol'],
        params: WorkerParam,
        body: PollRequestSchema,
        response: answers({ 200: PollResponseSchema }),
      },
    },
    async (request) => {
      // Stop waiting when the worker hangs up (shutdown, network cut).
      const gone = new AbortController();
      const socket = request.raw.socket;
      const onClose = () => gone.abort();
      socket.once('close', onClose);
      // Reports that came with the poll are written beside the claim, not before it (on PostgreSQL
      // on another connection, at the same time). If they fail, the poll stops waiting and answers
      // what it claimed without their results: the worker sends them again, on their own.
      const reporting =
        request.body.reports &&
        applyReports(request.body.reports, request.params.id).catch((err: unknown) => {
          request.log.warn(
            { err },
            'reports that came with a poll were not written; the worker sends them again',
          );
          gone.abort();
          return undefined;
        });
      try {
        const runs = await dispatcher.poll(
          request.params.id,
          request.body.max,
          request.body.waitMs ?? config.pollWaitMs,
          gone.signal,
          request.body.ahead ?? 0,
          request.body.seq ?? null,
        );
        const results = await reporting;
        metrics.claimed.inc(runs.length);
        // Read together: the runs' delays count from `now`, which the worker places on its own clock
        // through `stamp`.
        const now = clock.now();
        const stamp = nodeClock();
        // The one place secret params leave the node decrypted: to the worker that claimed the run.
        const assignments: Assignment[] = [];
        const unreadable: Report[] = [];
        for (const run of traceDispatch(runs, request.params.id, request)) {
          try {
            assignments.push(assignmentView(run, keyring.open(run.params), now));
          } catch (error) {
            if (!(error instanceof KairosError && error.code === 'SECRET_KEY_UNKNOWN')) throw error;
            // A key removed before its secrets were rotated: the run fails for good, with the reason.
            unreadable.push({
              runId: run.runId,
              attempt: run.attempt,
              outcome: 'failed',
              error: { name: 'SecretKeyUnknown', message: error.message },
              retryable: false,
            });
          }
        }
        if (unreadable.length > 0) {
          await ender.report(unreadable, clock.now(), request.params.id);
          request.log.error(
            { runs: unreadable.map((r) => r.runId) },
            'runs failed: their secret params name a key this node does not have',
          );
        }
        return results
          ? { runs: assignments, results, nodeClock: stamp }
          : { runs: assignments, nodeClock: stamp };
      } finally {
        socket.off('close', onClose);
      }
    },
  );

  app.post<{ Params: WorkerParams; Body: ReportRequest }>(
    '/v1/worker/:id/report',
    {
      ...worker,
      schema: {
        operationId: 'report',
        tags: ['worker protocol'],
        params: WorkerParam,
        body: ReportRequestSchema,
        response: answers({ 200: ReportResponseSchema }),
      },
    },
    async (request, reply) => {
      const results = await applyReports(request.body.reports, request.params.id);
      if (!results.some((r) => r.ok)) {
        if (results.some((r) => r.code === 'ATTEMPT_NOT_HELD')) {
          // A worker named attempts another worker holds: a peer, or a guessed run id.
          return reply.status(409).send(
            body(
              'ATTEMPT_NOT_HELD',
              `no report applied: worker ${request.params.id} does not hold these attempts`,
              {
                results,
              },
            ),
          );
        }
        // Nothing applied: every attempt was stale (retried, timed out, cancelled or fenced out).
        return reply
          .status(409)
          .send(body('ATTEMPT_STALE', 'no report applied: the attempts are no longer current', { results }));
      }
      return { results };
    },
  );

  app.post<{ Params: WorkerParams }>(
    '/v1/worker/:id/unregister',
    {
      ...worker,
      schema: {
        operationId: 'unregister',
        tags: ['worker protocol'],
        params: WorkerParam,
        response: answers({ 200: EmptySchema }),
      },
    },
    async (request) => {
      await store.unregisterWorker(request.params.id, clock.now());
      return {};
    },
  );
}

function unknownWorker(id: string): KairosError {
  return new KairosError(
    'WORKER_NOT_FOUND',
    `worker ${id} is not registered or was declared lost: register again`,
  );
}

/** Results over the limit are replaced by a marker rather than failing a run that succeeded. */
function limitResult(report: Report): Report {
  if (report.outcome !== 'succeeded' || report.result === undefined) return report;
  const size = Buffer.byteLength(JSON.stringify(report.result));
  if (size <= RESULT_LIMIT_BYTES) return report;
  return { ...report, result: { truncated: true, bytes: size, limit: RESULT_LIMIT_BYTES } };
}
