import {
  type Grant,
  GrantListSchema,
  GrantSchema,
  type GrantSpec,
  GrantSpecSchema,
  type Namespace,
  NamespaceListSchema,
  NamespaceParam,
  type NamespaceQuotas,
  NamespaceQuotasSchema,
  NamespaceSchema,
  type NamespaceSpec,
  NamespaceSpecSchema,
  UserParam,
} from '@kairos/client';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { compileQuotas, describeQuotas, quotasFromColumn } from '../../core/quotas.ts';
import { KairosError } from '../../errors.ts';
import type { UserRole } from '../../store/access.ts';
import {
  DEFAULT_NAMESPACE,
  GLOBAL_NAMESPACE,
  type GrantRecord,
  type NamespaceRecord,
} from '../../store/namespaces.ts';
import { answers, NoContent } from '../answers.ts';
import { isGlobalAdmin, namespaceNotFound, roleIn } from '../auth.ts';
import type { NodeContext } from '../context.ts';

/**
 * Namespaces (docs/tenancy.md): the list a caller may see (every caller), creating and deleting
 * them (global admins), and the roles users hold in the request's namespace (its admins). Each
 * change is audited in the transaction of the change.
 */
export function namespaceRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const { store, clock } = ctx;
  const signedIn = { onRequest: ctx.requireRole('signed-in') };
  const globalAdmin = { onRequest: ctx.requireRole('global-admin'), config: { auditedInStore: true } };
  const admin = { onRequest: ctx.requireRole('admin'), config: { auditedInStore: true } };
  const audit = (
    request: FastifyRequest,
    namespace: string,
    action: string,
    target: string,
    details = {},
  ) => ({
    namespace,
    at: clock.now(),
    actor: request.principal?.actor ?? 'anonymous',
    action,
    target,
    details,
  });

  app.get(
    '/v1/namespaces',
    {
      ...signedIn,
      schema: {
        operationId: 'listNamespaces',
        tags: ['access'],
        response: answers({ 200: NamespaceListSchema }),
      },
    },
    async (request) => {
      const items: Namespace[] = [];
      for (const namespace of await store.namespaces.list()) {
        const role = roleIn(request.principal!, namespace.name);
        if (role !== null && role !== 'worker') items.push(namespaceView(namespace, role));
      }
      return { items };
    },
  );

  app.post<{ Body: NamespaceSpec }>(
    '/v1/namespaces',
    {
      ...globalAdmin,
      schema: {
        operationId: 'createNamespace',
        tags: ['access'],
        body: NamespaceSpecSchema,
        response: answers({ 201: NamespaceSchema }),
      },
    },
    async (request, reply) => {
      const { name, description = '' } = request.body;
      const created = await store.namespaces.create(
        { name, description },
        clock.now(),
        audit(request, GLOBAL_NAMESPACE, 'namespaces.create', `namespaces:${name}`),
      );
      reply.status(201);
      return namespaceView(created, 'admin');
    },
  );

  app.get<{ Params: Static<typeof NamespaceParam> }>(
    '/v1/namespaces/:name',
    {
      ...signedIn,
      schema: {
        operationId: 'getNamespace',
        tags: ['access'],
        params: NamespaceParam,
        response: answers({ 200: NamespaceSchema }),
      },
    },
    async (request) => {
      const { name } = request.params;
      const role = roleIn(request.principal!, name);
      if (role === null || role === 'worker') throw namespaceNotFound(name);
      const namespace = await store.namespaces.get(name);
      if (!namespace) throw namespaceNotFound(name);
      return namespaceView(namespace, role);
    },
  );

  app.put<{ Params: Static<typeof NamespaceParam>; Body: NamespaceQuotas }>(
    '/v1/namespaces/:name/quotas',
    {
      ...globalAdmin,
      schema: {
        operationId: 'putNamespaceQuotas',
        tags: ['access'],
        params: NamespaceParam,
        body: NamespaceQuotasSchema,
        response: answers({ 200: NamespaceSchema }),
      },
    },
    async (request) => {
      const { name } = request.params;
      const quotas = describeQuotas(compileQuotas(request.body));
      const updated = await store.namespaces.setQuotas(
        name,
        quotas,
        audit(request, GLOBAL_NAMESPACE, 'namespaces.quotas', `namespaces:${name}`, quotas),
      );
      if (!updated) throw namespaceNotFound(name);
      ctx.quotas.forget(name);
      return namespaceView(updated, 'admin');
    },
  );

  app.delete<{ Params: Static<typeof NamespaceParam> }>(
    '/v1/namespaces/:name',
    {
      ...globalAdmin,
      schema: {
        operationId: 'deleteNamespace',
        tags: ['access'],
        params: NamespaceParam,
        response: answers({ 204: NoContent }),
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      const notEmpty = (why: string) =>
        new KairosError('NAMESPACE_NOT_EMPTY', `namespace ${JSON.stringify(name)} ${why}`, {
          namespace: name,
        });
      if (name === DEFAULT_NAMESPACE) throw notEmpty('is the default namespace: it always stays');
      const outcome = await store.namespaces.delete(
        name,
        audit(request, GLOBAL_NAMESPACE, 'namespaces.delete', `namespaces:${name}`),
      );
      if (outcome === 'not_found') throw namespaceNotFound(name);
      if (outcome === 'not_empty')
        throw notEmpty('still holds jobs, calendars, live workers, API tokens or alert rules or channels');
      ctx.forgetNamespace?.(name);
      reply.status(204);
    },
  );

  app.get(
    '/v1/grants',
    {
      ...admin,
      schema: { operationId: 'listGrants', tags: ['access'], response: answers({ 200: GrantListSchema }) },
    },
    async (request) => ({
      items: (await store.namespaces.listGrants({ namespace: request.namespace })).map(grantView),
    }),
  );

  app.put<{ Params: Static<typeof UserParam>; Body: GrantSpec }>(
    '/v1/grants/:name',
    {
      ...admin,
      schema: {
        operationId: 'putGrant',
        tags: ['access'],
        params: UserParam,
        body: GrantSpecSchema,
        response: answers({ 200: GrantSchema }),
      },
    },
    async (request) => {
      const { name } = request.params;
      const grant = await store.namespaces.putGrant(
        name,
        request.namespace,
        request.body.role,
        clock.now(),
        audit(request, request.namespace, 'grants.put', `users:${name}`, { role: request.body.role }),
      );
      if (!grant) throw new KairosError('USER_NOT_FOUND', `no user named ${JSON.stringify(name)}`);
      return grantView(grant);
    },
  );

  app.delete<{ Params: Static<typeof UserParam> }>(
    '/v1/grants/:name',
    {
      ...admin,
      schema: {
        operationId: 'deleteGrant',
        tags: ['access'],
        params: UserParam,
        response: answers({ 204: NoContent }),
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      // A user without grants has their global role in `default`: a namespace admin taking a user's
      // last grant (their own too) would give them a role in a namespace it does not administer.
      const deleted = await store.namespaces.deleteGrant(
        name,
        request.namespace,
        audit(request, request.namespace, 'grants.delete', `users:${name}`),
        { keepLast: !isGlobalAdmin(request.principal!) },
      );
      if (!deleted)
        throw new KairosError('USER_NOT_FOUND', `user ${JSON.stringify(name)} has no role in this namespace`);
      reply.status(204);
    },
  );
}

const iso = (ms: number) => new Date(ms).toISOString();

function namespaceView(namespace: NamespaceRecord, role: UserRole): Namespace {
  return {
    name: namespace.name,
    description: namespace.description,
    createdAt: iso(namespace.createdAt),
    role,
    quotas: namespace.quotas === null ? null : describeQuotas(quotasFromColumn(namespace.quotas)),
  };
}

function grantView(grant: GrantRecord): Grant {
  return { ...grant, createdAt: iso(grant.createdAt) };
}
