import { LiveSchema, ReadySchema } from '@kairos/client';
import type { FastifyInstance } from 'fastify';
import { KairosError } from '../../errors.ts';
import { readMigrations } from '../../store/migrations.ts';
import { answers } from '../answers.ts';
import type { NodeContext } from '../context.ts';

/** How long `/readyz` waits for the store before it answers 503. */
export const READY_STORE_TIMEOUT_MS = 2000;

/**
 * Probes for orchestrators, without authentication and without a store write:
 * - `GET /livez`: the process is alive and its event loop answers (no I/O at all). Restart the
 *   node when it fails.
 * - `GET /readyz`: the store answers a trivial query within 2 s and holds every migration this node
 *   ships. Send it no traffic while it fails: 503 with `STORE_UNAVAILABLE` or `SCHEMA_UNSUPPORTED`.
 * They stay answered while the scheduler loops are busy because those yield to the event loop
 * between store transactions (see `TriggerLoop.tick`).
 */
export function probeRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const needed = Math.max(0, ...readMigrations(ctx.store.dialect).map((m) => m.version));
  const live = { schema: { operationId: 'live', tags: ['node'], response: answers({ 200: LiveSchema }) } };
  const ready = { schema: { operationId: 'ready', tags: ['node'], response: answers({ 200: ReadySchema }) } };

  app.get('/livez', live, async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    return { status: 'ok' };
  });

  app.get('/readyz', ready, async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    let version: number;
    try {
      version = await withTimeout(ctx.store.schemaVersion(), READY_STORE_TIMEOUT_MS);
    } catch (error) {
      throw new KairosError('STORE_UNAVAILABLE', `store: ${(error as Error).message}`);
    }
    if (version < needed) {
      throw new KairosError('SCHEMA_UNSUPPORTED', `store schema at ${version}; this node needs ${needed}`);
    }
    return { status: 'ready' as const, store: ctx.store.dialect, schemaVersion: version };
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
