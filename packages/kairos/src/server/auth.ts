import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { KairosError } from '../errors.ts';
import type { Clock } from '../scheduler/clock.ts';
import type { TokenRole, UserRole } from '../store/access.ts';
import { DEFAULT_NAMESPACE, GLOBAL_NAMESPACE, NAMESPACE_PATTERN } from '../store/namespaces.ts';
import type { Store } from '../store/store.ts';
import { readSessionCookie } from './session.ts';

/**
 * What a route needs, in the namespace of the request (docs/tenancy.md). `viewer`: read;
 * `operator`: change jobs and runs; `admin`: the namespace's tokens, grants and audit;
 * `global-admin`: users and namespaces themselves (a global admin only); `worker`: the worker
 * protocol; `signed-in`: any caller, in no namespace (the list of namespaces it may see). Routes
 * without one are public (server/route-table.ts).
 */
export type Role = 'global-admin' | 'admin' | 'operator' | 'viewer' | 'worker' | 'signed-in';

/** Who calls: the bootstrap tokens of the config, an API token, or a user's session. */
export interface Principal {
  kind: 'config-token' | 'api-token' | 'session';
  /** For the audit log: `admin-token`, `worker-token`, `token:<name>`, `user:<name>`. */
  actor: string;
  /** A token's role, or a user's global role. */
  role: TokenRole;
  /** Worker tokens scoped to groups; null: every group. */
  groups: string[] | null;
  /** The namespace a token acts in; `*` for global callers (the admin token, global tokens, users). */
  namespace: string;
  /** Session callers only: the user's roles per namespace (grants). */
  grants?: ReadonlyMap<string, UserRole>;
  /** Session callers only: the user's name and the CSRF token of the session. */
  user?: string;
  csrfToken?: string;
}

/** Roles that may call a route of each level. The admin token also speaks the worker protocol. */
export const ALLOWED: Record<Role, readonly TokenRole[]> = {
  viewer: ['admin', 'operator', 'viewer'],
  operator: ['admin', 'operator'],
  admin: ['admin'],
  'global-admin': ['admin'],
  worker: ['worker', 'admin'],
  'signed-in': ['admin', 'operator', 'viewer', 'worker'],
};

const RANK: Record<UserRole, number> = { viewer: 1, operator: 2, admin: 3 };

/** The header that names the namespace of a request; `?namespace=` does too. */
export const NAMESPACE_HEADER = 'kairos-namespace';

/** Whether the caller is a global admin: the config's admin token, a global admin token, an admin user. */
export function isGlobalAdmin(principal: Principal): boolean {
  return (
    principal.role === 'admin' && (principal.kind === 'session' || principal.namespace === GLOBAL_NAMESPACE)
  );
}

/**
 * The caller's role in a namespace, or null when it has none there (the namespace is then not
 * shown to it at all). A global admin is admin everywhere; a token acts in its own namespace
 * only; a user with grants has the roles granted, and a user without any has their global role in
 * `default` (as every user had before namespaces). A user with grants sees `default` only through
 * a grant there (its global role counts there too): a tenant's users never see `default` by chance.
 */
export function roleIn(principal: Principal, namespace: string): TokenRole | null {
  if (isGlobalAdmin(principal)) return 'admin';
  if (principal.kind !== 'session') return principal.namespace === namespace ? principal.role : null;
  const granted = principal.grants?.get(namespace) ?? null;
  const withoutGrants = (principal.grants?.size ?? 0) === 0;
  const own = namespace === DEFAULT_NAMESPACE && withoutGrants ? (principal.role as UserRole) : null;
  if (granted === null) return own;
  if (own === null) return granted;
  return RANK[granted] >= RANK[own] ? granted : own;
}

/**
 * Takes the namespace a request names (the `Kairos-Namespace` header, else `?namespace=`, else
 * `default`) into `request.namespace`, and `namespace` out of the query, so that no route's query
 * schema has to know it. An onRequest hook: before the role check and validation.
 */
export function installNamespaceParam(app: FastifyInstance): void {
  app.decorateRequest('namespace', DEFAULT_NAMESPACE);
  app.addHook('onRequest', async (request) => {
    request.namespace = requestedNamespace(request);
    const query = request.query as Record<string, unknown> | undefined;
    if (query && 'namespace' in query) delete query.namespace;
  });
}

/** The namespace a request names: the `Kairos-Namespace` header, else `?namespace=`, else `default`. */
export function requestedNamespace(request: FastifyRequest): string {
  const header = request.headers[NAMESPACE_HEADER];
  if (typeof header === 'string' && header !== '') return header;
  const query = (request.query ?? {}) as Record<string, unknown>;
  if (typeof query.namespace === 'string' && query.namespace !== '') return query.namespace;
  return DEFAULT_NAMESPACE;
}

