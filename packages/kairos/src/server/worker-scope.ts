import type { AttemptRef } from '@kairos/client';
import type { FastifyInstance } from 'fastify';
import { KairosError } from '../errors.ts';
import type { Store } from '../store/store.ts';

/**
 * Worker tokens scoped to groups: such a token may register only in its groups, and may heartbeat,
 * poll, report and unregister only as a worker of those groups, and report only runs of those
 * groups. Unscoped tokens (the config's worker token, the admin token) pass. A preHandler, so it
 * runs after authentication and body validation and before any change.
 */
export function installWorkerScope(app: FastifyInstance, store: Store): void {
  app.addHook('preHandler', async (request) => {
    const url = request.routeOptions.url;
    const groups = request.principal?.groups;
    if (!groups || !url?.startsWith('/v1/worker/')) return;
    const deny = (group: string) =>
      new KairosError('GROUP_FORBIDDEN', `this worker token may not serve group ${JSON.stringify(group)}`, {
        group,
        allowed: groups,
      });
    if (url === '/v1/worker/register') {
      const group = (request.body as { group: string }).group;
      if (!groups.includes(group)) throw deny(group);
      return;
    }
    const workerId = (request.params as { id?: string }).id;
    if (workerId === undefined) return;
    const group = await store.workerGroup(workerId);
    if (group !== null && !groups.includes(group)) throw deny(group);
    if (url === '/v1/worker/:id/report') {
      const refs: AttemptRef[] = (request.body as { reports: AttemptRef[] }).reports;
      for (const run of await store.runsForDecision(refs))
        if (!groups.includes(run.group)) throw deny(run.group);
    }
  });
}
