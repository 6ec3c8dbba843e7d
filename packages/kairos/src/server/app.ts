import swagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { TokenAuth } from './auth.ts';
import type { NodeContext } from './context.ts';
import { installErrorHandler } from './error-handler.ts';
import { jobRoutes } from './routes/jobs.ts';
import { logRoutes } from './routes/logs.ts';
import { runRoutes } from './routes/runs.ts';
import { workerProtocolRoutes } from './routes/worker-protocol.ts';
import { workerAdminRoutes } from './routes/workers.ts';

export const VERSION = '0.1.0';

/** The HTTP API of a node: REST API, worker protocol, health, metrics and the OpenAPI document. */
export async function buildServer(
  ctx: Omit<NodeContext, 'requireRole'> & { auth: TokenAuth },
): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    loggerInstance: ctx.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    // Keep-alive longer than the longest poll, so workers reuse their connections.
    keepAliveTimeout: ctx.config.pollWaitMs + 5000,
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false },
    },
  });
  installErrorHandler(app);
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Kairos API',
        version: VERSION,
        description: 'Jobs, runs, workers and the worker protocol.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  const context: NodeContext = {
    ...ctx,
    requireRole: (role) => async (request) => ctx.auth.check(request, role),
  };

  app.get('/v1/health', { schema: { tags: ['node'] } }, async () => ({
    status: 'ok',
    version: VERSION,
    store: ctx.store.dialect,
    nodeId: ctx.config.nodeId,
  }));
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    reply.header('content-type', ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  jobRoutes(app, context);
  runRoutes(app, context);
  workerProtocolRoutes(app, context);
  workerAdminRoutes(app, context);
  logRoutes(app, context);
  return app;
}
