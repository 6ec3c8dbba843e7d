import { KairosClient } from '@kairos/client';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config.ts';
import { type KairosNode, startNode } from '../src/node.ts';
import { tempDir } from './helpers.ts';
import { freePort } from './net.ts';
import { startTestProvider, TEST_CLIENT, TEST_PUBLIC_CLIENT, type TestAccount } from './oidc-provider.ts';

/**
 * Single sign-on against a real OpenID provider (`oidc-provider`, on a free port): the browser's
 * part is played by fetch with a small cookie jar that follows redirects and submits the
 * provider's login and consent forms.
 */

/** Cookies by name, each with its path (ports do not separate cookies, as in a browser). */
class CookieJar {
  private readonly cookies = new Map<string, { value: string; path: string }>();

  header(url: URL): string {
    return [...this.cookies]
      .filter(([, c]) => url.pathname.startsWith(c.path))
      .map(([name, c]) => `${name}=${c.value}`)
      .join('; ');
  }

  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';').map((s) => s.trim());
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const path = attributes.find((a) => a.toLowerCase().startsWith('path='))?.slice(5) ?? '/';
      const expired = attributes.some((a) => /^max-age=0$/i.test(a) || /^expires=Thu, 01 Jan 1970/i.test(a));
      if (expired || pair!.slice(eq + 1) === '') this.cookies.delete(name);
      else this.cookies.set(name, { value: pair!.slice(eq + 1), path });
    }
  }

  get(name: string): string | undefined {
    return this.cookies.get(name)?.value;
  }
}

interface Page {
  url: URL;
  status: number;
  text: string;
}

/** Requests `url` and follows redirects, keeping cookies, until an answer that is not a redirect (or `stopAt` matches). */
async function browse(
  jar: CookieJar,
  url: string | URL,
  init: { method?: string; form?: Record<string, string> } = {},
  stopAt?: (next: URL) => boolean,
): Promise<Page> {
  let target = new URL(url);
  let method = init.method ?? 'GET';
  let body: string | undefined = init.form ? new URLSearchParams(init.form).toString() : undefined;
  for (let hops = 0; hops < 20; hops++) {
    const headers: Record<string, string> = { cookie: jar.header(target) };
    if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    const response = await fetch(target, { method, headers, body, redirect: 'manual' });
    jar.store(response);
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.arrayBuffer();
      target = new URL(location, target);
      method = 'GET';
      body = undefined;
      if (stopAt?.(target)) return { url: target, status: response.status, text: '' };
      continue;
    }
    return { url: target, status: response.status, text: await response.text() };
  }
  throw new Error(`too many redirects at ${target}`);
}

/** Submits the first form of a provider page with its hidden fields and `fields`. */
function submit(
  jar: CookieJar,
  page: Page,
  fields: Record<string, string> = {},
  stopAt?: (next: URL) => boolean,
) {
  const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(page.text);
  if (!form) throw new Error(`no form at ${page.url}:\n${page.text.slice(0, 500)}`);
  const hidden = Object.fromEntries(
    [...form[2]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/?>/g)].map((m) => [
      m[1]!,
      m[2]!,
    ]),
  );
  return browse(
    jar,
    new URL(form[1]!.replaceAll('&amp;', '&'), page.url),
    {
      method: 'POST',
      form: { ...hidden, ...fields },
    },
    stopAt,
  );
}

const accounts: Record<string, TestAccount> = {
  ana: { preferred_username: 'ana', groups: ['kairos-ops', 'staff'] },
  eve: { preferred_username: 'eve', groups: ['sales'] },
  bob: { preferred_username: 'bob', groups: ['kairos-admins'] },
};

let node: KairosNode;
let admin: KairosClient;
let provider: Awaited<ReturnType<typeof startTestProvider>>;
let callbackUrl: string;
/** A second node, registered at the provider as a public client. */
let publicNode: KairosNode;
let publicPort: number;

