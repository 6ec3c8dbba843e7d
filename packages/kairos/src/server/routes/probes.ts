import type { FastifyInstance } from 'fastify';
import { readMigrations } from '../../store/migrations.ts';
import type { NodeContext } from '../context.ts';

/** How long `/readyz` waits for the store before it answers 503. */
export const READY_STORE_TIMEOUT_MS = 2000;

/**
 * Probes for orchestrators, without authentication and without a store write:
 * - `GET /livez`: the process is alive and its event loop answers (no I/O at all). Restart the
 *   node when it fails.
 * - `GET /readyz`: the store answers a trivial query within 2 s and holds every migration this node
 *   ships. Send it no traffic while it fails (503).
 * They stay answered while the scheduler loops are busy because those yield to the event loop
 * between store transactions (see `TriggerLoop.tick`).
 */
export function probeRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const needed = Math.max(0, ...readMigrations(ctx.store.dialect).map((m) => m.version));
  const probe = { schema: { tags: ['node'] } };

  app.get('/livez', probe, async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    return { status: 'ok' };
  });

  app.get('/readyz', probe, async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    let version: number;
    try {
      version = await withTimeout(ctx.store.schemaVersion(), READY_STORE_TIMEOUT_MS);
    } catch (error) {
      reply.code(503);
      return { status: 'not ready', reason: `store: ${(error as Error).message}` };
    }
    if (version < needed) {
      reply.code(503);
      return { status: 'not ready', reason: `store schema at ${version}; this node needs ${needed}` };
    }
    return { status: 'ready', store: ctx.store.dialect, schemaVersion: version };
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
