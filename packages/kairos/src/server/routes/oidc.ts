import { type AuthProviders, AuthProvidersSchema } from '@kairos/client';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { KairosError } from '../../errors.ts';
import type { UserRecord } from '../../store/access.ts';
import { GLOBAL_NAMESPACE } from '../../store/namespaces.ts';
import { answers } from '../answers.ts';
import { sha256Hex } from '../auth.ts';
import type { NodeContext } from '../context.ts';
import { OidcClient } from '../oidc-client.ts';
import { claimValues, roleFromClaims } from '../oidc-roles.ts';
import { newSecret, readCookie, SESSION_TTL_MS, setSessionCookie } from '../session.ts';

/** The browser's cookie for a login under way at the provider: its SHA-256 finds the login's checks. */
export const OIDC_LOGIN_COOKIE = 'kairos_oidc';
/** How long a login at the provider may take, from the button to the callback. */
export const OIDC_LOGIN_TTL_MS = 10 * 60 * 1000;
const LOGIN_PATH = '/v1/auth/oidc/login';
const CALLBACK_PATH = '/v1/auth/oidc/callback';
/** A user name as `POST /v1/users` takes it. */
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
/** A redirect: no body, a `location` header. */
const Redirect = Type.Null({ description: 'Redirect (see the location header)' });

/**
 * Single sign-on (docs/security.md#single-sign-on). `GET /v1/auth/oidc/login` records the checks
 * of a new login (state, nonce, PKCE verifier) in the store under a short-lived cookie and sends
 * the browser to the provider; `GET /v1/auth/oidc/callback` takes them back (once), lets the
 * provider's answer be validated, maps the claims to a role, creates or updates the external user
 * and starts the same session a password login starts, then sends the browser to the console.
 * Both are browser routes that answer redirects; their errors answer in the house shape.
 * Every callback of a login under way is audited: `auth.oidc.login`, or `auth.oidc.login_failed`
 * with the code.
 */
export function oidcRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const { store, clock, config } = ctx;
  const client = config.oidc ? new OidcClient(config.oidc) : null;

  app.get(
    '/v1/auth/providers',
    {
      schema: {
        operationId: 'authProviders',
        tags: ['access'],
        response: answers({ 200: AuthProvidersSchema }),
      },
    },
    async () => {
      const providers: AuthProviders = {
        password: config.passwordLogin,
        sso: config.oidc ? { name: config.oidc.providerName, loginUrl: LOGIN_PATH } : null,
      };
      return providers;
    },
  );

  const login = {
    operationId: 'oidcLogin',
    tags: ['access'],
    description:
      'Browser route: redirects to the OpenID provider with a login cookie (docs/security.md#single-sign-on).',
    response: answers({ 302: Redirect }),
  };
  app.get(LOGIN_PATH, { schema: login }, async (request, reply) => {
    if (!client) throw notConfigured();
    const checks = OidcClient.newChecks();
    // The provider first: when it is down nothing is written.
    const target = await client.authorizationUrl(checks);
    const loginId = newSecret();
    const now = clock.now();
    await store.createOidcLogin(
      { idHash: sha256Hex(loginId), ...checks, expiresAt: now + OIDC_LOGIN_TTL_MS },
      now,
    );
    setLoginCookie(request, reply, loginId, OIDC_LOGIN_TTL_MS);
    return reply.redirect(target.href, 302);
  });

  const callback = {
    operationId: 'oidcCallback',
    tags: ['access'],
    description:
      "Browser route: the provider's answer (code, state, or error) in the query; starts a session and redirects to the console.",
    response: answers({ 303: Redirect }),
  };
  app.get(CALLBACK_PATH, { schema: callback }, async (request, reply) => {
    if (!client || !config.oidc) throw notConfigured();
    const oidc = config.oidc;
    const query = new URLSearchParams(request.url.slice(request.url.indexOf('?') + 1 || request.url.length));
    const loginId = readCookie(request, OIDC_LOGIN_COOKIE);
    setLoginCookie(request, reply, '', 0);
    let identity: { issuer: string; subject: string } | undefined;
    let underWay = false;
    try {
      const now = clock.now();
      const login = loginId ? await store.takeOidcLogin(sha256Hex(loginId), now) : null;
      underWay = login !== null;
      if (!login) {
        throw new KairosError(
          'OIDC_STATE_INVALID',
          'no login under way in this browser (expired after 10 minutes, or already used): start again',
        );
      }
      if (query.get('state') !== login.state) {
        throw new KairosError(
          'OIDC_STATE_INVALID',
          'the state does not match the login under way: start again',
        );
      }
      const found = await client.finish(query, login);
      identity = found;
      const role = roleFromClaims(found.claims, oidc.roleClaim, oidc.roles);
      if (!role) {
        throw new KairosError(
          'OIDC_NO_ROLE',
          `no Kairos role is mapped for this user's ${oidc.roleClaim} claim`,
          {
            claim: oidc.roleClaim,
            values: claimValues(found.claims, oidc.roleClaim),
          },
        );
      }
      const name = claimValues(found.claims, oidc.nameClaim)[0];
      if (name === undefined || !USER_NAME.test(name)) {
        throw new KairosError(
          'OIDC_LOGIN_FAILED',
          `the ${oidc.nameClaim} claim is missing or not a user name (letters, digits, ._@-, at most 64): set oidcNameClaim`,
          { claim: oidc.nameClaim },
        );
      }
      const user = await upsert(ctx, { issuer: found.issuer, subject: found.subject, name, role }, now);
      await startSession(ctx, request, reply, user);
      return reply.redirect('/', 303);
    } catch (error) {
      const refused = asKairosError(error);
      request.log.warn({ err: error, code: refused.code }, 'single sign-on refused');
      // Audited when the browser had started a login here: a callback out of nowhere writes nothing,
      // so that anonymous requests cannot fill the audit log (each login under way is one row first).
      if (!underWay) throw refused;
      await store
        .appendAudit({
          // A login is no namespace's change: audited with users, outside every namespace.
          namespace: GLOBAL_NAMESPACE,
          at: clock.now(),
          actor: 'anonymous',
          action: 'auth.oidc.login_failed',
          target: identity ? `oidc:${identity.subject}` : 'oidc:unknown',
          details: {
            code: refused.code,
            message: refused.message,
            ...(identity ? { issuer: identity.issuer } : {}),
          },
        })
        .catch((auditError: unknown) =>
          request.log.error({ err: auditError }, 'could not write the audit entry'),
        );
      throw refused;
    }
  });
}

