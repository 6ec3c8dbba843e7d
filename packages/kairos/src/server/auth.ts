import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { KairosError } from '../errors.ts';

export type Role = 'admin' | 'worker';

/**
 * Bearer-token check. The admin token opens everything; the worker token opens only the worker
 * protocol. Tokens are compared as SHA-256 digests in constant time.
 */
export class TokenAuth {
  private readonly admin: Buffer;
  private readonly worker: Buffer;

  constructor(tokens: { adminToken: string; workerToken: string }) {
    this.admin = digest(tokens.adminToken);
    this.worker = digest(tokens.workerToken);
  }

  check(request: FastifyRequest, needed: Role): void {
    const header = request.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    if (!token) throw new KairosError('UNAUTHORIZED', 'missing token: send Authorization: Bearer <token>');
    const given = digest(token);
    if (timingSafeEqual(given, this.admin)) return;
    if (timingSafeEqual(given, this.worker)) {
      if (needed === 'worker') return;
      throw new KairosError('FORBIDDEN', 'a worker token can only call the worker protocol');
    }
    throw new KairosError('UNAUTHORIZED', 'invalid token');
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
