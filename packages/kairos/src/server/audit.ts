import type { JsonObject } from '@kairos/client';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Clock } from '../scheduler/clock.ts';
import type { Store } from '../store/store.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route writes its audit entry itself, in the transaction of the change. */
    auditedInStore?: boolean;
  }
}

/**
 * Writes an audit entry for every successful change made through the API (jobs, runs, …), before
 * the answer leaves: who (the principal's actor), what (`jobs.pause`), on what (`jobs:tick`).
 * Users and tokens are audited by the store inside the same transaction as the change (their
 * routes set `config.auditedInStore`), and so is a trigger (`POST /v1/jobs/:name/trigger`, the
 * API's hot path: one statement on PostgreSQL); other job and run changes are audited in a second
 * write right after theirs (a crash between the two can lose that one entry, never the change).
 * The worker protocol and logins are not audited: they are traffic, not changes of definitions.
 */
export function installAudit(app: FastifyInstance, store: Store, clock: Clock): void {
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.method === 'GET' || request.method === 'HEAD' || reply.statusCode >= 400) return payload;
    const url = request.routeOptions.url;
    if (!url?.startsWith('/v1/') || url.startsWith('/v1/worker/') || url.startsWith('/v1/auth/'))
      return payload;
    if (request.routeOptions.config.auditedInStore) return payload;
    if (url === '/v1/preview') return payload;
    try {
      await store.appendAudit({
        namespace: request.namespace,
        at: clock.now(),
        actor: request.principal?.actor ?? 'anonymous',
        ...describeChange(request, url),
      });
    } catch (error) {
      request.log.error({ err: error }, 'could not write the audit entry');
    }
    return payload;
  });
}

/** `POST /v1/jobs/:name/pause` → `jobs.pause` on `jobs:<name>`; `DELETE /v1/jobs/:name` → `jobs.delete`. */
export function describeChange(
  request: FastifyRequest,
  url: string,
): { action: string; target: string; details: JsonObject } {
  const segments = url.slice('/v1/'.length).split('/');
  const collection = segments[0] ?? '';
  const verb = segments.filter((s, i) => i > 0 && !s.startsWith(':')).join('.');
  const params = request.params as Record<string, string | number>;
  const body = (request.body ?? {}) as Record<string, unknown>;
  const id = params.name ?? params.id ?? (typeof body.name === 'string' ? body.name : '');
  const action = `${collection}.${verb || { POST: 'create', PUT: 'put', PATCH: 'update', DELETE: 'delete' }[request.method] || request.method.toLowerCase()}`;
  const details: JsonObject = {};
  // A step of a workflow instance (`workflow-instances.steps.rerun` on `workflow-instances:17`).
  if (params.step !== undefined) details.step = String(params.step);
  if (request.method === 'PATCH' || request.method === 'PUT') details.fields = Object.keys(body);
  return { action, target: `${collection}:${id}`, details };
}
