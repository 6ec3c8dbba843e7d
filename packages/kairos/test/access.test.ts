import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KairosApiError, KairosClient } from '@kairos/client';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config.ts';
import { type KairosNode, startNode } from '../src/node.ts';
import { ALLOWED, type Role } from '../src/server/auth.ts';
import { PostgresStore } from '../src/store/postgres/postgres-store.ts';
import type { Store } from '../src/store/store.ts';
import { apiError, tempDir } from './helpers.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

/**
 * Access control through the HTTP API of a real node, on SQLite and on PostgreSQL: the role of every route, for every
 * kind of caller (config tokens, API tokens, console sessions); sessions and CSRF; login rate
 * limiting; worker tokens scoped to groups; the audit log.
 */

/**
 * The role every API route needs. A route added to the node but not listed here fails the first
 * test, so each new route is classified on purpose; the matrix test then checks every route
 * against every caller.
 */
const EXPECTED: Record<string, Role | 'public'> = {
  'GET /v1/health': 'public',
  'POST /v1/auth/login': 'public',
  'GET /v1/auth/providers': 'public',
  'GET /v1/auth/oidc/login': 'public',
  'GET /v1/auth/oidc/callback': 'public',
  'POST /v1/auth/logout': 'signed-in',
  'GET /v1/auth/me': 'signed-in',
  'POST /v1/jobs': 'operator',
  'GET /v1/jobs': 'viewer',
  'GET /v1/jobs/:name': 'viewer',
  'PUT /v1/jobs/:name': 'operator',
  'PATCH /v1/jobs/:name': 'operator',
  'DELETE /v1/jobs/:name': 'operator',
  'POST /v1/jobs/:name/pause': 'operator',
  'POST /v1/jobs/:name/resume': 'operator',
  'POST /v1/jobs/:name/trigger': 'operator',
  'POST /v1/jobs/:name/trigger-batch': 'operator',
  'GET /v1/runs': 'viewer',
  'GET /v1/runs/:id': 'viewer',
  'POST /v1/runs/:id/cancel': 'operator',
  'POST /v1/runs/:id/retry': 'operator',
  'POST /v1/secrets/rotate': 'global-admin',
  'GET /v1/nodes': 'viewer',
  'GET /v1/doctor': 'global-admin',
  'GET /v1/settings/retention': 'viewer',
  'GET /v1/workers': 'viewer',
  'POST /v1/worker/register': 'worker',
  'POST /v1/worker/:id/heartbeat': 'worker',
  'POST /v1/worker/:id/poll': 'worker',
  'POST /v1/worker/:id/report': 'worker',
  'POST /v1/worker/:id/unregister': 'worker',
  'GET /v1/users': 'global-admin',
  'POST /v1/users': 'global-admin',
  'PATCH /v1/users/:name': 'global-admin',
  'DELETE /v1/users/:name': 'global-admin',
  'GET /v1/tokens': 'admin',
  'POST /v1/tokens': 'admin',
  'DELETE /v1/tokens/:id': 'admin',
  'GET /v1/audit': 'admin',
  'GET /v1/stats/overview': 'viewer',
  'GET /v1/stats/runs-per-minute': 'viewer',
  'POST /v1/preview': 'viewer',
  'GET /v1/jobs/:name/skipped': 'viewer',
  'GET /v1/jobs/:name/preview': 'viewer',
  'POST /v1/jobs/:name/backfill': 'operator',
  'GET /v1/calendars': 'viewer',
  'POST /v1/calendars': 'operator',
  'GET /v1/calendars/:name': 'viewer',
  'PUT /v1/calendars/:name': 'operator',
  'DELETE /v1/calendars/:name': 'operator',
  'GET /v1/alert-rules': 'viewer',
  'POST /v1/alert-rules': 'operator',
  'GET /v1/alert-rules/:name': 'viewer',
  'PUT /v1/alert-rules/:name': 'operator',
  'DELETE /v1/alert-rules/:name': 'operator',
  'GET /v1/alert-channels': 'viewer',
  'POST /v1/alert-channels': 'admin',
  'GET /v1/alert-channels/:name': 'viewer',
  'PUT /v1/alert-channels/:name': 'admin',
  'DELETE /v1/alert-channels/:name': 'admin',
  'POST /v1/alert-channels/:name/test': 'operator',
  'GET /v1/alert-silences': 'viewer',
  'POST /v1/alert-silences': 'operator',
  'DELETE /v1/alert-silences/:id': 'operator',
  'GET /v1/alert-deliveries': 'viewer',
  'GET /v1/alerts': 'viewer',
  'POST /v1/workers/:id/drain': 'operator',
  'POST /v1/workers/:id/resume': 'operator',
  'GET /v1/groups': 'viewer',
  'PUT /v1/groups/:name': 'operator',
  'POST /v1/worker/:id/logs': 'worker',
  'GET /v1/runs/:id/logs': 'viewer',
  'GET /v1/runs/:id/logs/stream': 'viewer',
  'GET /v1/namespaces': 'signed-in',
  'POST /v1/namespaces': 'global-admin',
  'DELETE /v1/namespaces/:name': 'global-admin',
  'GET /v1/namespaces/:name': 'signed-in',
  'PUT /v1/namespaces/:name/quotas': 'global-admin',
  'GET /v1/grants': 'admin',
  'PUT /v1/grants/:name': 'admin',
  'DELETE /v1/grants/:name': 'admin',
  'PUT /v1/workflows/:name': 'operator',
  'GET /v1/workflows': 'viewer',
  'GET /v1/workflows/:name': 'viewer',
  'DELETE /v1/workflows/:name': 'operator',
  'POST /v1/workflows/:name/instances': 'operator',
  'GET /v1/workflows/:name/instances': 'viewer',
  'POST /v1/workflows/:name/pause': 'operator',
  'POST /v1/workflows/:name/resume': 'operator',
  'GET /v1/workflows/:name/skipped': 'viewer',
  'GET /v1/workflow-instances/:id': 'viewer',
  'GET /v1/workflow-instances/:id/steps/:step/items': 'viewer',
  'POST /v1/workflow-instances/:id/cancel': 'operator',
  'POST /v1/workflow-instances/:id/pause': 'operator',
  'POST /v1/workflow-instances/:id/resume': 'operator',
  'POST /v1/workflow-instances/:id/retry': 'operator',
  'POST /v1/workflow-instances/:id/steps/:step/rerun': 'operator',
  'POST /v1/workflow-instances/:id/steps/:step/skip': 'operator',
};

