import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { KairosError } from '../errors.ts';
import type { Clock } from '../scheduler/clock.ts';
import type { TokenRole } from '../store/access.ts';
import type { Store } from '../store/store.ts';
import { readSessionCookie } from './session.ts';

/**
 * What a route needs. `viewer`: read; `operator`: change jobs and runs; `admin`: users, tokens,
 * audit; `worker`: the worker protocol. Routes without one are public (server/route-table.ts).
 */
export type Role = 'admin' | 'operator' | 'viewer' | 'worker';

/** Who calls: the bootstrap tokens of the config, an API token, or a user's session. */
export interface Principal {
  kind: 'config-token' | 'api-token' | 'session';
  /** For the audit log: `admin-token`, `worker-token`, `token:<name>`, `user:<name>`. */
  actor: string;
  role: TokenRole;
  /** Worker tokens scoped to groups; null: every group. */
  groups: string[] | null;
  /** Session callers only: the user's name and the CSRF token of the session. */
  user?: string;
  csrfToken?: string;
}

/** Roles that may call a route of each level. The admin token also speaks the worker protocol. */
export const ALLOWED: Record<Role, readonly TokenRole[]> = {
  viewer: ['admin', 'operator', 'viewer'],
  operator: ['admin', 'operator'],
  admin: ['admin'],
  worker: ['worker', 'admin'],
};

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
export const CSRF_HEADER = 'x-csrf-token';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/**
 * Authentication and role checks. A request carries either `Authorization: Bearer <token>` (the
 * config's admin or worker token, or an API token, looked up by its SHA-256) or the session
 * cookie of a console login, in which case every request that changes something must also send
 * the session's CSRF token in `x-csrf-token` (a cookie alone is what a forged cross-site request
 * would carry; the header is what it cannot).
 */
export class TokenAuth {
  private readonly admin: Buffer;
  private readonly worker: Buffer;

  constructor(
    tokens: { adminToken: string; workerToken: string },
    private readonly store?: Store,
    private readonly clock?: Clock,
  ) {
    this.admin = digest(tokens.adminToken);
    this.worker = digest(tokens.workerToken);
  }

  /** Finds who calls; throws UNAUTHORIZED, or CSRF_FAILED for a session request without its token. */
  async authenticate(request: FastifyRequest): Promise<Principal> {
    const header = request.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    if (token) return this.fromToken(token);
    const sessionId = readSessionCookie(request);
    if (sessionId && this.store && this.clock) {
      const session = await this.store.getSession(sha256Hex(sessionId), this.clock.now());
      if (!session) throw new KairosError('UNAUTHORIZED', 'session expired: log in again');
      if (!SAFE_METHODS.has(request.method)) checkCsrf(request, session.csrfToken);
      return {
        kind: 'session',
        actor: `user:${session.user.name}`,
        role: session.user.role,
        groups: null,
        user: session.user.name,
        csrfToken: session.csrfToken,
      };
    }
    throw new KairosError('UNAUTHORIZED', 'missing token: send Authorization: Bearer <token> or log in');
  }

  /** Authenticates and checks the role; sets `request.principal`. */
  async check(request: FastifyRequest, needed: Role): Promise<void> {
    const principal = request.principal ?? (await this.authenticate(request));
    request.principal = principal;
    if (ALLOWED[needed].includes(principal.role)) return;
    throw new KairosError(
      'FORBIDDEN',
      principal.role === 'worker'
        ? 'a worker token can only call the worker protocol'
        : `this needs the ${needed} role; ${principal.actor} is ${principal.role}`,
      { needed, role: principal.role },
    );
  }

  private async fromToken(token: string): Promise<Principal> {
    const given = digest(token);
    if (timingSafeEqual(given, this.admin))
      return { kind: 'config-token', actor: 'admin-token', role: 'admin', groups: null };
    if (timingSafeEqual(given, this.worker))
      return { kind: 'config-token', actor: 'worker-token', role: 'worker', groups: null };
    const found = await this.store?.findApiToken(given.toString('hex'));
    if (!found) throw new KairosError('UNAUTHORIZED', 'invalid token');
    return { kind: 'api-token', actor: `token:${found.name}`, role: found.role, groups: found.groups };
  }
}

function checkCsrf(request: FastifyRequest, expected: string): void {
  const given = request.headers[CSRF_HEADER];
  const value = typeof given === 'string' ? Buffer.from(given) : Buffer.alloc(0);
  const want = Buffer.from(expected);
  if (value.length !== want.length || !timingSafeEqual(value, want)) {
    throw new KairosError('CSRF_FAILED', `missing or wrong ${CSRF_HEADER} header for this session`);
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}
