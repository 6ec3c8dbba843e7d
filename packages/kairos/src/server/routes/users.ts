import {
  type ApiToken,
  ApiTokenListSchema,
  type ApiTokenSpec,
  ApiTokenSpecSchema,
  type AuditEntry,
  AuditPageSchema,
  AuditQuery,
  type CreatedApiToken,
  CreatedApiTokenSchema,
  IdParam,
  type User,
  UserListSchema,
  UserParam,
  UserSchema,
  type UserSpec,
  UserSpecSchema,
  type UserUpdate,
  UserUpdateSchema,
} from '@kairos/client';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { KairosError } from '../../errors.ts';
import type { ApiTokenRecord, AuditRecord, UserRecord } from '../../store/access.ts';
import { DEFAULT_NAMESPACE, GLOBAL_NAMESPACE } from '../../store/namespaces.ts';
import { answers, NoContent } from '../answers.ts';
import { isGlobalAdmin, sha256Hex } from '../auth.ts';
import type { NodeContext } from '../context.ts';
import { idCursor } from '../cursor.ts';
import { hashPassword } from '../passwords.ts';
import { newSecret } from '../session.ts';

/**
 * Users (global admins), and the API tokens and audit log of the request's namespace (its admins).
 * Each change is audited in its own transaction.
 */