interface Caller {
  name: string;
  role: 'admin' | 'operator' | 'viewer' | 'worker' | 'anonymous';
  headers: () => Record<string, string>;
  /** A global admin: admin in every namespace, and of users and namespaces. */
  global?: boolean;
  /** Its role in each namespace (docs/tenancy.md); absent: none there. */
  roles?: Record<string, 'admin' | 'operator' | 'viewer' | 'worker'>;
}

/**
 * What a route answers a caller in a namespace: allowed (not 401, 403 or NAMESPACE_NOT_FOUND), 401
 * without credentials, 404 NAMESPACE_NOT_FOUND where it has no role (names do not leak), 403
 * FORBIDDEN where its role there lacks the route's.
 */
function expectedAnswer(
  route: { method: string; url: string; access: Role | 'public' },
  caller: Caller,
  namespace: string,
): 'allowed' | 401 | 403 | 404 {
  if (route.access === 'public') return 'allowed';
  if (caller.role === 'anonymous') return 401;
  if (route.access === 'signed-in') return 'allowed';
  if (route.access === 'global-admin') return caller.global ? 'allowed' : 403;
  // A worker token speaks the worker protocol in its own namespace, whatever the request names.
  if (route.access === 'worker' && caller.role === 'worker') return 'allowed';
  const role = caller.global ? 'admin' : caller.roles?.[namespace];
  if (!role) return 404;
  if (!ALLOWED[route.access].includes(role)) return 403;
  if (!EXISTING_NAMESPACES.includes(namespace)) return 404;
  return 'allowed';
}

const EXISTING_NAMESPACES = ['default', 'blue'];

function answered(
  route: { url: string },
  result: { status: number; code: string | undefined },
): 'allowed' | 401 | 403 | 404 | string {
  if (result.status === 401 && result.code === 'UNAUTHORIZED') return 401;
  // Deleting a namespace that does not exist: an allowed call's answer.
  if (route.url.startsWith('/v1/namespaces/:name') && result.code === 'NAMESPACE_NOT_FOUND') return 'allowed';
  if (result.status === 403 && result.code === 'FORBIDDEN') return 403;
  if (result.status === 404 && result.code === 'NAMESPACE_NOT_FOUND') return 404;
  if (result.status === 401 || result.status === 403) return `${result.status} ${result.code}`;
  return 'allowed';
}

let node: KairosNode;
let admin: KairosClient;
const callers: Caller[] = [];