export function namespaceNotFound(namespace: string): KairosError {
  return new KairosError('NAMESPACE_NOT_FOUND', `no namespace named ${JSON.stringify(namespace)}`, {
    namespace,
  });
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
export const CSRF_HEADER = 'x-csrf-token';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    /** The namespace the request acts in (set by the role check; the worker protocol: the worker's). */
    namespace: string;
  }
}

/** How long a node trusts that a namespace exists without asking the store again. */
const NAMESPACE_CHECK_MS = 2000;

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
      const grants = await this.store.namespaces.listGrants({ user: session.user.name });
      return {
        kind: 'session',
        actor: `user:${session.user.name}`,
        role: session.user.role,
        groups: null,
        namespace: GLOBAL_NAMESPACE,
        grants: new Map(grants.map((grant) => [grant.namespace, grant.role])),
        user: session.user.name,
        csrfToken: session.csrfToken,
      };
    }
    throw new KairosError('UNAUTHORIZED', 'missing token: send Authorization: Bearer <token> or log in');
  }

  /**
   * Authenticates, finds the namespace of the request and the caller's role in it, and checks it;
   * sets `request.principal` and `request.namespace`. A namespace that does not exist, or in which
   * the caller has no role, answers the same NAMESPACE_NOT_FOUND: names do not leak. The worker
   * protocol acts in the worker token's namespace (a global admin token: the one it names).
   */
  async check(request: FastifyRequest, needed: Role): Promise<void> {
    const principal = request.principal ?? (await this.authenticate(request));
    request.principal = principal;
    if (needed === 'signed-in') return;
    const named = request.namespace ?? requestedNamespace(request);
    if (needed === 'worker' && principal.role === 'worker') {
      request.namespace = principal.namespace;
      return;
    }
    if (!NAMESPACE_PATTERN.test(named)) throw namespaceNotFound(named);
    const role =
      needed === 'global-admin' ? (isGlobalAdmin(principal) ? 'admin' : null) : roleIn(principal, named);
    if (role === null && needed !== 'global-admin') throw namespaceNotFound(named);
    if (role !== null && ALLOWED[needed].includes(role)) {
      // Users, namespaces and the node's secrets are in no namespace: what the request names does not
      // matter there, and what such a route changes is audited outside every namespace.
      if (needed === 'global-admin') {
        request.namespace = GLOBAL_NAMESPACE;
        return;
      }
      if (!(await this.namespaceExists(named))) throw namespaceNotFound(named);
      request.namespace = named;
      return;
    }
    throw new KairosError(
      'FORBIDDEN',
      role === 'worker'
        ? 'a worker token can only call the worker protocol'
        : `this needs the ${needed} role; ${principal.actor} is ${role ?? principal.role}`,
      { needed, role: role ?? principal.role },
    );
  }

  private readonly knownNamespaces = new Map<string, number>();

  private async namespaceExists(name: string): Promise<boolean> {
    if (!this.store || !this.clock) return name === DEFAULT_NAMESPACE;
    const now = this.clock.now();
    if ((this.knownNamespaces.get(name) ?? 0) > now) return true;
    if (!(await this.store.namespaces.get(name))) return false;
    if (this.knownNamespaces.size > 10_000) this.knownNamespaces.clear();
    this.knownNamespaces.set(name, now + NAMESPACE_CHECK_MS);
    return true;
  }

  /** Forgets that a namespace existed (it was deleted on this node). */
  forgetNamespace(name: string): void {
    this.knownNamespaces.delete(name);
  }

  private async fromToken(token: string): Promise<Principal> {
    const given = digest(token);
    if (timingSafeEqual(given, this.admin))
      return {
        kind: 'config-token',
        actor: 'admin-token',
        role: 'admin',
        groups: null,
        namespace: GLOBAL_NAMESPACE,
      };
    if (timingSafeEqual(given, this.worker))
      return {
        kind: 'config-token',
        actor: 'worker-token',
        role: 'worker',
        groups: null,
        namespace: DEFAULT_NAMESPACE,
      };
    const found = await this.store?.findApiToken(given.toString('hex'));
    if (!found) throw new KairosError('UNAUTHORIZED', 'invalid token');
    return {
      kind: 'api-token',
      actor: `token:${found.name}`,
      role: found.role,
      groups: found.groups,
      namespace: found.namespace,
    };
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
