import { randomBytes } from 'node:crypto';
import { KairosClient } from '@kairos/client';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config.ts';
import { type KairosNode, startNode } from '../src/node.ts';
import { PostgresStore } from '../src/store/postgres/postgres-store.ts';
import type { Store } from '../src/store/store.ts';
import { apiError, tempDir } from './helpers.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

/**
 * A caller of one namespace neither reads nor changes another's, nor gains a role outside its own
 * (docs/tenancy.md, docs/security.md): cases beside the role matrix of access.test.ts, on a real
 * node over SQLite and over PostgreSQL.
 */

describe.each(['sqlite', 'postgres'] as const)('on %s', (dialect) => {
  let node: KairosNode;
  let store: Store | undefined;
  /** The config's admin token: a global admin, in `default` unless told otherwise. */
  let admin: KairosClient;
  /** The config's admin token in namespace `red`. */
  let redAdmin: KairosClient;

  beforeAll(async () => {
    store =
      dialect === 'postgres'
        ? new PostgresStore({ connectionString: testDatabaseUrl(), schema: testSchema() })
        : undefined;
    const config = resolveConfig(
      {
        port: 0,
        dataDir: tempDir(),
        adminToken: 'admin-t',
        workerToken: 'worker-t',
        adminUser: 'root',
        adminPassword: 'root-password',
        secretKeys: `k1:${randomBytes(32).toString('base64')}`,
      },
      {},
    );
    node = await startNode(config, { logger: pino({ level: 'silent' }), ...(store ? { store } : {}) });
    admin = new KairosClient({ url: node.url, token: 'admin-t' });
    redAdmin = new KairosClient({ url: node.url, token: 'admin-t', namespace: 'red' });
    await admin.createNamespace({ name: 'red' });
  });
  afterAll(async () => {
    await node.stop();
    await store?.close();
  });

  /** A session of a user (a console login): a client that sends its cookie and CSRF token. */
  async function login(name: string, password: string, namespace?: string) {
    const response = await fetch(`${node.url}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name, password }),
    });
    expect(response.status).toBe(200);
    const cookie = response.headers.get('set-cookie')!.split(';')[0]!;
    const { csrfToken } = (await response.json()) as { csrfToken: string };
    return (method: string, path: string, body?: unknown) =>
      fetch(`${node.url}${path}`, {
        method,
        headers: {
          cookie,
          'x-csrf-token': csrfToken,
          ...(namespace ? { 'kairos-namespace': namespace } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
  }

  it("a preview in one namespace does not read another namespace's calendar", async () => {
    // `default` keeps a calendar that excludes every Monday; `red` previews a schedule naming it.
    await admin.createCalendar({ name: 'default-mondays', weekdays: [1] });
    const { token } = await redAdmin.createToken({ name: 'red-viewer', role: 'viewer' });
    const redViewer = new KairosClient({ url: node.url, token, namespace: 'red' });
    const request = {
      trigger: { kind: 'cron' as const, cron: '0 12 * * *', timezone: 'UTC' },
      schedule: { calendars: ['default-mondays'] },
      from: '2030-01-05T00:00:00Z',
      count: 3,
    };
    // In its own namespace the calendar skips Monday 7 January.
    expect((await admin.preview(request)).skipped).toEqual([
      { fireTime: '2030-01-07T12:00:00.000Z', reason: 'calendar' },
    ]);
    // In `red` it is as unknown as a calendar that does not exist: nothing of it shows.
    const fromRed = await redViewer.preview(request);
    const unknown = await redViewer.preview({ ...request, schedule: { calendars: ['no-such-calendar'] } });
    expect(fromRed).toEqual(unknown);
    expect(fromRed.skipped).toEqual([]);
  });

  it("a namespace admin cannot take a user's last grant, which would give them their global role in default", async () => {
    await admin.createJob({ name: 'default-only', handler: 'h', trigger: { kind: 'manual' } });
    // A tenant's user: a global role of operator (it counts in `default` only while they have no grant).
    await admin.createUser({ name: 'red-boss', role: 'operator', password: 'red-boss-password' });
    await admin.createUser({ name: 'red-member', role: 'operator', password: 'red-member-password' });
    await redAdmin.putGrant('red-boss', { role: 'admin' });
    await redAdmin.putGrant('red-member', { role: 'viewer' });
    const boss = await login('red-boss', 'red-boss-password', 'red');
    const inDefault = await login('red-boss', 'red-boss-password');
    expect((await inDefault('GET', '/v1/jobs/default-only')).status).toBe(404);

    // Neither the member's last grant nor the admin's own: both are refused, nothing changes.
    for (const user of ['red-member', 'red-boss']) {
      const answer = await boss('DELETE', `/v1/grants/${user}`);
      expect(answer.status).toBe(403);
      expect(((await answer.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
    }
    expect((await redAdmin.listGrants()).items.map((g) => [g.user, g.role])).toEqual([
      ['red-boss', 'admin'],
      ['red-member', 'viewer'],
    ]);
    expect((await inDefault('GET', '/v1/jobs/default-only')).status).toBe(404);
    expect((await inDefault('POST', '/v1/jobs/default-only/trigger', {})).status).toBe(404);

    // A grant that is not the user's last may go; a global admin may take the last one.
    await admin.createNamespace({ name: 'red-two' });
    await new KairosClient({ url: node.url, token: 'admin-t', namespace: 'red-two' }).putGrant('red-member', {
      role: 'viewer',
    });
    expect((await boss('DELETE', '/v1/grants/red-member')).status).toBe(204);
    await redAdmin.deleteGrant('red-boss');
    expect((await inDefault('GET', '/v1/jobs/default-only')).status).toBe(200);
  });

  it('a change outside namespaces (secrets rotate) is audited outside them, not in the namespace the request named', async () => {
    const { token } = await redAdmin.createToken({ name: 'red-admin', role: 'admin' });
    const redNamespaceAdmin = new KairosClient({ url: node.url, token, namespace: 'red' });
    // A global admin that happens to name `red`.
    await redAdmin.rotateSecrets();
    expect((await redNamespaceAdmin.listAudit()).items.map((e) => e.action)).not.toContain('secrets.rotate');
    // A global admin reads it in every namespace, with users and namespaces.
    const global = (await admin.listAudit()).items.find((e) => e.action === 'secrets.rotate');
    expect(global).toMatchObject({ actor: 'admin-token', namespace: '*' });
    // Nor does an admin of `default` only read the users the node's config created.
    const { token: defaultToken } = await admin.createToken({
      name: 'default-admin',
      role: 'admin',
      global: false,
    });
    const defaultAdmin = new KairosClient({ url: node.url, token: defaultToken });
    const inDefault = (await defaultAdmin.listAudit()).items.map((e) => e.action);
    expect(inDefault).toContain('tokens.create');
    expect(inDefault.filter((action) => action.startsWith('users.') || action === 'secrets.rotate')).toEqual(
      [],
    );
    expect((await admin.listAudit({ limit: 500 })).items.find((e) => e.actor === 'config')).toMatchObject({
      actor: 'config',
      namespace: '*',
    });
  });

  it("a job's after-chain is walked within its namespace: another namespace's jobs neither refuse nor show", async () => {
    // `red` keeps a job that runs after a name `default` then takes.
    await redAdmin.createJob({
      name: 'red-after',
      handler: 'h',
      trigger: { kind: 'after', job: 'default-parent' },
    });
    const created = await admin.createJob({
      name: 'default-parent',
      handler: 'h',
      trigger: { kind: 'after', job: 'red-after' },
    });
    expect(created.trigger).toMatchObject({ kind: 'after', job: 'red-after' });
    // A real cycle inside one namespace is still refused.
    await admin.createJob({ name: 'loop-a', handler: 'h', trigger: { kind: 'after', job: 'loop-b' } });
    const cycle = await apiError(
      admin.createJob({ name: 'loop-b', handler: 'h', trigger: { kind: 'after', job: 'loop-a' } }),
    );
    expect(cycle.code).toBe('DEPENDENCY_CYCLE');
  });

  it('a worker token cannot share its name with another of its namespace, which would drive its workers', async () => {
    // Workers are bound to the token that registered them by its name (`token:<name>`).
    const first = await redAdmin.createToken({ name: 'etl', role: 'worker' });
    const worker = new KairosClient({ url: node.url, token: first.token });
    const { workerId } = await worker.register({ group: 'default', handlers: ['h'], capacity: 1 });
    const second = await apiError(redAdmin.createToken({ name: 'etl', role: 'worker', groups: ['default'] }));
    expect({ status: second.status, code: second.code }).toEqual({ status: 409, code: 'TOKEN_NAME_TAKEN' });
    expect((await redAdmin.listTokens()).items.filter((t) => t.name === 'etl')).toHaveLength(1);
    // Another namespace may use the name: its tokens act only as its own workers.
    const other = await admin.createToken({ name: 'etl', role: 'worker' });
    const stranger = new KairosClient({ url: node.url, token: other.token });
    expect((await apiError(stranger.heartbeat(workerId, { running: [] }))).code).toBe('WORKER_NOT_FOUND');
    // Once the first is deleted, its name may be given again.
    const id = (await redAdmin.listTokens()).items.find((t) => t.name === 'etl')!.id;
    await redAdmin.deleteToken(id);
    await redAdmin.createToken({ name: 'etl', role: 'worker' });
  });

  it("a worker's progress applies only while it holds the attempt: not after the run ended", async () => {
    await redAdmin.createJob({ name: 'red-progress', handler: 'p', trigger: { kind: 'manual' } });
    const run = await redAdmin.triggerJob('red-progress');
    const { token } = await redAdmin.createToken({ name: 'red-progress-worker', role: 'worker' });
    const worker = new KairosClient({ url: node.url, token });
    const { workerId } = await worker.register({ group: 'default', handlers: ['p'], capacity: 1 });
    expect((await worker.poll(workerId, { max: 1, waitMs: 0 })).runs.map((r) => r.runId)).toEqual([run.id]);
    const time = () => new Date().toISOString();
    await worker.sendLogs(workerId, {
      logs: [],
      progress: [{ runId: run.id, attempt: 1, value: 1, message: 'done' }],
    });
    await worker.report(workerId, { reports: [{ runId: run.id, attempt: 1, outcome: 'succeeded' }] });
    // After its end: a late line of the attempt is kept (history), a progress is not (it is the run's state).
    const late = await worker.sendLogs(workerId, {
      logs: [{ runId: run.id, attempt: 1, time: time(), level: 'info', message: 'late line' }],
      progress: [{ runId: run.id, attempt: 1, value: 0.1, message: 'stale' }],
    });
    expect(late.accepted).toBe(1);
    const page = await redAdmin.runLogs(run.id);
    expect(page.progress).toMatchObject({ attempt: 1, value: 1, message: 'done' });
    expect(page.items.map((line) => line.message)).toEqual(['late line']);
  });

  it("an open log stream ends when its caller's token is deleted", async () => {
    await redAdmin.createJob({ name: 'red-followed', handler: 'nobody-serves', trigger: { kind: 'manual' } });
    // Queued, and no worker serves it: only the caller's access can end the stream.
    const run = await redAdmin.triggerJob('red-followed');
    const { token, id } = await redAdmin.createToken({ name: 'red-follower', role: 'viewer' });
    const response = await fetch(`${node.url}/v1/runs/${run.id}/logs/stream?namespace=red`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    await redAdmin.deleteToken(id);
    const text = await response.text();
    expect(text).toContain('event: error');
    expect(text).toContain('"code":"UNAUTHORIZED"');
    expect(text).not.toContain('event: end');
  }, 60_000);
});

afterAll(dropTestSchemas);