async function session(name: string, password: string): Promise<{ cookie: string; csrf: string }> {
  const response = await fetch(`${node.url}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password }),
  });
  expect(response.status).toBe(200);
  const cookie = response.headers.get('set-cookie')!.split(';')[0]!;
  return { cookie, csrf: ((await response.json()) as { csrfToken: string }).csrfToken };
}

async function call(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<{ status: number; code: string | undefined; body: unknown }> {
  const response = await fetch(node.url + path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const parsed = text ? (JSON.parse(text) as { error?: { code: string } }) : undefined;
  return { status: response.status, code: parsed?.error?.code, body: parsed };
}

// The same suite on both dialects: the embedded node's SQLite and a PostgreSQL schema of its own.
describe.each(['sqlite', 'postgres'] as const)('on %s', (dialect) => {
  let store: Store | undefined;
  beforeAll(async () => {
    callers.length = 0;
    store =
      dialect === 'postgres'
        ? new PostgresStore({ connectionString: testDatabaseUrl(), schema: testSchema() })
        : undefined;
    const config = resolveConfig(
      {
        port: 0,
        dataDir: tempDir(),
        adminToken: 'config-admin',
        workerToken: 'config-worker',
        adminUser: 'root',
        adminPassword: 'root-password',
      },
      {},
    );
    node = await startNode(config, { logger: pino({ level: 'silent' }), ...(store ? { store } : {}) });
    admin = new KairosClient({ url: node.url, token: 'config-admin' });
    const bearer = (token: string) => () => ({ authorization: `Bearer ${token}` });
    callers.push(
      { name: 'anonymous', role: 'anonymous', headers: () => ({}) },
      { name: 'config admin token', role: 'admin', headers: bearer('config-admin'), global: true },
      {
        name: 'config worker token',
        role: 'worker',
        headers: bearer('config-worker'),
        roles: { default: 'worker' },
      },
    );
    for (const role of ['admin', 'operator', 'viewer', 'worker'] as const) {
      // An admin token a global admin makes in `default` is global, as admin tokens were before namespaces.
      const { token } = await admin.createToken({ name: `matrix-${role}`, role });
      callers.push({
        name: `${role} API token`,
        role,
        headers: bearer(token),
        ...(role === 'admin' ? { global: true } : { roles: { default: role } }),
      });
    }
    // Callers of namespace `blue`: its tokens (made by a global admin in it) and users granted roles in it.
    const blueAdmin = new KairosClient({ url: node.url, token: 'config-admin', namespace: 'blue' });
    await admin.createNamespace({ name: 'blue', description: 'the tenant of the matrix' });
    for (const role of ['admin', 'operator', 'viewer', 'worker'] as const) {
      const { token } = await blueAdmin.createToken({ name: `blue-${role}`, role });
      callers.push({ name: `blue ${role} API token`, role, headers: bearer(token), roles: { blue: role } });
    }
    for (const role of ['operator', 'viewer'] as const)
      await admin.createUser({ name: `matrix-${role}`, role, password: `${role}-password` });
    for (const role of ['admin', 'operator', 'viewer'] as const) {
      // A tenant's user: a global role of viewer, which counts only in `default`, and only without grants.
      await admin.createUser({ name: `blue-${role}`, role: 'viewer', password: `blue-${role}-password` });
      await blueAdmin.putGrant(`blue-${role}`, { role });
    }
    for (const [name, password, role, roles] of [
      ['root', 'root-password', 'admin', undefined],
      ['matrix-operator', 'operator-password', 'operator', { default: 'operator' }],
      ['matrix-viewer', 'viewer-password', 'viewer', { default: 'viewer' }],
      ['blue-admin', 'blue-admin-password', 'admin', { blue: 'admin' }],
      ['blue-operator', 'blue-operator-password', 'operator', { blue: 'operator' }],
      ['blue-viewer', 'blue-viewer-password', 'viewer', { blue: 'viewer' }],
    ] as const) {
      const s = await session(name, password);
      callers.push({
        name: `${name} session`,
        role,
        headers: () => ({ cookie: s.cookie, 'x-csrf-token': s.csrf }),
        ...(roles ? { roles } : { global: true }),
      });
    }
  });
  afterAll(async () => {
    await node.stop();
    await store?.close();
  });

  describe('the role of every route', () => {
    it('every API route of the node is classified, and as expected', () => {
      const table = Object.fromEntries(
        node.routes.filter((r) => r.url.startsWith('/v1/')).map((r) => [`${r.method} ${r.url}`, r.access]),
      );
      expect(table).toEqual(EXPECTED);
    });

    it('every route × every namespace × every caller: allowed, 403 FORBIDDEN, 404 NAMESPACE_NOT_FOUND (401 without credentials)', async () => {
      const routes = node.routes
        .filter((r) => r.url.startsWith('/v1/'))
        // Logging out ends the session callers' sessions: last.
        .sort((a, b) => Number(a.url === '/v1/auth/logout') - Number(b.url === '/v1/auth/logout'));
      const failures: string[] = [];
      for (const route of routes) {
        // Parameters that name nothing: an allowed call answers 400 or 404 and changes nothing.
        const path = route.url.replace(':name', 'matrix-nope').replace(':id', '999999');
        // Logging out ends the sessions: only in the last namespace.
        const namespaces =
          route.url === '/v1/auth/logout' ? [undefined] : (['blue', 'nowhere', undefined] as const);
        for (const namespace of namespaces) {
          // The callers at once: each is its own principal, and nothing a call changes is read by another.
          await Promise.all(
            callers.map(async (caller) => {
              const headers = {
                ...caller.headers(),
                ...(namespace ? { 'kairos-namespace': namespace } : {}),
              };
              const result = await call(route.method, path, headers, route.method === 'GET' ? undefined : {});
              const expected = expectedAnswer(route, caller, namespace ?? 'default');
              const got = answered(route, result);
              if (got !== expected)
                failures.push(
                  `${route.method} ${route.url} in ${namespace ?? 'default'} as ${caller.name}: ${result.status} ${result.code}, expected ${expected}`,
                );
            }),
          );
        }
      }
      expect(failures.sort()).toEqual([]);
      expect(routes.length * callers.length * 3).toBeGreaterThan(1500);
    }, 600_000);
  });

  describe('console sessions', () => {
    it('sets an HttpOnly SameSite=Strict cookie; changes need the CSRF header; logout ends the session', async () => {
      const response = await fetch(`${node.url}/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'matrix-operator', password: 'operator-password' }),
      });
      const setCookie = response.headers.get('set-cookie')!;
      expect(setCookie).toMatch(
        /^kairos_session=[\w-]{40,}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/,
      );
      const cookie = setCookie.split(';')[0]!;
      const { csrfToken } = (await response.json()) as { csrfToken: string };

      expect(await call('GET', '/v1/auth/me', { cookie })).toMatchObject({
        status: 200,
        body: { actor: 'user:matrix-operator', role: 'operator', user: 'matrix-operator', csrfToken },
      });
      const spec = { name: 'csrf-job', handler: 'h', trigger: { kind: 'manual' } };
      expect(await call('POST', '/v1/jobs', { cookie }, spec)).toMatchObject({
        status: 403,
        code: 'CSRF_FAILED',
      });
      expect(await call('POST', '/v1/jobs', { cookie, 'x-csrf-token': 'forged' }, spec)).toMatchObject({
        status: 403,
        code: 'CSRF_FAILED',
      });
      expect(await admin.listJobs()).toMatchObject({ items: [] });
      expect(await call('POST', '/v1/jobs', { cookie, 'x-csrf-token': csrfToken }, spec)).toMatchObject({
        status: 201,
      });

      expect(await call('POST', '/v1/auth/logout', { cookie, 'x-csrf-token': csrfToken }, {})).toMatchObject({
        status: 200,
      });
      expect(await call('GET', '/v1/auth/me', { cookie })).toMatchObject({
        status: 401,
        code: 'UNAUTHORIZED',
      });
    });

    it('refuses wrong passwords with one code for unknown users and wrong passwords, then rate limits', async () => {
      await admin.createUser({ name: 'limited', role: 'viewer', password: 'right-password' });
      const attempt = (name: string, password: string) =>
        call('POST', '/v1/auth/login', {}, { name, password });
      expect(await attempt('nobody', 'whatever')).toMatchObject({ status: 401, code: 'LOGIN_FAILED' });
      for (let i = 0; i < 5; i++)
        expect(await attempt('limited', 'wrong-password')).toMatchObject({
          status: 401,
          code: 'LOGIN_FAILED',
        });
      expect(await attempt('limited', 'right-password')).toMatchObject({
        status: 429,
        code: 'TOO_MANY_ATTEMPTS',
      });
      // Other users are not locked out by it.
      expect(await attempt('matrix-viewer', 'viewer-password')).toMatchObject({ status: 200 });
    });

    it('keeps the last admin user and validates user input', async () => {
      expect(await call('DELETE', '/v1/users/root', { authorization: 'Bearer config-admin' })).toMatchObject({
        status: 409,
        code: 'LAST_ADMIN',
      });
      const bad = await call(
        'POST',
        '/v1/users',
        { authorization: 'Bearer config-admin' },
        {
          name: 'short',
          role: 'viewer',
          password: 'x',
        },
      );
      expect(bad).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
      expect(
        await call(
          'POST',
          '/v1/users',
          { authorization: 'Bearer config-admin' },
          {
            name: 'root',
            role: 'viewer',
            password: 'long-enough',
          },
        ),
      ).toMatchObject({ status: 409, code: 'USER_NAME_TAKEN' });
      await expect(admin.updateUser('root', {})).rejects.toMatchObject({
        status: 400,
        code: 'VALIDATION_FAILED',
      });
      const error = await admin.updateUser('nobody', { role: 'viewer' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KairosApiError);
      expect(error).toMatchObject({ status: 404, code: 'USER_NOT_FOUND' });
    });
  });

  describe('API tokens and worker tokens scoped to groups', () => {
    it('a token is shown once, stored hashed, and stops working when revoked', async () => {
      const created = await admin.createToken({ name: 'script', role: 'viewer' });
      expect(created.token).toMatch(/^kairos_viewer_/);
      const listed = (await admin.listTokens()).items.find((t) => t.id === created.id)!;
      expect(listed).not.toHaveProperty('token');
      const stored = await node.store.findApiToken(
        (await import('node:crypto')).createHash('sha256').update(created.token).digest('hex'),
      );
      expect(stored).toMatchObject({ name: 'script', role: 'viewer' });
      const script = new KairosClient({ url: node.url, token: created.token });
      await script.listJobs();
      await admin.deleteToken(created.id);
      await expect(script.listJobs()).rejects.toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
      await expect(admin.createToken({ name: 'x', role: 'viewer', groups: ['a'] })).rejects.toMatchObject({
        code: 'VALIDATION_FAILED',
      });
    });

    it('a worker token for group A cannot register, poll, heartbeat or report in group B', async () => {
      const { token } = await admin.createToken({ name: 'group-a', role: 'worker', groups: ['a'] });
      const scoped = new KairosClient({ url: node.url, token });
      const any = new KairosClient({ url: node.url, token: 'config-worker' });

      await expect(scoped.register({ group: 'b', handlers: ['h'], capacity: 1 })).rejects.toMatchObject({
        status: 403,
        code: 'GROUP_FORBIDDEN',
      });
      const mine = await scoped.register({ group: 'a', handlers: ['h'], capacity: 1 });
      const theirs = await any.register({ group: 'b', handlers: ['h'], capacity: 1 });

      await admin.createJob({ name: 'job-b', group: 'b', handler: 'h', trigger: { kind: 'manual' } });
      const run = await admin.triggerJob('job-b', { params: { n: 1 } });
      const [claimed] = (await any.poll(theirs.workerId, { max: 1, waitMs: 0 })).runs;
      expect(claimed).toMatchObject({ runId: run.id, attempt: 1 });

      for (const attempt of [
        () => scoped.heartbeat(theirs.workerId, { running: [] }),
        () => scoped.poll(theirs.workerId, { max: 1, waitMs: 0 }),
        () => scoped.unregister(theirs.workerId),
        // Its own worker id, but another group's run.
        () =>
          scoped.report(mine.workerId, {
            reports: [{ runId: run.id, attempt: 1, outcome: 'succeeded', result: 1 }],
          }),
      ]) {
        await expect(attempt()).rejects.toMatchObject({ status: 403, code: 'GROUP_FORBIDDEN' });
      }
      expect(await admin.getRun(run.id)).toMatchObject({ status: 'running', workerId: theirs.workerId });
      expect((await admin.listWorkers()).items.find((w) => w.id === theirs.workerId)?.status).toBe('active');

      // Its own group works; the config's worker token still serves every group.
      expect(await scoped.heartbeat(mine.workerId, { running: [] })).toMatchObject({ cancel: [] });
      expect(await scoped.poll(mine.workerId, { max: 1, waitMs: 0 })).toMatchObject({ runs: [] });
      expect(
        await any.report(theirs.workerId, {
          reports: [{ runId: run.id, attempt: 1, outcome: 'succeeded', result: 1 }],
        }),
      ).toMatchObject({ results: [{ ok: true }] });
    });
  });

  describe('namespaces keep their entities apart', () => {
    it('a caller of one namespace gets 404 for every entity of another, on every route, and changes nothing', async () => {
      const blueAdmin = new KairosClient({ url: node.url, token: 'config-admin', namespace: 'blue' });
      const { token: blueToken } = await blueAdmin.createToken({ name: 'apart-admin', role: 'admin' });
      const { token: blueWorkerToken } = await blueAdmin.createToken({
        name: 'apart-worker',
        role: 'worker',
      });
      // What `default` holds, and what `blue` holds.
      await admin.createJob({ name: 'dflt-job', handler: 'h', trigger: { kind: 'manual' } });
      await admin.putCalendar({ name: 'dflt-cal', dates: ['2030-01-01'] });
      await admin.putAlertChannel({ name: 'dflt-chan', type: 'webhook', url: 'http://127.0.0.1:9/hook' });
      await admin.putAlertRule({ name: 'dflt-rule', kind: 'run-failed', channels: ['dflt-chan'] });
      const dfltRun = await admin.triggerJob('dflt-job', {});
      const dfltWorker = await new KairosClient({ url: node.url, token: 'config-worker' }).register({
        group: 'default',
        handlers: ['h'],
        capacity: 1,
      });
      const { token: dfltTokenValue, id: dfltTokenId } = await admin.createToken({
        name: 'apart-dflt',
        role: 'viewer',
      });
      expect(dfltTokenValue).toBeTruthy();
      await blueAdmin.createJob({ name: 'blue-job', handler: 'h', trigger: { kind: 'manual' } });
      const blueRun = await blueAdmin.triggerJob('blue-job', {});
      const blueWorkers = new KairosClient({ url: node.url, token: blueWorkerToken });
      const blueWorker = await blueWorkers.register({ group: 'default', handlers: ['h'], capacity: 5 });

      // Every route that names an entity, with default's entity, as blue's admin and worker tokens.
      const entityOf: Array<[string, string]> = [
        ['/v1/jobs/:name', 'dflt-job'],
        ['/v1/calendars/:name', 'dflt-cal'],
        ['/v1/alert-rules/:name', 'dflt-rule'],
        ['/v1/alert-channels/:name', 'dflt-chan'],
        ['/v1/runs/:id', String(dfltRun.id)],
        ['/v1/workers/:id', dfltWorker.workerId],
        ['/v1/worker/:id', dfltWorker.workerId],
        ['/v1/tokens/:id', String(dfltTokenId)],
      ];
      const failures: string[] = [];
      let checked = 0;
      for (const route of node.routes) {
        const entity = entityOf.find(
          ([prefix]) => route.url === prefix || route.url.startsWith(`${prefix}/`),
        );
        if (!entity) continue;
        const path = route.url.replace(/:name|:id/, encodeURIComponent(entity[1]));
        const token = route.access === 'worker' ? blueWorkerToken : blueToken;
        const headers = { authorization: `Bearer ${token}`, 'kairos-namespace': 'blue' };
        const result = await call(route.method, path, headers, route.method === 'GET' ? undefined : {});
        checked++;
        // 404 (the entity is not there for it), or 400 when the body is refused before any lookup.
        if (result.status !== 404 && result.status !== 400)
          failures.push(`${route.method} ${path}: ${result.status} ${result.code}`);
        if (result.status === 404 && result.code === 'NAMESPACE_NOT_FOUND')
          failures.push(`${route.method} ${path}: ${result.code}`);
      }
      expect(failures).toEqual([]);
      expect(checked).toBeGreaterThan(25);
      // Nothing of default changed.
      expect(await admin.getJob('dflt-job')).toMatchObject({ version: 1, paused: false });
      expect(await admin.getRun(dfltRun.id)).toMatchObject({ status: 'queued' });
      expect((await admin.listCalendars()).items.map((c) => c.name)).toContain('dflt-cal');
      expect((await admin.listAlertRules()).items.map((r) => r.name)).toContain('dflt-rule');
      expect((await admin.listAlertChannels()).items.map((c) => c.name)).toContain('dflt-chan');
      expect((await admin.listTokens()).items.map((t) => t.id)).toContain(dfltTokenId);
      expect((await admin.listWorkers()).items.find((w) => w.id === dfltWorker.workerId)?.status).toBe(
        'active',
      );

      // Lists show only their namespace.
      const blueCaller = { authorization: `Bearer ${blueToken}`, 'kairos-namespace': 'blue' };
      for (const path of [
        '/v1/jobs',
        '/v1/runs',
        '/v1/workers',
        '/v1/calendars',
        '/v1/alert-rules',
        '/v1/alert-channels',
        '/v1/tokens',
        '/v1/audit',
        '/v1/grants',
        '/v1/stats/overview',
      ]) {
        const blue = JSON.stringify((await call('GET', path, blueCaller)).body);
        expect(blue, path).not.toMatch(/dflt-|apart-dflt/);
        const dflt = JSON.stringify((await call('GET', path, { authorization: 'Bearer config-admin' })).body);
        expect(dflt, path).not.toMatch(/blue-job|apart-admin|apart-worker/);
      }
      expect((await blueAdmin.listJobs()).items.map((j) => j.name)).toEqual(['blue-job']);

      // A worker of blue claims blue's run only, in the same group as default's queued run.
      const polled = await blueWorkers.poll(blueWorker.workerId, { max: 5, waitMs: 0 });
      expect(polled.runs.map((r) => r.runId)).toEqual([blueRun.id]);
      expect(await admin.getRun(dfltRun.id)).toMatchObject({ status: 'queued' });
      // Default's counts are its own: blue's running run is not among them. Then leave default as found.
      expect(await admin.overview()).toMatchObject({ running: 0 });
      expect(await blueAdmin.overview()).toMatchObject({ running: 1 });
      await admin.deleteJob('dflt-job');
    });

    it('alert silences, deliveries and open alerts are of their namespace; a rule names jobs of its own only', async () => {
      const blueAdmin = new KairosClient({ url: node.url, token: 'config-admin', namespace: 'blue' });
      await admin.createJob({ name: 'al-dflt-job', handler: 'h', trigger: { kind: 'manual' } });
      await admin.putAlertChannel({ name: 'al-dflt-chan', type: 'webhook', url: 'http://127.0.0.1:9/hook' });
      await admin.putAlertRule({ name: 'al-dflt-rule', kind: 'run-failed', channels: ['al-dflt-chan'] });
      await blueAdmin.putAlertChannel({
        name: 'al-blue-chan',
        type: 'webhook',
        url: 'http://127.0.0.1:9/hook',
      });
      await blueAdmin.putAlertRule({ name: 'al-blue-rule', kind: 'run-failed', channels: ['al-blue-chan'] });

      // A rule names a job of its own namespace: a job of another namespace is answered as one that
      // does not exist (404 JOB_NOT_FOUND, the same answer), so the refusal tells nothing of it.
      const refusals: string[] = [];
      for (const job of ['al-dflt-job', 'al-no-such-job']) {
        const name = `al-blue-${job}`;
        const refused = await blueAdmin
          .createAlertRule({ name, kind: 'run-failed', job, channels: ['al-blue-chan'] })
          .then(
            () => null,
            (error: { status: number; code: string; message: string }) => error,
          );
        expect(refused).toMatchObject({ status: 404, code: 'JOB_NOT_FOUND' });
        refusals.push(refused!.message.replace(job, '<job>'));
      }
      expect(refusals[0]).toBe(refusals[1]);

      // Silences: made, listed and deleted in their namespace; a rule of another namespace is not found.
      const endsAt = new Date(Date.now() + 3_600_000).toISOString();
      const dfltSilence = await admin.createAlertSilence({ endsAt, comment: 'al-dflt-silence' });
      await expect(blueAdmin.createAlertSilence({ rule: 'al-dflt-rule', endsAt })).rejects.toMatchObject({
        status: 404,
        code: 'ALERT_RULE_NOT_FOUND',
      });
      const blueSilence = await blueAdmin.createAlertSilence({
        rule: 'al-blue-rule',
        endsAt,
        comment: 'al-blue-silence',
      });
      expect((await blueAdmin.listAlertSilences()).items.map((s) => s.id)).toEqual([blueSilence.id]);
      expect((await admin.listAlertSilences()).items.map((s) => s.id)).not.toContain(blueSilence.id);
      await expect(blueAdmin.deleteAlertSilence(dfltSilence.id)).rejects.toMatchObject({
        status: 404,
        code: 'SILENCE_NOT_FOUND',
      });
      expect((await admin.listAlertSilences()).items.map((s) => s.id)).toContain(dfltSilence.id);

      // Deliveries: a test message belongs to its channel's namespace.
      const dfltDelivery = await admin.testAlertChannel('al-dflt-chan');
      const blueDelivery = await blueAdmin.testAlertChannel('al-blue-chan');
      const blueHistory = (await blueAdmin.listAlertDeliveries({ limit: 200 })).items.map((d) => d.id);
      expect(blueHistory).toContain(blueDelivery.id);
      expect(blueHistory).not.toContain(dfltDelivery.id);
      const dfltHistory = (await admin.listAlertDeliveries({ limit: 200 })).items.map((d) => d.id);
      expect(dfltHistory).toContain(dfltDelivery.id);
      expect(dfltHistory).not.toContain(blueDelivery.id);
      const blueCaller = { authorization: 'Bearer config-admin', 'kairos-namespace': 'blue' };
      for (const path of ['/v1/alert-silences', '/v1/alert-deliveries', '/v1/alerts']) {
        expect(JSON.stringify((await call('GET', path, blueCaller)).body), path).not.toMatch(/al-dflt-/);
      }

      // A live worker of blue in the same group name does not serve default's queued run.
      await admin.createJob({
        name: 'al-wait-job',
        handler: 'h',
        group: 'al-grp',
        trigger: { kind: 'manual' },
      });
      const blueWorker = await blueAdmin.register({ group: 'al-grp', handlers: ['h'], capacity: 1 });
      const waiting = await admin.triggerJob('al-wait-job', {});
      expect((await admin.getRun(waiting.id)).waiting).toMatchObject({ reason: 'no_live_worker_in_group' });
      await blueAdmin.unregister(blueWorker.workerId);
      await admin.deleteJob('al-wait-job');

      await admin.deleteAlertSilence(dfltSilence.id);
      await blueAdmin.deleteAlertSilence(blueSilence.id);
      await admin.deleteAlertRule('al-dflt-rule');
      await blueAdmin.deleteAlertRule('al-blue-rule');
      await admin.deleteAlertChannel('al-dflt-chan');
      await blueAdmin.deleteAlertChannel('al-blue-chan');
      await admin.deleteJob('al-dflt-job');
    });

    it('namespaces: listed as each caller may see them, created and deleted by global admins only', async () => {
      const rootList = await admin.listNamespaces();
      expect(rootList.items.map((n) => [n.name, n.role])).toEqual([
        ['blue', 'admin'],
        ['default', 'admin'],
      ]);
      // A fresh session: the matrix logged the callers' sessions out.
      const blueViewer = await session('blue-viewer', 'blue-viewer-password');
      expect((await call('GET', '/v1/namespaces', { cookie: blueViewer.cookie })).body).toMatchObject({
        items: [{ name: 'blue', role: 'viewer' }],
      });
      await admin.createNamespace({ name: 'short-lived' });
      await expect(admin.createNamespace({ name: 'short-lived' })).rejects.toMatchObject({
        status: 409,
        code: 'NAMESPACE_TAKEN',
      });
      await expect(admin.deleteNamespace('default')).rejects.toMatchObject({
        status: 409,
        code: 'NAMESPACE_NOT_EMPTY',
      });
      await expect(admin.deleteNamespace('blue')).rejects.toMatchObject({
        status: 409,
        code: 'NAMESPACE_NOT_EMPTY',
      });
      await admin.deleteNamespace('short-lived');
      await expect(
        new KairosClient({ url: node.url, token: 'config-admin', namespace: 'short-lived' }).listJobs(),
      ).rejects.toMatchObject({ status: 404, code: 'NAMESPACE_NOT_FOUND' });
      await expect(admin.createNamespace({ name: 'Not_Valid' })).rejects.toMatchObject({
        status: 400,
        code: 'VALIDATION_FAILED',
      });
    });
  });

  describe('the CLI', () => {
    it('kairos users create NAME --role admin --password-stdin creates a user who can log in', async () => {
      const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          cli,
          '--url',
          node.url,
          '--token',
          'config-admin',
          'users',
          'create',
          'cli-admin',
          '--role',
          'admin',
          '--password-stdin',
        ],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      let output = '';
      child.stdout.on('data', (chunk) => {
        output += chunk;
      });
      child.stderr.on('data', (chunk) => {
        output += chunk;
      });
      child.stdin.end('cli-password-1\n');
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect({ code, output }).toEqual({ code: 0, output: 'created admin cli-admin\n' });
      expect((await session('cli-admin', 'cli-password-1')).csrf).toBeTruthy();
    });
  });

  describe('audit log, stats, preview and retry', () => {
    it('records who changed what, from tokens and from the store transactions of user changes', async () => {
      const { token } = await admin.createToken({ name: 'auditor', role: 'operator' });
      const operator = new KairosClient({ url: node.url, token });
      await operator.createJob({ name: 'audited', handler: 'h', trigger: { kind: 'manual' } });
      await operator.pauseJob('audited');
      // A trigger is audited in the write of its run; one that fails is not audited.
      await operator.triggerJob('audited', { params: { n: 1 } });
      await apiError(operator.triggerJob('audited-not', {}));
      await operator.deleteJob('audited');
      const { items } = await admin.listAudit({ limit: 50 });
      const mine = items.filter((e) => e.target === 'jobs:audited').map((e) => [e.actor, e.action]);
      expect(mine).toEqual([
        ['token:auditor', 'jobs.delete'],
        ['token:auditor', 'jobs.trigger'],
        ['token:auditor', 'jobs.pause'],
        ['token:auditor', 'jobs.create'],
      ]);
      expect(items.filter((e) => e.target === 'jobs:audited-not')).toEqual([]);
      expect(items.find((e) => e.target === 'tokens:auditor')).toMatchObject({
        actor: 'admin-token',
        action: 'tokens.create',
        details: { role: 'operator' },
      });
      expect(items.find((e) => e.target === 'users:root')).toMatchObject({
        actor: 'config',
        action: 'users.create',
      });
      expect(items.some((e) => e.action.startsWith('worker'))).toBe(false);
    });

    it('previews fire times, refuses bad triggers with their codes, retries runs, and counts', async () => {
      const preview = await admin.preview({
        trigger: { kind: 'cron', cron: '0 9 * * *', timezone: 'Europe/Berlin' },
      });
      expect(preview.fires).toHaveLength(10);
      expect(preview.skipped).toEqual([]);
      for (const f of preview.fires) {
        expect(new Date(f.fireTime).getUTCHours()).toBeOneOf([7, 8]);
        expect(f.runAt).toBe(f.fireTime);
      }
      const times = preview.fires.map((f) => Date.parse(f.fireTime));
      expect(times).toEqual([...times].sort((a, b) => a - b));
      expect((await admin.preview({ trigger: { kind: 'every', every: '1m' }, count: 3 })).fires).toHaveLength(
        3,
      );
      expect((await admin.preview({ trigger: { kind: 'manual' } })).fires).toEqual([]);
      await expect(admin.preview({ trigger: { kind: 'cron', cron: '61 * * * *' } })).rejects.toMatchObject({
        status: 400,
        code: 'INVALID_CRON',
      });
      await expect(
        admin.preview({ trigger: { kind: 'cron', cron: '* * * * *', timezone: 'Mars/Base' } }),
      ).rejects.toMatchObject({ code: 'INVALID_TIMEZONE' });

      await admin.createJob({ name: 'retried', handler: 'h', trigger: { kind: 'manual' }, params: { a: 1 } });
      const first = await admin.triggerJob('retried', { params: { b: 2 }, priority: 3 });
      const again = await admin.retryRun(first.id);
      expect(again).toMatchObject({
        jobName: 'retried',
        params: { b: 2 },
        priority: 3,
        status: 'queued',
        cause: 'manual',
      });
      expect(again.id).toBeGreaterThan(first.id);
      await expect(admin.retryRun(999_999)).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });

      const overview = await admin.overview();
      // The run of job-b (worker-token test) succeeded; the two runs of `retried` wait.
      expect(overview).toMatchObject({ nodesOnline: 1, successRate: 1, queued: 2 });
      expect(overview.lastHour).toEqual({ succeeded: 1, failed: 0, timedOut: 0, cancelled: 0 });
      expect((await admin.runsPerMinute()).items).toMatchObject([{ succeeded: 1, failed: 0 }]);
      await expect(admin.runsPerMinute('2000-01-01T00:00:00Z')).rejects.toMatchObject({
        code: 'VALIDATION_FAILED',
      });
      await expect(admin.runsPerMinute('yesterday')).rejects.toMatchObject({
        status: 400,
        code: 'VALIDATION_FAILED',
      });
    });

    it('overview over the last hour or day with fire lateness; refuses any other window', async () => {
      // A scheduled job in a group of its own, and a worker that takes its first run.
      await admin.createJob({
        name: 'late',
        group: 'late',
        handler: 'h',
        trigger: { kind: 'every', every: '1s' },
      });
      const { workerId } = await admin.register({ group: 'late', handlers: ['h'], capacity: 1 });
      let claimed: Awaited<ReturnType<typeof admin.poll>>['runs'] = [];
      while (claimed.length === 0) claimed = (await admin.poll(workerId, { max: 1, waitMs: 5000 })).runs;
      await admin.pauseJob('late');
      const run = await admin.getRun(claimed[0]!.runId);
      expect(run.cause).toBe('schedule');
      const late = Date.parse(run.startedAt!) - Date.parse(run.fireTime!);

      const hour = await admin.overview();
      expect(hour.window).toBe('1h');
      expect(hour.ended).toEqual(hour.lastHour);
      expect(hour.lateness).toEqual({ count: 1, p50Ms: late, p99Ms: late, sampled: false });
      const day = await admin.overview('24h');
      expect(day).toMatchObject({ window: '24h', lateness: { count: 1, p50Ms: late } });
      expect(day.ended.succeeded).toBeGreaterThanOrEqual(hour.ended.succeeded);

      for (const window of ['1w', '', '1H']) {
        const result = await call('GET', `/v1/stats/overview?window=${window}`, {
          authorization: 'Bearer config-admin',
        });
        expect(result).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
      }
      await admin.report(workerId, {
        reports: [{ runId: run.id, attempt: 1, outcome: 'succeeded', result: null }],
      });
      await admin.unregister(workerId);
    });

    it('lists runs created in a time range, paged by id; refuses malformed or empty ranges', async () => {
      await admin.createJob({ name: 'ranged', handler: 'h', trigger: { kind: 'manual' } });
      const runs = [];
      for (let i = 0; i < 3; i++) runs.push(await admin.triggerJob('ranged', {}));
      const first = runs[0]!.createdAt;
      const last = runs[2]!.createdAt;
      const inRange = await admin.listRuns({
        job: 'ranged',
        since: first,
        until: new Date(Date.parse(last) + 1).toISOString(),
      });
      expect(inRange.items.map((r) => r.id)).toEqual(runs.map((r) => r.id).reverse());
      // Paging inside the range.
      const page1 = await admin.listRuns({ job: 'ranged', since: first, limit: 2 });
      expect(page1.items).toHaveLength(2);
      const page2 = await admin.listRuns({
        job: 'ranged',
        since: first,
        limit: 2,
        cursor: page1.nextCursor!,
      });
      expect(page2.items.map((r) => r.id)).toEqual([runs[0]!.id]);
      // Before all of them, and after all of them.
      expect((await admin.listRuns({ job: 'ranged', until: first })).items).toEqual([]);
      expect(
        (await admin.listRuns({ job: 'ranged', since: new Date(Date.parse(last) + 1).toISOString() })).items,
      ).toEqual([]);

      await expect(admin.listRuns({ since: 'yesterday' })).rejects.toMatchObject({
        status: 400,
        code: 'VALIDATION_FAILED',
        details: { path: '/since' },
      });
      await expect(admin.listRuns({ until: '2030-13-45T00:00:00Z' })).rejects.toMatchObject({
        status: 400,
        code: 'VALIDATION_FAILED',
      });
      await expect(
        admin.listRuns({ since: '2030-01-02T00:00:00Z', until: '2030-01-01T00:00:00Z' }),
      ).rejects.toMatchObject({ status: 400, code: 'INVALID_TIME_RANGE' });
      await expect(admin.listRuns({ since: first, until: first })).rejects.toMatchObject({
        code: 'INVALID_TIME_RANGE',
      });
    });
  });
});

afterAll(dropTestSchemas);
