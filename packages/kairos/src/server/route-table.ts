import type { FastifyInstance, RouteOptions } from 'fastify';
import type { Role } from './auth.ts';

/** One route of the API with the role it needs; `public` routes need none. */
export interface RouteAccess {
  method: string;
  url: string;
  access: Role | 'public';
}

/** API routes anyone may call: health, login (password or single sign-on). Everything else under /v1 must name a role. */
export const PUBLIC_ROUTES = new Set([
  'GET /v1/health',
  'POST /v1/auth/login',
  'GET /v1/auth/providers',
  'GET /v1/auth/oidc/login',
  'GET /v1/auth/oidc/callback',
]);

/** A role check hook remembers its role, so that the route table can be read back from the routes. */
export type RoleHook = ((...args: never[]) => unknown) & { access?: Role };

/**
 * Records every route with its access level as it is added, and refuses to start with an API route
 * that names no role and is not listed as public: a new route cannot be forgotten by the role
 * checks (the role-matrix test walks this table).
 */
export function recordRoutes(app: FastifyInstance): RouteAccess[] {
  const table: RouteAccess[] = [];
  app.addHook('onRoute', (route: RouteOptions) => {
    const hooks = [route.onRequest ?? []].flat() as RoleHook[];
    const access = hooks.find((hook) => hook.access)?.access ?? 'public';
    for (const method of [route.method].flat()) {
      if (method === 'HEAD') continue;
      const key = `${method} ${route.url}`;
      if (route.url.startsWith('/v1/') && access === 'public' && !PUBLIC_ROUTES.has(key)) {
        throw new Error(`route ${key} names no role: add onRequest: ctx.requireRole(…) or list it as public`);
      }
      table.push({ method, url: route.url, access });
    }
  });
  return table;
}