beforeAll(async () => {
  const port = await freePort();
  publicPort = await freePort();
  callbackUrl = `http://127.0.0.1:${port}/v1/auth/oidc/callback`;
  const publicCallback = `http://127.0.0.1:${publicPort}/v1/auth/oidc/callback`;
  provider = await startTestProvider([callbackUrl, publicCallback], accounts);
  const config = resolveConfig(
    {
      port,
      dataDir: tempDir(),
      adminToken: 'admin-t',
      workerToken: 'worker-t',
      oidcIssuer: provider.issuer,
      oidcClientId: TEST_CLIENT.id,
      oidcClientSecret: TEST_CLIENT.secret,
      oidcRedirectUrl: callbackUrl,
      oidcScopes: 'openid profile groups',
      oidcRoles: 'kairos-admins=admin,kairos-ops=operator',
      oidcProviderName: 'Test IdP',
    },
    {},
  );
  node = await startNode(config, { logger: pino({ level: 'silent' }) });
  admin = new KairosClient({ url: node.url, token: 'admin-t' });
  publicNode = await startNode(
    resolveConfig(
      {
        port: publicPort,
        dataDir: tempDir(),
        adminToken: 'admin-t',
        workerToken: 'worker-t',
        oidcIssuer: provider.issuer,
        oidcClientId: TEST_PUBLIC_CLIENT.id,
        oidcRedirectUrl: publicCallback,
        oidcScopes: 'openid profile groups',
        oidcRoles: 'kairos-admins=admin,*=viewer',
      },
      {},
    ),
    { logger: pino({ level: 'silent' }) },
  );
}, 60_000);

afterAll(async () => {
  await node?.stop();
  await publicNode?.stop();
  await provider?.stop();
});

const isCallback = (url: URL) => url.href.startsWith(callbackUrl);

/** Logs in at the provider as `account` and stops at the redirect back to Kairos's callback. */
async function loginAtProvider(jar: CookieJar, account: string): Promise<URL> {
  const loginPage = await browse(jar, `${node.url}/v1/auth/oidc/login`);
  expect(loginPage.url.origin).toBe(provider.issuer);
  expect(loginPage.text).toContain('name="login"');
  const next = await submit(jar, loginPage, { login: account, password: 'any' }, isCallback);
  if (isCallback(next.url)) return next.url;
  expect(next.text).toContain('value="consent"');
  const back = await submit(jar, next, {}, isCallback);
  expect(isCallback(back.url)).toBe(true);
  return back.url;
}

