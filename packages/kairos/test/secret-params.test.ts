import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { type JsonObject, jobToSpec, KairosClient } from '@kairos/client';
import type { Worker } from '@kairos/worker';
import Database from 'better-sqlite3';
import pg from 'pg';
import pino from 'pino';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../src/cli/program.ts';
import { resolveConfig } from '../src/config.ts';
import { type KairosNode, startNode } from '../src/node.ts';
import { parseSecretKeys, SecretKeyring } from '../src/scheduler/secret-keyring.ts';
import { rotateSecrets } from '../src/scheduler/secret-rotation.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../src/store/store.ts';
import { apiError, tempDir, testWorker } from './helpers.ts';
import { waitFor } from './processes.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

const key = (id: string) => `${id}:${randomBytes(32).toString('base64')}`;
const K1 = key('k1');
const K2 = key('k2');

// Values that must never be seen outside the store's envelopes and the worker's handler.
const API_KEY = 'sk-live-PLAINTEXT-4f1d';
const PASSWORD = 'hunter2-PLAINTEXT-77';
const NEW_PASSWORD = 'new-pw-PLAINTEXT-93';
const RUN_SECRET = 'trigger-PLAINTEXT-c5';
const PLAINTEXTS = [API_KEY, PASSWORD, NEW_PASSWORD, RUN_SECRET];

/**
 * Secret params end to end, on a node over SQLite (the store side runs on both dialects in the
 * conformance suite): stored only encrypted (read from the raw rows), masked in every answer and the
 * audit log, absent from the node's log, decrypted for the worker's handler, kept by an edit that
 * sends the mask back, re-encrypted by `kairos secrets rotate`, and refused without a key.
 */
