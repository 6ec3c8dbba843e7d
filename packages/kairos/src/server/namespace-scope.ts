import type { FastifyInstance } from 'fastify';
import { KairosError } from '../errors.ts';
import type { Store } from '../store/store.ts';

/**
 * The namespaced entity a route's path names, and how to find which namespace it is in (null: it
 * does not exist). Every route under one of these paths acts on that entity.
 */
interface PathEntity {
  path: string;
  namespaceOf(store: Store, params: Record<string, string | number>): Promise<string | null>;
  notFound(params: Record<string, string | number>): KairosError;
  /** True when the path names an entity that no route may reach (it answers `notFound`). */
  hidden?(params: Record<string, string | number>): boolean;
}

const quoted = (value: string | number) => JSON.stringify(String(value));

const PATH_ENTITIES: readonly PathEntity[] = [
  {
    path: '/v1/jobs/:name',
    namespaceOf: async (store, p) => (await store.getJob(String(p.name)))?.namespace ?? null,
    notFound: (p) => new KairosError('JOB_NOT_FOUND', `no job named ${quoted(p.name!)}`),
    // A workflow's own job, `workflow/<namespace>/<name>` (docs/workflows.md), is no job of the
    // API's; no other job name holds a `/`.
    hidden: (p) => String(p.name).includes('/'),
  },
  {
    path: '/v1/runs/:id',
    namespaceOf: async (store, p) => (await store.getRun(Number(p.id)))?.namespace ?? null,
    notFound: (p) => new KairosError('RUN_NOT_FOUND', `no run ${p.id}`),
  },
  {
    path: '/v1/workers/:id',
    namespaceOf: async (store, p) => (await store.workerIdentity(String(p.id)))?.namespace ?? null,
    notFound: (p) => new KairosError('WORKER_NOT_FOUND', `no worker ${quoted(p.id!)}`),
  },
  {
    path: '/v1/calendars/:name',
    namespaceOf: async (store, p) => (await store.getCalendars([String(p.name)]))[0]?.namespace ?? null,
    notFound: (p) => new KairosError('CALENDAR_NOT_FOUND', `no calendar named ${quoted(p.name!)}`),
  },
  {
    path: '/v1/alert-rules/:name',
    namespaceOf: async (store, p) => (await store.alerts.getRule(String(p.name)))?.namespace ?? null,
    notFound: (p) => new KairosError('ALERT_RULE_NOT_FOUND', `no alert rule named ${quoted(p.name!)}`),
  },
  {
    path: '/v1/alert-channels/:name',
    namespaceOf: async (store, p) => (await store.alerts.getChannel(String(p.name)))?.namespace ?? null,
    notFound: (p) => new KairosError('CHANNEL_NOT_FOUND', `no alert channel named ${quoted(p.name!)}`),
  },
  {
    // Workflows themselves are found by (namespace, name): their routes read the request's namespace.
    path: '/v1/workflow-instances/:id',
    namespaceOf: async (store, p) => (await store.workflows.getInstance(Number(p.id)))?.namespace ?? null,
    notFound: (p) => new KairosError('WORKFLOW_INSTANCE_NOT_FOUND', `no workflow instance ${p.id}`),
  },
];

/**
 * Keeps each request in its namespace (docs/tenancy.md): a route whose path names a job, run,
 * worker, calendar, alert rule or channel, or workflow instance of another namespace answers that entity's 404, as if
 * it did not exist (a 403 would tell that the name is used). Routes that list or create take
 * `request.namespace` themselves. A preHandler: after the role check (which set the namespace)
 * and validation, before any change. The worker protocol is kept by worker-scope.ts.
 */
export function installNamespaceScope(app: FastifyInstance, store: Store): void {
  app.addHook('preHandler', async (request) => {
    const url = request.routeOptions.url;
    if (!request.principal || !url || url.startsWith('/v1/worker/')) return;
    const entity = PATH_ENTITIES.find((e) => url === e.path || url.startsWith(`${e.path}/`));
    if (!entity) return;
    const params = request.params as Record<string, string | number>;
    if (entity.hidden?.(params)) throw entity.notFound(params);
    const namespace = await entity.namespaceOf(store, params);
    if (namespace !== null && namespace !== request.namespace) throw entity.notFound(params);
  });
}