async function me(jar: CookieJar) {
  const response = await fetch(`${node.url}/v1/auth/me`, {
    headers: { cookie: jar.header(new URL(node.url)) },
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function auditActions(): Promise<
  Array<{ action: string; target: string; details: unknown; namespace: string }>
> {
  return (await admin.listAudit({ limit: 100 })).items.filter((e) => e.action.startsWith('auth.oidc'));
}

describe('single sign-on with a real OpenID provider', () => {
  it('tells the console to offer the provider, beside the password', async () => {
    expect(await admin.authProviders()).toEqual({
      password: true,
      sso: { name: 'Test IdP', loginUrl: '/v1/auth/oidc/login' },
    });
  });

  it('sends the browser to the provider with PKCE (S256), state and nonce, and a short-lived login cookie', async () => {
    const response = await fetch(`${node.url}/v1/auth/oidc/login`, { redirect: 'manual' });
    expect(response.status).toBe(302);
    const target = new URL(response.headers.get('location')!);
    expect(target.origin).toBe(provider.issuer);
    expect(Object.fromEntries(target.searchParams)).toMatchObject({
      client_id: TEST_CLIENT.id,
      response_type: 'code',
      redirect_uri: callbackUrl,
      scope: 'openid profile groups',
      code_challenge_method: 'S256',
      code_challenge: expect.stringMatching(/^[\w-]{43}$/),
      state: expect.stringMatching(/^[\w-]{20,}$/),
      nonce: expect.stringMatching(/^[\w-]{20,}$/),
    });
    expect(response.headers.get('set-cookie')).toMatch(
      /^kairos_oidc=[\w-]{40,}; Path=\/v1\/auth\/oidc; HttpOnly; SameSite=Lax; Max-Age=600$/,
    );
  });

  it('login → provider login → consent → callback: a session with the mapped role, audited', async () => {
    const jar = new CookieJar();
    const callback = await loginAtProvider(jar, 'ana');
    const landed = await browse(jar, callback, {}, (next) => next.pathname === '/');
    expect(landed.url.href).toBe(`${node.url}/`);
    expect(jar.get('kairos_session')).toBeDefined();
    expect(jar.get('kairos_oidc')).toBeUndefined();
    const who = await me(jar);
    expect(who).toMatchObject({ status: 200, body: { actor: 'user:ana', role: 'operator', user: 'ana' } });
    // The session is the one a password login starts: changes with its CSRF token.
    const created = await fetch(`${node.url}/v1/jobs`, {
      method: 'POST',
      headers: {
        cookie: jar.header(new URL(node.url)),
        'x-csrf-token': String(who.body.csrfToken),
        'content-type': 'application/json',
      },
      body: JSON.stringify({ name: 'sso-job', handler: 'h', trigger: { kind: 'manual' } }),
    });
    expect(created.status).toBe(201);
    const users = (await admin.listUsers()).items;
    expect(users.find((u) => u.name === 'ana')).toMatchObject({ role: 'operator', issuer: provider.issuer });
    expect((await auditActions())[0]).toMatchObject({
      action: 'auth.oidc.login',
      target: 'users:ana',
      details: { issuer: provider.issuer, subject: 'ana', role: 'operator' },
    });
  });

  it("keeps logins in the audit outside namespaces: default's own admins do not read who signed in", async () => {
    const jar = new CookieJar();
    await browse(jar, await loginAtProvider(jar, 'ana'), {}, (next) => next.pathname === '/');
    // An admin of `default` only (not global), as a namespace admin of it is.
    const { token } = await admin.createToken({ name: 'default-admin', role: 'admin', global: false });
    const defaultAdmin = new KairosClient({ url: node.url, token });
    const seen = (await defaultAdmin.listAudit({ limit: 100 })).items.map((e) => e.action);
    expect(seen).toContain('tokens.create');
    expect(seen.filter((action) => action.startsWith('auth.oidc'))).toEqual([]);
    expect((await auditActions())[0]).toMatchObject({ action: 'auth.oidc.login', namespace: '*' });
  });

  it('maps the role again at every login, never demoting the last admin user', async () => {
    accounts.ana!.groups = ['kairos-admins'];
    try {
      const jar = new CookieJar();
      await browse(jar, await loginAtProvider(jar, 'ana'), {}, (next) => next.pathname === '/');
      expect(await me(jar)).toMatchObject({ body: { role: 'admin', user: 'ana' } });
    } finally {
      accounts.ana!.groups = ['kairos-ops', 'staff'];
    }
    // ana is the only admin user: the provider's new role would demote her, which updateUser
    // refuses too (LAST_ADMIN); the login is refused, audited, and she stays admin.
    const refusedJar = new CookieJar();
    const refused = await browse(refusedJar, await loginAtProvider(refusedJar, 'ana'));
    expect(refused.status).toBe(409);
    expect(JSON.parse(refused.text)).toMatchObject({ error: { code: 'LAST_ADMIN' } });
    expect(refusedJar.get('kairos_session')).toBeUndefined();
    expect((await admin.listUsers()).items.find((u) => u.name === 'ana')).toMatchObject({ role: 'admin' });
    expect((await auditActions())[0]).toMatchObject({
      action: 'auth.oidc.login_failed',
      target: 'oidc:ana',
      details: { code: 'LAST_ADMIN' },
    });
    // With another admin user, the provider's role applies again.
    await admin.createUser({ name: 'other-admin', role: 'admin', password: 'other-admin-password' });
    const jar = new CookieJar();
    await browse(jar, await loginAtProvider(jar, 'ana'), {}, (next) => next.pathname === '/');
    expect(await me(jar)).toMatchObject({ body: { role: 'operator' } });
  });

  it('refuses a callback whose state is not the login under way, and a login used once', async () => {
    const jar = new CookieJar();
    const callback = await loginAtProvider(jar, 'ana');
    const loginCookie = jar.get('kairos_oidc');
    expect(loginCookie).toBeDefined();
    const forged = new URL(callback);
    forged.searchParams.set('state', 'forged-state');
    const refused = await browse(jar, forged);
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.text)).toMatchObject({ error: { code: 'OIDC_STATE_INVALID' } });
    expect(jar.get('kairos_session')).toBeUndefined();
    // The login was taken by the refused callback: the right state does not revive it.
    const again = await fetch(callback, { headers: { cookie: `kairos_oidc=${loginCookie}` } });
    expect(again.status).toBe(400);
    // Without any login cookie (a callback the browser did not start).
    const bare = await fetch(callback);
    expect([bare.status, ((await bare.json()) as { error: { code: string } }).error.code]).toEqual([
      400,
      'OIDC_STATE_INVALID',
    ]);
    // The forged state of a login under way is audited; callbacks without one are not (anonymous noise).
    const audited = (await auditActions()).filter(
      (e) =>
        e.action === 'auth.oidc.login_failed' &&
        (e.details as { code?: string }).code === 'OIDC_STATE_INVALID',
    );
    expect(audited).toHaveLength(1);
    expect(audited[0]).toMatchObject({ target: 'oidc:unknown', details: { code: 'OIDC_STATE_INVALID' } });
  });

  it('refuses a code the provider did not issue for this login (a replayed code): OIDC_LOGIN_FAILED', async () => {
    const jar = new CookieJar();
    const first = await loginAtProvider(jar, 'ana');
    await browse(jar, first, {}, (next) => next.pathname === '/');
    // A new login with its own state, cookie and PKCE verifier, answered with the used code.
    const started = await fetch(`${node.url}/v1/auth/oidc/login`, { redirect: 'manual' });
    jar.store(started);
    const replay = new URL(first);
    replay.searchParams.set('state', new URL(started.headers.get('location')!).searchParams.get('state')!);
    const refused = await browse(jar, replay);
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.text)).toMatchObject({
      error: { code: 'OIDC_LOGIN_FAILED', details: { error: 'invalid_grant' } },
    });
  });

  it('refuses a user whose groups map to no role, with a clear code and no user', async () => {
    const jar = new CookieJar();
    const refused = await browse(jar, await loginAtProvider(jar, 'eve'));
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.text)).toMatchObject({
      error: { code: 'OIDC_NO_ROLE', details: { claim: 'groups', values: ['sales'] } },
    });
    expect(jar.get('kairos_session')).toBeUndefined();
    expect((await admin.listUsers()).items.map((u) => u.name)).not.toContain('eve');
    expect((await auditActions())[0]).toMatchObject({
      action: 'auth.oidc.login_failed',
      target: 'oidc:eve',
      details: { code: 'OIDC_NO_ROLE', issuer: provider.issuer },
    });
  });

  it('answers OIDC_DENIED when the user cancels at the provider', async () => {
    const jar = new CookieJar();
    const loginPage = await browse(jar, `${node.url}/v1/auth/oidc/login`);
    const abort = /href="([^"]*\/abort)"/.exec(loginPage.text);
    expect(abort).not.toBeNull();
    const refused = await browse(jar, new URL(abort![1]!, loginPage.url));
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.text)).toMatchObject({
      error: { code: 'OIDC_DENIED', details: { error: 'access_denied' } },
    });
  });

  it('an external user cannot log in with a password, nor be given one', async () => {
    const response = await fetch(`${node.url}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'ana', password: 'any-password' }),
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({
      error: { code: 'LOGIN_FAILED', message: 'user ana signs in with single sign-on, not a password' },
    });
    await expect(admin.updateUser('ana', { password: 'a-new-password' })).rejects.toMatchObject({
      status: 409,
      code: 'USER_EXTERNAL',
    });
  });

  it('never takes over a local user of the same name', async () => {
    await admin.createUser({ name: 'bob', role: 'viewer', password: 'bob-password' });
    const jar = new CookieJar();
    const refused = await browse(jar, await loginAtProvider(jar, 'bob'));
    expect(refused.status).toBe(409);
    expect(JSON.parse(refused.text)).toMatchObject({
      error: { code: 'USER_NAME_TAKEN', details: { name: 'bob' } },
    });
    expect(jar.get('kairos_session')).toBeUndefined();
    expect((await admin.listUsers()).items.find((u) => u.name === 'bob')).toMatchObject({
      role: 'viewer',
      issuer: null,
    });
    const local = await fetch(`${node.url}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'bob', password: 'bob-password' }),
    });
    expect(await local.json()).toMatchObject({ user: 'bob', role: 'viewer' });
    expect((await auditActions())[0]).toMatchObject({
      action: 'auth.oidc.login_failed',
      target: 'oidc:bob',
      details: { code: 'USER_NAME_TAKEN' },
    });
  });
});

