import type { AttemptRef } from '@kairos/client';
import type { FastifyInstance } from 'fastify';
import { KairosError } from '../errors.ts';
import type { Store, WorkerIdentity } from '../store/store.ts';
import { isGlobalAdmin } from './auth.ts';

/** Workers whose identity a node remembers; a worker's group and registering token never change. */
const REMEMBERED_WORKERS = 10_000;

/**
 * Who may act as a worker. A worker may be driven (heartbeat, poll, report, logs, unregister) only
 * with the token that registered it, or the admin token: a worker id is not a credential, and one
 * team's worker token does not steer another team's workers. Worker tokens scoped to groups may
 * also register only in their groups, act only for workers of those groups, and report only runs of
 * those groups (alone or with a poll). Unscoped tokens (the config's worker token, the admin token) pass the group checks.
 * A worker acts in its token's namespace only: a worker of another namespace is not found. A
 * preHandler, so it runs after authentication and body validation and before any change; which
 * attempts a worker holds is checked by the store in the write itself.
 */
export function installWorkerScope(app: FastifyInstance, store: Store): void {
  const known = new Map<string, WorkerIdentity>();
  const identity = async (workerId: string): Promise<WorkerIdentity | null> => {
    const remembered = known.get(workerId);
    if (remembered) return remembered;
    const found = await store.workerIdentity(workerId);
    if (found) {
      if (known.size >= REMEMBERED_WORKERS) known.delete(known.keys().next().value as string);
      known.set(workerId, found);
    }
    return found;
  };

  app.addHook('preHandler', async (request) => {
    const url = request.routeOptions.url;
    const principal = request.principal;
    if (!principal || !url?.startsWith('/v1/worker/')) return;
    const groups = principal.groups;
    const deny = (group: string) =>
      new KairosError('GROUP_FORBIDDEN', `this worker token may not serve group ${JSON.stringify(group)}`, {
        group,
        allowed: groups,
      });
    if (url === '/v1/worker/register') {
      const group = (request.body as { group: string }).group;
      if (groups && !groups.includes(group)) throw deny(group);
      return;
    }
    const workerId = (request.params as { id?: string }).id;
    if (workerId === undefined) return;
    const worker = await identity(workerId);
    // A worker of another namespace is not found: its id tells nothing, and nothing is done for it.
    if (worker && worker.namespace !== request.namespace && !isGlobalAdmin(principal))
      throw new KairosError('WORKER_NOT_FOUND', `worker ${workerId} is not registered or was declared lost`);
    if (worker && groups && !groups.includes(worker.group)) throw deny(worker.group);
    if (worker?.registeredBy && principal.role !== 'admin' && worker.registeredBy !== principal.actor) {
      throw new KairosError(
        'WORKER_FORBIDDEN',
        `worker ${workerId} was registered with another token: only that token may act as it`,
      );
    }
    // Reports come alone or with a poll.
    const refs = (request.body as { reports?: AttemptRef[] } | undefined)?.reports;
    if (groups && refs && (url === '/v1/worker/:id/report' || url === '/v1/worker/:id/poll')) {
      for (const run of await store.runsForDecision(refs))
        if (!groups.includes(run.group)) throw deny(run.group);
    }
  });
}