export function userRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const { store, clock } = ctx;
  const globalAdmin = { onRequest: ctx.requireRole('global-admin'), config: { auditedInStore: true } };
  const admin = { onRequest: ctx.requireRole('admin'), config: { auditedInStore: true } };
  const audit = (request: FastifyRequest, action: string, target: string, details = {}) => ({
    namespace: request.url.startsWith('/v1/users') ? GLOBAL_NAMESPACE : request.namespace,
    at: clock.now(),
    actor: request.principal?.actor ?? 'anonymous',
    action,
    target,
    details,
  });

  const listUsers = {
    operationId: 'listUsers',
    tags: ['access'],
    response: answers({ 200: UserListSchema }),
  };
  app.get('/v1/users', { ...globalAdmin, schema: listUsers }, async () => ({
    items: (await store.listUsers()).map(userView),
  }));

  app.post<{ Body: UserSpec }>(
    '/v1/users',
    {
      ...globalAdmin,
      schema: {
        operationId: 'createUser',
        tags: ['access'],
        body: UserSpecSchema,
        response: answers({ 201: UserSchema }),
      },
    },
    async (request, reply) => {
      const { name, role, password } = request.body;
      const user = await store.createUser(
        { name, role, passwordHash: await hashPassword(password) },
        clock.now(),
        audit(request, 'users.create', `users:${name}`, { role }),
      );
      reply.status(201);
      return userView(user);
    },
  );

  app.patch<{ Params: Static<typeof UserParam>; Body: UserUpdate }>(
    '/v1/users/:name',
    {
      ...globalAdmin,
      schema: {
        operationId: 'updateUser',
        tags: ['access'],
        params: UserParam,
        body: UserUpdateSchema,
        response: answers({ 200: UserSchema }),
      },
    },
    async (request) => {
      const { role, password } = request.body;
      const { name } = request.params;
      const details = { ...(role ? { role } : {}), ...(password ? { password: 'changed' } : {}) };
      if (password !== undefined && (await store.getUser(name))?.issuer) {
        throw new KairosError(
          'USER_EXTERNAL',
          `user ${JSON.stringify(name)} signs in through single sign-on and has no password here`,
        );
      }
      const user = await store.updateUser(
        name,
        { role, passwordHash: password === undefined ? undefined : await hashPassword(password) },
        clock.now(),
        audit(request, 'users.update', `users:${name}`, details),
      );
      if (!user) throw new KairosError('USER_NOT_FOUND', `no user named ${JSON.stringify(name)}`);
      return userView(user);
    },
  );

  app.delete<{ Params: Static<typeof UserParam> }>(
    '/v1/users/:name',
    {
      ...globalAdmin,
      schema: {
        operationId: 'deleteUser',
        tags: ['access'],
        params: UserParam,
        response: answers({ 204: NoContent }),
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      if (!(await store.deleteUser(name, audit(request, 'users.delete', `users:${name}`))))
        throw new KairosError('USER_NOT_FOUND', `no user named ${JSON.stringify(name)}`);
      reply.status(204);
    },
  );

  const listTokens = {
    operationId: 'listTokens',
    tags: ['access'],
    response: answers({ 200: ApiTokenListSchema }),
  };
  app.get('/v1/tokens', { ...admin, schema: listTokens }, async (request) => ({
    items: (await store.listApiTokens(request.namespace)).map(tokenView),
  }));

  app.post<{ Body: ApiTokenSpec }>(
    '/v1/tokens',
    {
      ...admin,
      schema: {
        operationId: 'createToken',
        tags: ['access'],
        body: ApiTokenSpecSchema,
        response: answers({ 201: CreatedApiTokenSchema }),
      },
    },
    async (request, reply) => {
      const { name, role, groups } = request.body;
      if (groups && role !== 'worker') {
        throw new KairosError('VALIDATION_FAILED', 'groups: only worker tokens are scoped to groups', {
          path: '/groups',
        });
      }
      if (request.body.global && role !== 'admin') {
        throw new KairosError('VALIDATION_FAILED', 'global: only admin tokens may be global', {
          path: '/global',
        });
      }
      // An admin token a global admin makes in `default` is global unless it says otherwise: admin
      // tokens were global before namespaces, and a store of one namespace keeps them so.
      const global =
        request.body.global ??
        (role === 'admin' && isGlobalAdmin(request.principal!) && request.namespace === DEFAULT_NAMESPACE);
      if (global && !isGlobalAdmin(request.principal!)) {
        throw new KairosError('FORBIDDEN', 'only a global admin may create a global token', {
          needed: 'global-admin',
          role: 'admin',
        });
      }
      const token = `kairos_${role}_${newSecret()}`;
      const record = await store.createApiToken(
        {
          name,
          tokenHash: sha256Hex(token),
          role,
          groups: groups ?? null,
          createdBy: request.principal!.actor,
          namespace: global ? GLOBAL_NAMESPACE : request.namespace,
        },
        clock.now(),
        audit(request, 'tokens.create', `tokens:${name}`, { role, groups: groups ?? null }),
      );
      reply.status(201);
      const created: CreatedApiToken = { ...tokenView(record), token };
      return created;
    },
  );

  app.delete<{ Params: Static<typeof IdParam> }>(
    '/v1/tokens/:id',
    {
      ...admin,
      schema: {
        operationId: 'deleteToken',
        tags: ['access'],
        params: IdParam,
        response: answers({ 204: NoContent }),
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      // A token of another namespace is not found; a global token is deleted by global admins only.
      const token = (await store.listApiTokens()).find((t) => t.id === id);
      const visible = token && (token.namespace === request.namespace || isGlobalAdmin(request.principal!));
      if (!visible || !(await store.deleteApiToken(id, audit(request, 'tokens.delete', `tokens:${id}`))))
        throw new KairosError('TOKEN_NOT_FOUND', `no API token ${id}`);
      reply.status(204);
    },
  );

  app.get<{ Querystring: Static<typeof AuditQuery> }>(
    '/v1/audit',
    {
      ...admin,
      schema: {
        operationId: 'listAudit',
        tags: ['access'],
        querystring: AuditQuery,
        response: answers({ 200: AuditPageSchema }),
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 100;
      const cursor = request.query.cursor;
      const before = idCursor(cursor);
      // A global admin also sees the changes made outside any namespace: users and namespaces.
      const namespaces = isGlobalAdmin(request.principal!)
        ? [request.namespace, GLOBAL_NAMESPACE]
        : [request.namespace];
      const items = await store.listAudit({ namespaces, before, limit });
      return {
        items: items.map(auditView),
        nextCursor: items.length === limit ? String(items[items.length - 1]!.id) : null,
      };
    },
  );
}

const iso = (ms: number) => new Date(ms).toISOString();

function userView(user: UserRecord): User {
  return {
    name: user.name,
    role: user.role,
    issuer: user.issuer,
    createdAt: iso(user.createdAt),
    updatedAt: iso(user.updatedAt),
  };
}

function tokenView(token: ApiTokenRecord): ApiToken {
  return {
    id: token.id,
    namespace: token.namespace,
    name: token.name,
    role: token.role,
    groups: token.groups,
    createdBy: token.createdBy,
    createdAt: iso(token.createdAt),
  };
}

function auditView(entry: AuditRecord): AuditEntry {
  return { ...entry, at: iso(entry.at) };
}