describe('single sign-on as a public client (no secret, PKCE alone)', () => {
  it('logs in, and `*` gives a user outside the mapped groups the viewer role', async () => {
    const jar = new CookieJar();
    const loginPage = await browse(jar, `${publicNode.url}/v1/auth/oidc/login`);
    const isPublicCallback = (url: URL) => url.href.startsWith(`${publicNode.url}/v1/auth/oidc/callback`);
    let page = await submit(jar, loginPage, { login: 'eve', password: 'any' }, isPublicCallback);
    if (!isPublicCallback(page.url)) page = await submit(jar, page, {}, isPublicCallback);
    await browse(jar, page.url, {}, (next) => next.pathname === '/');
    const response = await fetch(`${publicNode.url}/v1/auth/me`, {
      headers: { cookie: jar.header(new URL(publicNode.url)) },
    });
    expect(await response.json()).toMatchObject({ user: 'eve', role: 'viewer' });
  });
});

describe('single sign-on when the provider is down and password login is off', () => {
  let downNode: KairosNode;

  beforeAll(async () => {
    const port = await freePort();
    const closed = await freePort();
    downNode = await startNode(
      resolveConfig(
        {
          port,
          dataDir: tempDir(),
          adminToken: 'admin-t',
          workerToken: 'worker-t',
          oidcIssuer: `http://127.0.0.1:${closed}`,
          oidcClientId: 'kairos',
          oidcRedirectUrl: `http://127.0.0.1:${port}/v1/auth/oidc/callback`,
          oidcRoles: '*=viewer',
          passwordLogin: false,
        },
        {},
      ),
      { logger: pino({ level: 'silent' }) },
    );
  });

  afterAll(() => downNode?.stop());

  it('answers 502 OIDC_PROVIDER_UNAVAILABLE and writes nothing; password login answers PASSWORD_LOGIN_DISABLED', async () => {
    const response = await fetch(`${downNode.url}/v1/auth/oidc/login`, { redirect: 'manual' });
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({ error: { code: 'OIDC_PROVIDER_UNAVAILABLE' } });
    expect(response.headers.get('set-cookie')).toBeNull();
    const client = new KairosClient({ url: downNode.url });
    expect(await client.authProviders()).toEqual({
      password: false,
      sso: { name: 'SSO', loginUrl: '/v1/auth/oidc/login' },
    });
    await expect(client.login({ name: 'x', password: 'y' })).rejects.toMatchObject({
      status: 403,
      code: 'PASSWORD_LOGIN_DISABLED',
    });
  });
});