describe('secret params', async () => {
  const dataDir = tempDir();
  const logs: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(line) });
  const started: KairosNode[] = [];
  afterAll(async () => {
    for (const node of started) await node.stop();
  });

  async function start(secretKeys: string | undefined, dir = dataDir): Promise<KairosNode> {
    const config = resolveConfig(
      { port: 0, dataDir: dir, adminToken: 'admin-t', workerToken: 'worker-t', secretKeys },
      {},
    );
    const node = await startNode(config, { logger });
    started.push(node);
    return node;
  }

  function rawRows(sql: string): Array<Record<string, unknown>> {
    const db = new Database(join(dataDir, 'kairos.db'), { readonly: true });
    try {
      return db.prepare(sql).all() as Array<Record<string, unknown>>;
    } finally {
      db.close();
    }
  }

  /** Runs `kairos …` against the current node; answers what it printed. */
  async function cli(...args: string[]): Promise<string> {
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => {
      lines.push(parts.map(String).join(' '));
    });
    try {
      await buildProgram().parseAsync(['node', 'kairos', '--url', node.url, '--token', 'admin-t', ...args]);
    } finally {
      log.mockRestore();
    }
    return lines.join('\n');
  }

  /** A worker whose `charge` handler records the params it receives. */
  async function worker(node: KairosNode): Promise<{ worker: Worker; received: Map<number, JsonObject> }> {
    const received = new Map<number, JsonObject>();
    const w = testWorker(node, 'default').handle('charge', async (ctx) => {
      received.set(ctx.runId, ctx.params);
      return 'charged';
    });
    await w.start();
    return { worker: w, received };
  }

  let node = await start(K1);
  let admin = new KairosClient({ url: node.url, token: 'admin-t' });
  let { worker: w, received } = await worker(node);
  const spec = {
    name: 'charge',
    handler: 'charge',
    trigger: { kind: 'manual' as const },
    params: { apiKey: API_KEY, db: { password: PASSWORD, host: 'db1' }, region: 'eu' },
    secretParams: ['apiKey', 'db.password'],
  };
  const created = await admin.createJob(spec);

  it('stores a secret field only encrypted, with its key id', () => {
    const [row] = rawRows(`SELECT params, secret_params FROM jobs WHERE name = 'charge'`);
    const text = String(row!.params);
    for (const plain of PLAINTEXTS) expect(text).not.toContain(plain);
    expect(text).toMatch(/"apiKey":\{"\$kairos:secret":"v1:k1:[^"]+"\}/);
    expect(text).toContain('"region":"eu"');
    expect(JSON.parse(String(row!.secret_params))).toEqual(['apiKey', 'db.password']);
  });

  it('answers secret fields as "***" in job answers', async () => {
    const masked = { apiKey: '***', db: { password: '***', host: 'db1' }, region: 'eu' };
    expect(created.params).toEqual(masked);
    expect(created.secretParams).toEqual(['apiKey', 'db.password']);
    expect((await admin.getJob('charge')).params).toEqual(masked);
    expect((await admin.listJobs()).items.find((j) => j.name === 'charge')?.params).toEqual(masked);
  });

  it('gives the worker that claims a run the decrypted values; run answers stay masked', async () => {
    const run = await admin.triggerJob('charge');
    const params = await waitFor(async () => received.get(run.id), 60_000, 'the handler to run');
    expect(params).toEqual({ apiKey: API_KEY, db: { password: PASSWORD, host: 'db1' }, region: 'eu' });
    expect(run.params).toEqual({ apiKey: '***', db: { password: '***', host: 'db1' }, region: 'eu' });
    expect((await admin.getRun(run.id)).params.apiKey).toBe('***');
    const page = await admin.request<{ items: Array<{ id: number; params: JsonObject }> }>(
      'GET',
      '/v1/runs?include=params',
    );
    expect(page.items.find((r) => r.id === run.id)?.params.apiKey).toBe('***');
  });

  it('a PUT of what GET answered changes nothing; an edit that sends the mask back keeps the value', async () => {
    const job = await admin.getJob('charge');
    expect((await admin.putJob(jobToSpec(job))).version).toBe(job.version);
    await admin.updateJob('charge', {
      params: { apiKey: '***', db: { password: NEW_PASSWORD, host: 'db1' }, region: 'us' },
    });
    const run = await admin.triggerJob('charge');
    const params = await waitFor(async () => received.get(run.id), 60_000, 'the handler to run');
    expect(params).toEqual({ apiKey: API_KEY, db: { password: NEW_PASSWORD, host: 'db1' }, region: 'us' });
    // The mask for a field that has no stored value is refused.
    const error = await apiError(
      admin.updateJob('charge', {
        params: { apiKey: '***', token: '***' },
        secretParams: ['apiKey', 'token'],
      }),
    );
    expect(error.code).toBe('VALIDATION_FAILED');
  });

  it('a trigger marks fields of its run secret too, and a repeated request answers its run', async () => {
    const request = {
      params: { apiKey: '***', other: RUN_SECRET },
      secretParams: ['other'],
      idempotencyKey: 'order-1',
    };
    const run = await admin.triggerJob('charge', request);
    expect(run.params).toEqual({ apiKey: '***', other: '***' });
    expect((await admin.triggerJob('charge', request)).id).toBe(run.id);
    const [row] = rawRows(`SELECT params FROM runs WHERE id = ${run.id}`);
    for (const plain of PLAINTEXTS) expect(String(row!.params)).not.toContain(plain);
    const params = await waitFor(async () => received.get(run.id), 60_000, 'the handler to run');
    expect(params).toEqual({ apiKey: API_KEY, other: RUN_SECRET });
    // Another secret under the same key is another request.
    const other = await apiError(admin.triggerJob('charge', { ...request, params: { other: 'x' } }));
    expect(other.code).toBe('IDEMPOTENCY_CONFLICT');
  });

  it('kairos export writes the mask; apply of it, or of a file with the plain secret, prints no secret and keeps it', async () => {
    const dir = tempDir();
    const exported = join(dir, 'export.json');
    await cli('export', '--job', 'charge', '-o', exported);
    const file = readFileSync(exported, 'utf8');
    expect(file).toContain('"apiKey": "***"');
    for (const plain of PLAINTEXTS) expect(file).not.toContain(plain);
    const before = await admin.getJob('charge');
    expect(await cli('apply', '-f', exported)).toMatch(/0 to update, 0 to delete, 1 unchanged/);
    // A file that holds the secret itself (the same value): sent, never printed, and nothing changes.
    const plainFile = join(dir, 'plain.json');
    const spec = JSON.parse(file) as { jobs: Array<{ params: JsonObject }> };
    spec.jobs[0]!.params.apiKey = API_KEY;
    writeFileSync(plainFile, JSON.stringify(spec));
    const output = await cli('apply', '-f', plainFile);
    expect(output).toContain('secret params sent: apiKey');
    for (const plain of PLAINTEXTS) expect(output).not.toContain(plain);
    expect((await admin.getJob('charge')).version).toBe(before.version);
  });

  it('refuses an envelope sent from outside', async () => {
    const error = await apiError(
      admin.createJob({
        ...spec,
        name: 'forged',
        params: { apiKey: { '$kairos:secret': 'v1:k1:AAAA:BBBB' } },
      }),
    );
    expect(error.code).toBe('VALIDATION_FAILED');
    // A routing key that is secret would hash a new ciphertext for every value.
    const routed = await apiError(
      admin.createJob({ ...spec, name: 'routed', routing: { strategy: 'consistent-hash', key: 'apiKey' } }),
    );
    expect(routed.code).toBe('INVALID_ROUTING');
  });

  it('keeps plaintext out of the audit log', async () => {
    const audit = await admin.listAudit({ limit: 100 });
    expect(audit.items.some((e) => e.action === 'jobs.update')).toBe(true);
    const text = JSON.stringify(audit.items);
    for (const plain of PLAINTEXTS) expect(text).not.toContain(plain);
  });

  it('kairos secrets rotate re-encrypts every secret with the first key; values still decrypt', async () => {
    await w.stop();
    await node.stop();
    // The new key first, the old one still there to decrypt.
    node = await start(`${K2},${K1}`);
    admin = new KairosClient({ url: node.url, token: 'admin-t' });
    expect(await cli('secrets', 'rotate')).toMatch(
      /secrets are under key k2: 1 jobs and 3 runs re-encrypted/,
    );
    const stored = rawRows('SELECT params FROM jobs UNION ALL SELECT params FROM runs')
      .map((row) => String(row.params))
      .filter((text) => text.includes('$kairos:secret'));
    expect(stored).toHaveLength(4);
    for (const text of stored) {
      expect(text).toContain('v1:k2:');
      expect(text).not.toContain('v1:k1:');
    }
    // Again: nothing left to do.
    expect((await admin.rotateSecrets()).rotated).toEqual({ jobs: 0, runs: 0 });

    // The old key removed: every secret still decrypts for the worker.
    await node.stop();
    node = await start(K2);
    admin = new KairosClient({ url: node.url, token: 'admin-t' });
    ({ worker: w, received } = await worker(node));
    const run = await admin.triggerJob('charge');
    const params = await waitFor(async () => received.get(run.id), 60_000, 'the handler to run');
    expect(params.apiKey).toBe(API_KEY);
    await w.stop();
  });

  it('without a key, a secret is refused with SECRET_KEY_MISSING and nothing is written', async () => {
    const bare = await start(undefined, tempDir());
    const client = new KairosClient({ url: bare.url, token: 'admin-t' });
    const error = await apiError(client.createJob(spec));
    expect(error.status).toBe(422);
    expect(error.code).toBe('SECRET_KEY_MISSING');
    expect((await apiError(client.getJob('charge'))).code).toBe('JOB_NOT_FOUND');
    // A job without secrets is fine; a trigger that marks a field secret is refused, no run queued.
    await client.createJob({ name: 'plain', handler: 'h', trigger: { kind: 'manual' } });
    const refused = await apiError(client.triggerJob('plain', { params: { a: 'b' }, secretParams: ['a'] }));
    expect(refused.code).toBe('SECRET_KEY_MISSING');
    expect((await client.listRuns()).items).toHaveLength(0);
    expect((await apiError(client.rotateSecrets())).code).toBe('SECRET_KEY_MISSING');
  });

  it('a run whose secret names a key no node has fails at its claim, not retried', async () => {
    const dir = tempDir();
    const before = await start(key('gone'), dir);
    await new KairosClient({ url: before.url, token: 'admin-t' }).createJob({
      ...spec,
      retry: { maxAttempts: 3 },
    });
    await before.stop();
    const after = await start(K2, dir);
    const client = new KairosClient({ url: after.url, token: 'admin-t' });
    const { worker: lost, received: got } = await worker(after);
    const run = await client.triggerJob('charge');
    const ended = await waitFor(
      async () => {
        const r = await client.getRun(run.id);
        return r.status === 'failed' ? r : undefined;
      },
      60_000,
      'the run to fail',
    );
    expect(ended.error?.name).toBe('SecretKeyUnknown');
    expect(ended.attempt).toBe(1);
    expect(got.size).toBe(0);
    await lost.stop();
  });

  it('the node log (debug level) holds no plaintext, after all of the above', () => {
    const log = logs.join('');
    expect(log).toContain('secret params rotated');
    for (const plain of PLAINTEXTS) expect(log).not.toContain(plain);
  });

  it('answers headers too large in the house shape (431 HEADERS_TOO_LARGE)', async () => {
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(
        `${node.url}/v1/health`,
        { headers: { 'x-big': 'a'.repeat(64 * 1024) } },
        (res) => {
          let text = '';
          res.on('data', (chunk) => {
            text += chunk;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(431);
    expect(JSON.parse(text)).toEqual({
      error: { code: 'HEADERS_TOO_LARGE', message: expect.stringContaining('headers') },
    });
  });
});

/** The same on a node over PostgreSQL: raw rows, the worker's values, idempotent repeats, rotation. */
describe('secret params on PostgreSQL', async () => {
  const schema = testSchema('kairos_secrets');
  const databaseUrl = `${testDatabaseUrl()}?schema=${schema}`;
  const started: KairosNode[] = [];
  afterAll(async () => {
    for (const node of started) await node.stop();
    await dropTestSchemas();
  });
  async function start(secretKeys: string): Promise<KairosNode> {
    const config = resolveConfig(
      {
        port: 0,
        dataDir: tempDir(),
        databaseUrl,
        adminToken: 'admin-t',
        workerToken: 'worker-t',
        secretKeys,
      },
      {},
    );
    const node = await startNode(config, { logger: pino({ level: 'silent' }) });
    started.push(node);
    return node;
  }
  async function rawParams(): Promise<string[]> {
    const client = new pg.Client({ connectionString: testDatabaseUrl() });
    await client.connect();
    try {
      const { rows } = await client.query<{ params: string }>(
        `SELECT params::text AS params FROM "${schema}".jobs UNION ALL SELECT params::text FROM "${schema}".runs`,
      );
      return rows.map((row) => row.params);
    } finally {
      await client.end();
    }
  }

  it('stores only envelopes, hands the handler plain values, answers a repeat with its run, rotates', async () => {
    let node = await start(K1);
    let admin = new KairosClient({ url: node.url, token: 'admin-t' });
    await admin.createJob({
      name: 'charge',
      handler: 'charge',
      trigger: { kind: 'manual' },
      params: { apiKey: API_KEY, region: 'eu' },
      secretParams: ['apiKey'],
    });
    const received = new Map<number, JsonObject>();
    const w = testWorker(node, 'default').handle('charge', async (ctx) => {
      received.set(ctx.runId, ctx.params);
    });
    await w.start();
    const request = {
      params: { apiKey: '***', other: RUN_SECRET },
      secretParams: ['other'],
      idempotencyKey: 'k',
    };
    const run = await admin.triggerJob('charge', request);
    expect((await admin.triggerJob('charge', request)).id).toBe(run.id);
    expect(await waitFor(async () => received.get(run.id), 60_000, 'the handler to run')).toEqual({
      apiKey: API_KEY,
      other: RUN_SECRET,
    });
    expect((await admin.getRun(run.id)).params).toEqual({ apiKey: '***', other: '***' });
    const before = await rawParams();
    expect(before).toHaveLength(2);
    for (const text of before) {
      for (const plain of PLAINTEXTS) expect(text).not.toContain(plain);
      expect(text).toContain('v1:k1:');
    }
    await w.stop();
    await node.stop();

    node = await start(`${K2},${K1}`);
    admin = new KairosClient({ url: node.url, token: 'admin-t' });
    expect(await admin.rotateSecrets()).toEqual({
      keyId: 'k2',
      rotated: { jobs: 1, runs: 1 },
      unreadable: { jobs: 0, runs: 0 },
    });
    for (const text of await rawParams()) {
      expect(text).toContain('v1:k2:');
      expect(text).not.toContain('v1:k1:');
    }
  });
});

/** Inputs from outside that reach the secret code: answered in the house shape, never a 500. */
describe('secret params from untrusted input', async () => {
  const started: KairosNode[] = [];
  afterAll(async () => {
    for (const node of started) await node.stop();
  });
  const config = resolveConfig(
    { port: 0, dataDir: tempDir(), adminToken: 'admin-t', workerToken: 'worker-t', secretKeys: K1 },
    {},
  );
  const node = await startNode(config, { logger: pino({ level: 'silent' }) });
  started.push(node);
  const admin = new KairosClient({ url: node.url, token: 'admin-t' });

  it('a secret path named like a property every object inherits (constructor, toString) is only a key', async () => {
    const job = await admin.createJob({
      name: 'inherited',
      handler: 'h',
      trigger: { kind: 'manual' },
      params: { region: 'eu', nested: {} },
      secretParams: ['constructor', 'nested.toString'],
    });
    expect(job.params).toEqual({ region: 'eu', nested: {} });
    const run = await admin.triggerJob('inherited', {
      params: { toString: RUN_SECRET },
      secretParams: ['toString', 'hasOwnProperty'],
    });
    expect(run.params).toEqual({ toString: '***' });
  });

  it('a routing key that holds a secret field is refused too: it would hash a new ciphertext each time', async () => {
    const routing = { strategy: 'consistent-hash' as const, key: 'tenant' };
    const job = { name: 'routed', handler: 'h', trigger: { kind: 'manual' as const }, routing };
    const refused = await apiError(admin.createJob({ ...job, secretParams: ['tenant.token'] }));
    expect(refused.code).toBe('INVALID_ROUTING');
    await admin.createJob(job);
    const trigger = await apiError(
      admin.triggerJob('routed', {
        params: { tenant: { id: 'a', token: 't' } },
        secretParams: ['tenant.token'],
      }),
    );
    expect(trigger.code).toBe('INVALID_ROUTING');
  });

  it("an envelope-shaped object in a parent's result fails its dependent run, not every poll", {
    timeout: 120_000,
  }, async () => {
    await admin.createJob({ name: 'forger', handler: 'forge', trigger: { kind: 'manual' } });
    await admin.createJob({
      name: 'dependent',
      handler: 'follow',
      trigger: { kind: 'after', job: 'forger' },
      timeout: '10m',
    });
    const followed: number[] = [];
    const w = testWorker(node, 'default')
      .handle('forge', async () => ({ copy: { '$kairos:secret': 'v1:k1:AAAA:AA' } }))
      .handle('follow', async (ctx) => {
        followed.push(ctx.runId);
      });
    await w.start();
    try {
      await admin.triggerJob('forger');
      const child = await waitFor(
        async () => {
          const runs = await admin.listRuns({ job: 'dependent' });
          const run = runs.items[0];
          return run && (run.status === 'failed' || run.status === 'succeeded') ? run : undefined;
        },
        60_000,
        'the dependent run to end',
      );
      expect(child.status).toBe('failed');
      expect((await admin.getRun(child.id)).error?.name).toBe('SecretKeyUnknown');
      expect(followed).toEqual([]);
    } finally {
      await w.stop();
    }
  });
});

/** A run retried while the secrets are rotated: the new run's copy is under the new key. */
describe('secret params of a retried run during a rotation', async () => {
  const dir = tempDir();
  const nodeConfig = (secretKeys: string) =>
    resolveConfig({ port: 0, dataDir: dir, adminToken: 'admin-t', workerToken: 'worker-t', secretKeys }, {});
  const first = await startNode(nodeConfig(K1), { logger: pino({ level: 'silent' }) });
  const before = new KairosClient({ url: first.url, token: 'admin-t' });
  await before.createJob({
    name: 'charge',
    handler: 'charge',
    trigger: { kind: 'manual' },
    params: { apiKey: API_KEY },
    secretParams: ['apiKey'],
  });
  const queued = await before.triggerJob('charge');
  await first.stop();

  // The node's store, with a rotation run once right after the retry read the run it copies.
  const store = new SqliteStore(join(dir, 'kairos.db'));
  const ring = new SecretKeyring(parseSecretKeys(`${K2},${K1}`, 'test'));
  let rotateAfterRead = false;
  const racing = new Proxy(store, {
    get(target, key, receiver) {
      if (key !== 'getRun') return Reflect.get(target, key, receiver);
      return async (id: number) => {
        const run = await target.getRun(id);
        if (rotateAfterRead) {
          rotateAfterRead = false;
          await rotateSecrets(target, ring);
        }
        return run;
      };
    },
  }) as Store;
  const node = await startNode(nodeConfig(`${K2},${K1}`), {
    logger: pino({ level: 'silent' }),
    store: racing,
  });
  afterAll(async () => {
    await node.stop();
    await store.close().catch(() => undefined);
  });

  it('writes the copy under the first key, never back under the old one', async () => {
    const admin = new KairosClient({ url: node.url, token: 'admin-t' });
    rotateAfterRead = true;
    const retried = await admin.retryRun(queued.id);
    const row = (await store.getRun(retried.id))!;
    const envelope = (row.params.apiKey as Record<string, string>)['$kairos:secret']!;
    expect(envelope.startsWith('v1:k2:')).toBe(true);
    expect(new SecretKeyring(parseSecretKeys(K2, 'test')).open(row.params)).toEqual({ apiKey: API_KEY });
  });
});

/** `kairos secrets rotate` exits 1 when secrets are left unreadable, with --json too. */
describe('kairos secrets rotate with unreadable secrets', async () => {
  const dir = tempDir();
  const nodeConfig = (secretKeys: string) =>
    resolveConfig({ port: 0, dataDir: dir, adminToken: 'admin-t', workerToken: 'worker-t', secretKeys }, {});
  const gone = await startNode(nodeConfig(key('gone')), { logger: pino({ level: 'silent' }) });
  await new KairosClient({ url: gone.url, token: 'admin-t' }).createJob({
    name: 'charge',
    handler: 'charge',
    trigger: { kind: 'manual' },
    params: { apiKey: API_KEY },
    secretParams: ['apiKey'],
  });
  await gone.stop();
  const node = await startNode(nodeConfig(K2), { logger: pino({ level: 'silent' }) });
  afterAll(() => node.stop());

  it.each([[[]], [['--json']]])('exits 1 (flags %j)', async (flags: string[]) => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const before = process.exitCode;
    try {
      await buildProgram().parseAsync([
        'node',
        'kairos',
        '--url',
        node.url,
        '--token',
        'admin-t',
        ...flags,
        'secrets',
        'rotate',
      ]);
      expect(process.exitCode).toBe(1);
    } finally {
      process.exitCode = before;
      log.mockRestore();
    }
  });
});