async function upsert(
  ctx: NodeContext,
  user: { issuer: string; subject: string; name: string; role: UserRecord['role'] },
  now: number,
): Promise<UserRecord> {
  try {
    return await ctx.store.upsertExternalUser(user, now, {
      namespace: GLOBAL_NAMESPACE,
      at: now,
      actor: `user:${user.name}`,
      action: 'auth.oidc.login',
      target: `users:${user.name}`,
      details: { issuer: user.issuer, subject: user.subject, role: user.role },
    });
  } catch (error) {
    if ((error as KairosError).code !== 'USER_NAME_TAKEN') throw error;
    throw new KairosError(
      'USER_NAME_TAKEN',
      `a user named ${JSON.stringify(user.name)} exists (a local user or another identity), and single sign-on never takes one over: rename or delete it`,
      { name: user.name },
    );
  }
}

/** The session a password login starts (routes/session.ts): a cookie; the console reads its CSRF token from /v1/auth/me. */
async function startSession(
  ctx: NodeContext,
  request: FastifyRequest,
  reply: FastifyReply,
  user: UserRecord,
) {
  const sessionId = newSecret();
  const now = ctx.clock.now();
  await ctx.store.createSession(
    {
      idHash: sha256Hex(sessionId),
      userId: user.id,
      csrfToken: newSecret(),
      expiresAt: now + SESSION_TTL_MS,
    },
    now,
  );
  setSessionCookie(request, reply, sessionId, SESSION_TTL_MS);
}

/**
 * The login cookie: HttpOnly, only sent to the callback's path, and SameSite=Lax, because the
 * provider sends the browser back from another site (a Strict cookie would stay home).
 */
function setLoginCookie(request: FastifyRequest, reply: FastifyReply, value: string, maxAgeMs: number): void {
  const attributes = [
    `${OIDC_LOGIN_COOKIE}=${value}`,
    'Path=/v1/auth/oidc',
    'HttpOnly',
    'SameSite=Lax',
    `Max-Age=${Math.floor(maxAgeMs / 1000)}`,
  ];
  if (request.protocol === 'https') attributes.push('Secure');
  reply.header('set-cookie', attributes.join('; '));
}

function notConfigured(): KairosError {
  return new KairosError('OIDC_NOT_CONFIGURED', 'single sign-on is not configured on this node (oidcIssuer)');
}

function asKairosError(error: unknown): KairosError {
  if (error instanceof KairosError) return error;
  return new KairosError(
    'OIDC_LOGIN_FAILED',
    `single sign-on failed: ${(error as Error).message}`,
    undefined,
    {
      cause: error,
    },
  );
}
