import { createHash, timingSafeEqual } from 'node:crypto';
import swagger from '@fastify/swagger';
import { HealthSchema } from '@kairos/client';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { KairosError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { answers } from './answers.ts';
import { installAudit } from './audit.ts';
import { installNamespaceParam, type TokenAuth } from './auth.ts';
import { clientErrorHandler } from './client-errors.ts';
import { serveConsole } from './console-assets.ts';
import type { NodeContext } from './context.ts';
import { body, installErrorHandler } from './error-handler.ts';
import { installJsonParser, installNulGuard, installNumberGuard } from './input-guards.ts';
import { installNamespaceScope } from './namespace-scope.ts';
import { QuotaGuard } from './quota-guard.ts';
import { type RoleHook, type RouteAccess, recordRoutes } from './route-table.ts';
import { alertRoutes } from './routes/alerts.ts';
import { calendarRoutes } from './routes/calendars.ts';
import { doctorRoutes } from './routes/doctor.ts';
import { jobRoutes } from './routes/jobs.ts';
import { logRoutes } from './routes/logs.ts';
import { namespaceRoutes } from './routes/namespaces.ts';
import { oidcRoutes } from './routes/oidc.ts';
import { probeRoutes } from './routes/probes.ts';
import { runRetryRoutes } from './routes/run-retry.ts';
import { runRoutes } from './routes/runs.ts';
import { scheduleRoutes } from './routes/schedules.ts';
import { secretRoutes } from './routes/secrets.ts';
import { sessionRoutes } from './routes/session.ts';
import { settingsRoutes } from './routes/settings.ts';
import { statsRoutes } from './routes/stats.ts';
import { userRoutes } from './routes/users.ts';
import { workerProtocolRoutes } from './routes/worker-protocol.ts';
import { workerAdminRoutes } from './routes/workers.ts';
import { workflowRoutes } from './routes/workflows.ts';
import { installTracing } from './tracing.ts';
import { installWorkerScope } from './worker-scope.ts';

export { VERSION };

/** The HTTP API of a node: REST API, worker protocol, health, metrics and the OpenAPI document. */
export async function buildServer(
  ctx: Omit<NodeContext, 'requireRole' | 'quotas'> & { auth: TokenAuth },
): Promise<FastifyInstance & { routeTable: RouteAccess[] }> {
  const app: FastifyInstance = Fastify({
    loggerInstance: ctx.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    // Keep-alive longer than the longest poll, so workers reuse their connections.
    keepAliveTimeout: ctx.config.pollWaitMs + 5000,
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false },
    },
    // What Node's HTTP parser refuses (headers too large) answers in the house shape too.
    clientErrorHandler,
    // Errors of the router (a path with bad percent-encoding) answer in the house shape too.
    frameworkErrors: (error, _request, reply) => {
      const answer =
        error.code === 'FST_ERR_BAD_URL'
          ? body('INVALID_URL', 'the path is not valid percent-encoded UTF-8')
          : body('VALIDATION_FAILED', error.message);
      (reply as FastifyReply).code(400).send(answer);
    },
  });
  installErrorHandler(app, (namespace, quota) => ctx.metrics.quotaRefusals.inc({ namespace, quota }));
  installTracing(app);
  installJsonParser(app);
  installNumberGuard(app);
  installNulGuard(app);
  const routeTable = recordRoutes(app);
  app.decorateRequest('principal', null);
  installNamespaceParam(app);
  installAudit(app, ctx.store, ctx.clock);
  installWorkerScope(app, ctx.store);
  installNamespaceScope(app, ctx.store);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Kairos API',
        version: VERSION,
        description: 'Jobs, runs, workers and the worker protocol.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          // Console sessions; changes also need the session's x-csrf-token header.
          session: { type: 'apiKey', in: 'cookie', name: 'kairos_session' },
        },
      },
      security: [{ bearer: [] }, { session: [] }],
    },
  });
  const quotas = new QuotaGuard(ctx.store, ctx.clock);
  const context: NodeContext = {
    ...ctx,
    quotas,
    forgetNamespace: (name) => {
      ctx.auth.forgetNamespace(name);
      quotas.forget(name);
    },
    requireRole: (role) => {
      const hook: RoleHook & ((request: FastifyRequest) => Promise<void>) = async (request) => {
        await ctx.auth.check(request, role);
        // A namespace's API requests count against its requestsPerSecond; the worker protocol's
        // do not (a flood of API calls must not stall the namespace's own workers), nor do global
        // admins' calls outside namespaces.
        if (role !== 'worker' && role !== 'global-admin' && role !== 'signed-in') {
          await quotas.admitRequest(request.namespace);
        }
      };
      hook.access = role;
      return hook;
    },
  };

  probeRoutes(app, context);
  // The node's identity (version, store, node id), for people and older probes; /livez and /readyz are the probes.
  const health = { operationId: 'health', tags: ['node'], response: answers({ 200: HealthSchema }) };
  app.get('/v1/health', { schema: health }, async () => ({
    status: 'ok',
    version: VERSION,
    store: ctx.store.dialect,
    nodeId: ctx.config.nodeId,
  }));
  const metricsToken = ctx.config.metricsToken === undefined ? undefined : sha256(ctx.config.metricsToken);
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    if (metricsToken) {
      const given = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
      if (given === undefined || !timingSafeEqual(sha256(given), metricsToken)) {
        throw new KairosError(
          'UNAUTHORIZED',
          'send Authorization: Bearer <the metrics token> (KAIROS_METRICS_TOKEN)',
        );
      }
    }
    reply.header('content-type', ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  jobRoutes(app, context);
  runRoutes(app, context);
  workerProtocolRoutes(app, context);
  scheduleRoutes(app, context);
  calendarRoutes(app, context);
  workerAdminRoutes(app, context);
  logRoutes(app, context);
  alertRoutes(app, context);
  namespaceRoutes(app, context);
  workflowRoutes(app, context);

  // Console and access ------------------------------------------------------
  sessionRoutes(app, context);
  oidcRoutes(app, context);
  userRoutes(app, context);
  statsRoutes(app, context);
  runRetryRoutes(app, context);
  doctorRoutes(app, context);
  settingsRoutes(app, context);
  secretRoutes(app, context);
  await serveConsole(app);
  return Object.assign(app, { routeTable });
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
