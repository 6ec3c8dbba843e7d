import { EmptySchema, type LoginRequest, LoginRequestSchema, type Me, MeSchema } from '@kairos/client';
import type { FastifyInstance } from 'fastify';
import { KairosError } from '../../errors.ts';
import { answers } from '../answers.ts';
import { sha256Hex } from '../auth.ts';
import type { NodeContext } from '../context.ts';
import { LoginLimiter } from '../login-limiter.ts';
import { UNUSABLE_HASH, verifyPassword } from '../passwords.ts';
import {
  clearSessionCookie,
  newSecret,
  readSessionCookie,
  SESSION_TTL_MS,
  setSessionCookie,
} from '../session.ts';

/** Console login: a session cookie plus a CSRF token the console sends back on every change. */
export function sessionRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const { store, clock } = ctx;
  const limiter = new LoginLimiter();
  // Rate limiting judges time on this node's monotonic clock: a wall-clock step cannot unlock it.
  const mono = () => performance.now();

  app.post<{ Body: LoginRequest }>(
    '/v1/auth/login',
    {
      schema: {
        operationId: 'login',
        tags: ['access'],
        body: LoginRequestSchema,
        response: answers({ 200: MeSchema }),
      },
    },
    async (request, reply) => {
      const { name, password } = request.body;
      if (!ctx.config.passwordLogin) {
        throw new KairosError(
          'PASSWORD_LOGIN_DISABLED',
          'password login is switched off on this node: use single sign-on',
        );
      }
      const wait = limiter.blockedFor(name, request.ip, mono());
      if (wait > 0) {
        reply.header('retry-after', String(Math.ceil(wait / 1000)));
        throw new KairosError('TOO_MANY_ATTEMPTS', `too many failed logins for ${name}: try again later`);
      }
      const user = await store.getUser(name);
      // Unknown names and users of single sign-on cost a hash too: timing does not tell them apart.
      const stored = user && user.issuer === null ? user.passwordHash : UNUSABLE_HASH;
      const ok = await verifyPassword(password, stored);
      if (user && user.issuer !== null) {
        // A user of single sign-on has no password here: their provider decides who they are.
        limiter.failed(name, request.ip, mono());
        throw new KairosError('LOGIN_FAILED', `user ${name} signs in with single sign-on, not a password`);
      }
      if (!user || !ok) {
        limiter.failed(name, request.ip, mono());
        throw new KairosError('LOGIN_FAILED', 'wrong user name or password');
      }
      limiter.succeeded(name, request.ip);
      const sessionId = newSecret();
      const csrfToken = newSecret();
      const now = clock.now();
      await store.createSession(
        { idHash: sha256Hex(sessionId), userId: user.id, csrfToken, expiresAt: now + SESSION_TTL_MS },
        now,
      );
      setSessionCookie(request, reply, sessionId, SESSION_TTL_MS);
      const me: Me = { actor: `user:${user.name}`, role: user.role, user: user.name, csrfToken };
      return me;
    },
  );

  app.post(
    '/v1/auth/logout',
    {
      onRequest: ctx.requireRole('signed-in'),
      schema: { operationId: 'logout', tags: ['access'], response: answers({ 200: EmptySchema }) },
    },
    async (request, reply) => {
      const sessionId = readSessionCookie(request);
      if (sessionId) await store.deleteSession(sha256Hex(sessionId));
      clearSessionCookie(request, reply);
      return {};
    },
  );

  app.get(
    '/v1/auth/me',
    {
      onRequest: ctx.requireRole('signed-in'),
      schema: { operationId: 'me', tags: ['access'], response: answers({ 200: MeSchema }) },
    },
    async (request) => {
      const p = request.principal!;
      const me: Me = {
        actor: p.actor,
        role: p.role,
        user: p.user ?? null,
        csrfToken: p.csrfToken ?? null,
      };
      return me;
    },
  );
}
