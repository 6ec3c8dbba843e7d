import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KairosClient } from '@kairos/client';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.ts';
import { freePort, spawnKairos, waitFor } from './processes.ts';

const mode = (path: string) => statSync(path).mode & 0o777;

/**
 * A started node keeps its secrets out of its output and its files away from other users: tokens
 * and passwords never reach a log line; the data folder is 0700, the credentials and the SQLite
 * files 0600.
 */
describe('a node keeps its secrets', async () => {
  const dataDir = join(tempDir(), 'data');
  const port = await freePort();
  const password = 'first-admin-password-42';
  const clientSecret = 'oidc-client-secret-42';
  const node = spawnKairos(['server', '--port', String(port), '--data-dir', dataDir], {
    // Single sign-on with a provider that is down: its client secret stays out of the log too.
    KAIROS_OIDC_ISSUER: `http://127.0.0.1:${await freePort()}`,
    KAIROS_OIDC_CLIENT_ID: 'kairos',
    KAIROS_OIDC_CLIENT_SECRET: clientSecret,
    KAIROS_OIDC_REDIRECT_URL: `http://127.0.0.1:${port}/v1/auth/oidc/callback`,
    KAIROS_OIDC_ROLES: '*=viewer',
    KAIROS_ADMIN_USER: 'root',
    KAIROS_ADMIN_PASSWORD: password,
    KAIROS_LOG_LEVEL: 'debug',
    KAIROS_URL: '',
    KAIROS_TOKEN: '',
    KAIROS_ADMIN_TOKEN: '',
    KAIROS_WORKER_TOKEN: '',
    KAIROS_DATABASE_URL: '',
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/v1/health`)).ok, 60_000, `the node\n${node.output()}`);
  const credentials = JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8')) as {
    adminToken: string;
    workerToken: string;
  };

  it('keeps the data folder 0700 and its files 0600 while it runs', () => {
    expect(mode(dataDir)).toBe(0o700);
    for (const file of ['credentials.json', 'kairos.db', 'kairos.db-wal', 'kairos.db-shm']) {
      expect({ file, mode: mode(join(dataDir, file)).toString(8) }).toEqual({ file, mode: '600' });
    }
  });

  it('logs no token and no password, also while serving requests', async () => {
    const admin = new KairosClient({ url, token: credentials.adminToken });
    await admin.createJob({ name: 'j', handler: 'h', trigger: { kind: 'manual' } });
    await fetch(`${url}/v1/jobs`, { headers: { authorization: `Bearer ${credentials.adminToken}x` } });
    await fetch(`${url}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'root', password }),
    });
    expect((await fetch(`${url}/v1/auth/oidc/login`, { redirect: 'manual' })).status).toBe(502);
    expect((await fetch(`${url}/v1/auth/oidc/callback?code=c&state=s`)).status).toBe(400);
    node.process.kill('SIGTERM');
    expect(await node.exited).toBe(0);
    const output = node.output();
    expect(output).toContain('kairos node started');
    expect(output).not.toContain(credentials.adminToken);
    expect(output).not.toContain(credentials.workerToken);
    expect(output).not.toContain(password);
    expect(output).not.toContain(clientSecret);
  });
});
