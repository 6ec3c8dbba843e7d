import type { KairosClient } from '@kairos/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KairosNode } from '../src/node.ts';
import { startTestNode } from './helpers.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

/**
 * Reproductions of what hostile testing of the API found (issue 15): each answered a 500, stored
 * junk, or let one worker act for another. Every case must answer a 4xx in the house shape
 * (`{ error: { code, message } }`) and change nothing.
 */

let node: KairosNode;
let admin: KairosClient;
let workerClient: KairosClient;

beforeAll(async () => {
  ({ node, admin, workerClient } = await startTestNode());
});

interface Answer {
  status: number;
  body: { error?: { code: string; message: string; details?: unknown } } & Record<string, unknown>;
  bytes: number;
}

async function call(
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; token?: string; contentType?: string } = {},
): Promise<Answer> {
  const raw = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const response = await fetch(`${node.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${options.token ?? 'admin-t'}`,
      ...(raw === undefined ? {} : { 'content-type': options.contentType ?? 'application/json' }),
    },
    body: raw,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : {}, bytes: Buffer.byteLength(text) };
}

/** The house error shape with this status and code. */
function refused(answer: Answer, status: number, code: string): void {
  expect({ status: answer.status, code: answer.body.error?.code }).toEqual({ status, code });
  expect(typeof answer.body.error?.message).toBe('string');
  expect(Object.keys(answer.body)).toEqual(['error']);
}

async function jobNames(): Promise<string[]> {
  return (await admin.listJobs({ limit: 500 })).items.map((job) => job.name);
}

describe('a worker acts only on the attempts it holds', () => {
  it("another worker's report is refused with ATTEMPT_NOT_HELD and the run runs on", async () => {
    await admin.createJob({ name: 'held', handler: 'held-h', trigger: { kind: 'manual' } });
    const run = await admin.triggerJob('held');
    const holder = await workerClient.register({ group: 'default', handlers: ['held-h'], capacity: 1 });
    const peer = await workerClient.register({ group: 'default', handlers: ['held-h'], capacity: 1 });
    const { runs } = await workerClient.poll(holder.workerId, { max: 1, waitMs: 0 });
    expect(runs).toMatchObject([{ runId: run.id, attempt: 1 }]);

    for (const outcome of ['succeeded', 'failed'] as const) {
      const answer = await call('POST', `/v1/worker/${peer.workerId}/report`, {
        token: 'worker-t',
        body: {
          reports: [
            outcome === 'succeeded'
              ? { runId: run.id, attempt: 1, outcome, result: { forged: true } }
              : { runId: run.id, attempt: 1, outcome, error: { name: 'Forged', message: 'x' } },
          ],
        },
      });
      refused(answer, 409, 'ATTEMPT_NOT_HELD');
      expect(answer.body.error?.details).toEqual({
        results: [{ runId: run.id, attempt: 1, ok: false, code: 'ATTEMPT_NOT_HELD' }],
      });
    }
    // Nor does the report apply when it rides with the peer's poll: the poll is answered, the report refused.
    const withPoll = await call('POST', `/v1/worker/${peer.workerId}/poll`, {
      token: 'worker-t',
      body: {
        max: 1,
        waitMs: 0,
        reports: [{ runId: run.id, attempt: 1, outcome: 'succeeded', result: { forged: true } }],
      },
    });
    expect(withPoll).toMatchObject({
      status: 200,
      body: { runs: [], results: [{ runId: run.id, attempt: 1, ok: false, code: 'ATTEMPT_NOT_HELD' }] },
    });
    expect(await admin.getRun(run.id)).toMatchObject({
      status: 'running',
      attempt: 1,
      workerId: holder.workerId,
      attempts: [{ status: 'running' }],
    });
    // The peer's heartbeat listing the attempt is told to drop it; the holder's lease is its own.
    expect(
      await workerClient.heartbeat(peer.workerId, { running: [{ runId: run.id, attempt: 1 }] }),
    ).toMatchObject({
      cancel: [{ runId: run.id, attempt: 1 }],
    });
    // The peer's log lines for it are not kept.
    const logs = await workerClient.sendLogs(peer.workerId, {
      logs: [{ runId: run.id, attempt: 1, level: 'info', message: 'forged', time: new Date().toISOString() }],
    });
    expect(logs.accepted).toBe(0);
    const progress = await workerClient.sendLogs(peer.workerId, {
      logs: [],
      progress: [{ runId: run.id, attempt: 1, value: 0.9, message: 'forged' }],
    });
    expect(progress.accepted).toBe(0);
    const page = await admin.runLogs(run.id);
    expect(page.items).toEqual([]);
    expect(page.progress).toBeNull();

    const own = await workerClient.poll(holder.workerId, {
      max: 1,
      waitMs: 0,
      reports: [{ runId: run.id, attempt: 1, outcome: 'succeeded', result: { ok: 1 } }],
    });
    expect(own).toEqual({
      runs: [],
      results: [{ runId: run.id, attempt: 1, ok: true }],
      nodeClock: expect.any(Object),
    });
    expect(await admin.getRun(run.id)).toMatchObject({ status: 'succeeded', result: { ok: 1 } });
    // Sent again (its answer lost), the report is stale and changes nothing.
    const again = await workerClient.report(holder.workerId, {
      reports: [{ runId: run.id, attempt: 1, outcome: 'failed', error: { name: 'Late', message: 'x' } }],
    });
    expect(again.results).toEqual([{ runId: run.id, attempt: 1, ok: false, code: 'ATTEMPT_STALE' }]);
    expect(await admin.getRun(run.id)).toMatchObject({ status: 'succeeded', result: { ok: 1 } });
  });

  it('a poll carrying an invalid report is refused whole: nothing ended, nothing claimed', async () => {
    await admin.createJob({ name: 'whole', handler: 'whole-h', trigger: { kind: 'manual' } });
    const first = await admin.triggerJob('whole');
    const worker = await workerClient.register({ group: 'default', handlers: ['whole-h'], capacity: 2 });
    expect((await workerClient.poll(worker.workerId, { max: 1, waitMs: 0 })).runs).toMatchObject([
      { runId: first.id },
    ]);
    const second = await admin.triggerJob('whole');
    const answer = await call('POST', `/v1/worker/${worker.workerId}/poll`, {
      token: 'worker-t',
      body: {
        max: 1,
        waitMs: 0,
        reports: [
          { runId: first.id, attempt: 1, outcome: 'succeeded' },
          { runId: first.id, attempt: 1, outcome: 'failed', error: { name: 'E'.repeat(201), message: 'x' } },
        ],
      },
    });
    refused(answer, 400, 'VALIDATION_FAILED');
    expect(await admin.getRun(first.id)).toMatchObject({ status: 'running', workerId: worker.workerId });
    expect(await admin.getRun(second.id)).toMatchObject({ status: 'queued' });
  });

  it('a worker token scoped to groups cannot act for a worker or run of another group', async () => {
    const scoped = await admin.createToken({ name: 'scoped-a', role: 'worker', groups: ['team-a'] });
    await admin.createJob({ name: 'in-b', group: 'team-b', handler: 'b-h', trigger: { kind: 'manual' } });
    const run = await admin.triggerJob('in-b');
    const other = await workerClient.register({ group: 'team-b', handlers: ['b-h'], capacity: 1 });
    await workerClient.poll(other.workerId, { max: 1, waitMs: 0 });
    const mine = await call('POST', '/v1/worker/register', {
      token: scoped.token,
      body: { group: 'team-a', handlers: ['b-h'], capacity: 1 },
    });
    expect(mine.status).toBe(200);
    const mineId = mine.body.workerId as string;
    refused(
      await call('POST', '/v1/worker/register', {
        token: scoped.token,
        body: { group: 'team-b', handlers: ['b-h'], capacity: 1 },
      }),
      403,
      'GROUP_FORBIDDEN',
    );
    for (const path of ['heartbeat', 'poll', 'report', 'logs', 'unregister']) {
      const body =
        path === 'report'
          ? { reports: [{ runId: run.id, attempt: 1, outcome: 'succeeded' }] }
          : path === 'heartbeat'
            ? { running: [] }
            : path === 'poll'
              ? { max: 1, waitMs: 0 }
              : path === 'logs'
                ? { logs: [] }
                : {};
      refused(
        await call('POST', `/v1/worker/${other.workerId}/${path}`, { token: scoped.token, body }),
        403,
        'GROUP_FORBIDDEN',
      );
    }
    // Its own worker naming a run of the other group, alone or with a poll.
    refused(
      await call('POST', `/v1/worker/${mineId}/report`, {
        token: scoped.token,
        body: { reports: [{ runId: run.id, attempt: 1, outcome: 'succeeded' }] },
      }),
      403,
      'GROUP_FORBIDDEN',
    );
    refused(
      await call('POST', `/v1/worker/${mineId}/poll`, {
        token: scoped.token,
        body: { max: 1, waitMs: 0, reports: [{ runId: run.id, attempt: 1, outcome: 'succeeded' }] },
      }),
      403,
      'GROUP_FORBIDDEN',
    );
    expect(await admin.getRun(run.id)).toMatchObject({ status: 'running', workerId: other.workerId });
  });
});

describe('a worker is driven only with the token that registered it', () => {
  it('another worker token gets WORKER_FORBIDDEN on every worker call; the admin token may act', async () => {
    const own = await admin.createToken({ name: 'own-w', role: 'worker' });
    const other = await admin.createToken({ name: 'other-w', role: 'worker' });
    await admin.createJob({ name: 'bound', handler: 'bound-h', trigger: { kind: 'manual' } });
    const run = await admin.triggerJob('bound');
    const registered = await call('POST', '/v1/worker/register', {
      token: own.token,
      body: { group: 'default', handlers: ['bound-h'], capacity: 1 },
    });
    const id = registered.body.workerId as string;
    const poll = await call('POST', `/v1/worker/${id}/poll`, {
      token: own.token,
      body: { max: 1, waitMs: 0 },
    });
    expect(poll.body.runs).toMatchObject([{ runId: run.id, attempt: 1 }]);
    const calls: Array<[string, unknown]> = [
      ['heartbeat', { running: [{ runId: run.id, attempt: 1 }] }],
      ['poll', { max: 1, waitMs: 0 }],
      ['report', { reports: [{ runId: run.id, attempt: 1, outcome: 'succeeded' }] }],
      ['logs', { logs: [], progress: [{ runId: run.id, attempt: 1, value: 0.5 }] }],
      ['unregister', {}],
    ];
    for (const token of [other.token, 'worker-t']) {
      for (const [path, body] of calls) {
        refused(await call('POST', `/v1/worker/${id}/${path}`, { token, body }), 403, 'WORKER_FORBIDDEN');
      }
    }
    expect(await admin.getRun(run.id)).toMatchObject({ status: 'running', workerId: id });
    expect((await admin.listWorkers()).items.find((w) => w.id === id)).toMatchObject({ status: 'active' });
    const heartbeat = await call('POST', `/v1/worker/${id}/heartbeat`, {
      token: 'admin-t',
      body: { running: [{ runId: run.id, attempt: 1 }] },
    });
    expect(heartbeat.status).toBe(200);
    const report = await call('POST', `/v1/worker/${id}/report`, {
      token: own.token,
      body: { reports: [{ runId: run.id, attempt: 1, outcome: 'succeeded' }] },
    });
    expect(report.status).toBe(200);
  });
});

describe('JSON nested too deep', () => {
  const deep = (levels: number) => `${'['.repeat(levels)}1${']'.repeat(levels)}`;

  it('params 10,000 levels deep on create or trigger answer 400 JSON_TOO_DEEP and store nothing', async () => {
    const create = await call('POST', '/v1/jobs', {
      raw: `{"name":"deep","handler":"h","trigger":{"kind":"manual"},"params":{"a":${deep(10_000)}}}`,
    });
    refused(create, 400, 'JSON_TOO_DEEP');
    expect(await jobNames()).not.toContain('deep');

    await admin.createJob({ name: 'deep-trigger', handler: 'h', trigger: { kind: 'manual' } });
    refused(
      await call('POST', '/v1/jobs/deep-trigger/trigger', { raw: `{"params":{"a":${deep(10_000)}}}` }),
      400,
      'JSON_TOO_DEEP',
    );
    expect((await admin.listRuns({ job: 'deep-trigger' })).items).toEqual([]);
  });

  it('a depth within the bound is accepted', async () => {
    const answer = await call('POST', '/v1/jobs', {
      raw: `{"name":"deep-ok","handler":"h","trigger":{"kind":"manual"},"params":{"a":${deep(60)}}}`,
    });
    expect(answer.status).toBe(201);
    // Brackets inside strings are not nesting.
    const strings = await call('POST', '/v1/jobs', {
      body: { name: 'deep-str', handler: 'h', trigger: { kind: 'manual' }, params: { s: '['.repeat(5000) } },
    });
    expect(strings.status).toBe(201);
  });
});

describe('numeric query parameters are bounded integers', () => {
  beforeAll(async () => {
    await admin.createJob({ name: 'nums', handler: 'h', trigger: { kind: 'every', every: '1m' } });
    await admin.triggerJob('nums');
  });
  const paths = ['/v1/jobs', '/v1/runs', '/v1/audit', '/v1/jobs/nums/skipped', '/v1/runs/1/logs'];
  const values = [
    'Infinity',
    '-Infinity',
    '1e309',
    '1e3',
    '0x10',
    '%20%205',
    '1.5',
    'NaN',
    '',
    '99999999999999999999',
  ];
  it.each(paths)('%s?limit=<hostile> answers 400 VALIDATION_FAILED', async (path) => {
    for (const value of values)
      refused(await call('GET', `${path}?limit=${value}`), 400, 'VALIDATION_FAILED');
  });
  it('preview?count=Infinity and a path id of 1e309 answer 400', async () => {
    for (const value of ['Infinity', '1e309', '0']) {
      refused(await call('GET', `/v1/jobs/nums/preview?count=${value}`), 400, 'VALIDATION_FAILED');
    }
    refused(await call('GET', '/v1/runs/1e309'), 400, 'VALIDATION_FAILED');
    refused(await call('GET', '/v1/runs/Infinity'), 400, 'VALIDATION_FAILED');
    refused(await call('GET', '/v1/runs/1/logs?after=Infinity'), 400, 'VALIDATION_FAILED');
    expect((await call('GET', '/v1/jobs?limit=2')).status).toBe(200);
  });
});

describe('instants are strict RFC 3339 with an offset', () => {
  const bad = [
    '2024-02-30T00:00:00Z',
    '2023-02-29T00:00:00Z',
    '2030-04-31T00:00:00Z',
    '2030-01-01T24:00:00Z',
    '2030-01-01T23:60:00Z',
    '2030-01-01T23:59:60Z',
    '2030-13-01T00:00:00Z',
    '2030-01-01T10:00:00',
    '2030-01-01T10:00Z',
    '2030-01-01T10:00:00\u0000Z',
    '2030-01-01T10:00:00Z\u0000',
    '2030-01-01T10:00:00+25:00',
    '2030-01-01T10:00:00+0100',
    '+002030-01-01T10:00:00Z',
    '2030-01-01 10:00:00Z ',
  ];
  it.each(bad)('%j is refused as an at trigger and as a query instant', async (at) => {
    const answer = await call('POST', '/v1/jobs', {
      body: { name: 'at-bad', handler: 'h', trigger: { kind: 'at', at } },
    });
    // A NUL is refused before the instant is read (see 'a NUL anywhere in the input').
    refused(answer, 400, at.includes('\u0000') ? 'VALIDATION_FAILED' : 'INVALID_TRIGGER');
    expect(await jobNames()).not.toContain('at-bad');
    refused(await call('GET', `/v1/runs?since=${encodeURIComponent(at)}`), 400, 'VALIDATION_FAILED');
  });
  it('accepts offsets, fractions and leap days', async () => {
    for (const [i, at] of [
      '2028-02-29T10:00:00Z',
      '2030-01-01T10:00:00.123+02:00',
      '2030-01-01t10:00:00z',
    ].entries()) {
      const answer = await call('POST', '/v1/jobs', {
        body: { name: `at-ok-${i}`, handler: 'h', trigger: { kind: 'at', at } },
      });
      expect(answer.status).toBe(201);
    }
    expect((await admin.getJob('at-ok-1')).trigger).toEqual({ kind: 'at', at: '2030-01-01T08:00:00.123Z' });
  });
});

describe('worker registration is validated as jobs are', () => {
  const base = { group: 'default', handlers: ['h'], capacity: 1 };
  const cases: Array<[string, Record<string, unknown>]> = [
    ['a group with SQL in it', { ...base, group: "' OR 1=1--" }],
    ['a group with a space', { ...base, group: 'a b' }],
    ['a handler with a space', { ...base, handlers: ['a b'] }],
    ['an empty handler', { ...base, handlers: [''] }],
    ['a handler with a NUL', { ...base, handlers: ['a\u0000'] }],
    ['a label key with a space', { ...base, labels: { 'a b': 'x' } }],
    ['an empty label key', { ...base, labels: { '': 'x' } }],
    ['a label value with a control character', { ...base, labels: { a: 'x\ny' } }],
    [
      'too many labels',
      { ...base, labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) },
    ],
    ['a name with a control character', { ...base, name: 'w\u0007' }],
    ['a host with a NUL', { ...base, host: 'h\u0000' }],
  ];
  it.each(cases)('%s answers 400 and registers nothing', async (_label, body) => {
    const before = (await admin.listWorkers()).items.length;
    refused(await call('POST', '/v1/worker/register', { token: 'worker-t', body }), 400, 'VALIDATION_FAILED');
    expect((await admin.listWorkers()).items.length).toBe(before);
  });
  it('accepts what jobs accept', async () => {
    const answer = await call('POST', '/v1/worker/register', {
      token: 'worker-t',
      body: {
        ...base,
        group: 'team.a-1',
        handlers: ['mail:send/v2'],
        labels: { 'zone.a/b_c-d': 'eu west 1' },
      },
    });
    expect(answer.status).toBe(200);
  });
});

describe('API tokens are named as groups are, and scoped to real group names', () => {
  it.each([
    ['a name with a control character', { name: 'ci\u0000', role: 'operator' }],
    ['a name with a space', { name: 'my token', role: 'operator' }],
    ['a group with SQL in it', { name: 'w-sql', role: 'worker', groups: ["' OR 1=1--"] }],
    ['a group with a space', { name: 'w-space', role: 'worker', groups: ['a b'] }],
  ])('%s answers 400 and creates nothing', async (_label, body) => {
    const before = (await admin.listTokens()).items.length;
    refused(await call('POST', '/v1/tokens', { body }), 400, 'VALIDATION_FAILED');
    expect((await admin.listTokens()).items.length).toBe(before);
  });
});

describe.each(['sqlite', 'postgres'] as const)(
  'a NUL or a lone surrogate anywhere in the input, on %s',
  (dialect) => {
    let url: string;
    beforeAll(async () => {
      const options =
        dialect === 'postgres'
          ? { databaseUrl: `${testDatabaseUrl()}?schema=${testSchema('kairos_nul')}` }
          : {};
      ({
        node: { url },
      } = await startTestNode({}, options));
      await fetch(`${url}/v1/jobs`, {
        method: 'POST',
        headers: { authorization: 'Bearer admin-t', 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'nul', handler: 'h', trigger: { kind: 'manual' } }),
      });
    });
    afterAll(() => dropTestSchemas());

    const send = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: {
          authorization: 'Bearer admin-t',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : {}, bytes: text.length } as Answer;
    };

    it.each([
      ['GET', '/v1/jobs/a%00b'],
      ['DELETE', '/v1/jobs/%00'],
      ['POST', '/v1/jobs/a%00b/pause'],
      ['GET', '/v1/calendars/a%00b'],
      ['DELETE', '/v1/users/%00'],
      ['POST', '/v1/workers/a%00b/drain'],
      ['POST', '/v1/worker/a%00b/unregister'],
      ['GET', '/v1/runs?worker=a%00b'],
      ['GET', '/v1/jobs?group=a%00b'],
    ])('%s %s answers 400 VALIDATION_FAILED', async (method, path) => {
      refused(
        await send(method, path, method === 'GET' || method === 'DELETE' ? undefined : {}),
        400,
        'VALIDATION_FAILED',
      );
    });

    it('run ids and attempt numbers past what the store holds answer 400 on every worker call', async () => {
      const registered = await fetch(`${url}/v1/worker/register`, {
        method: 'POST',
        headers: { authorization: 'Bearer worker-t', 'content-type': 'application/json' },
        body: JSON.stringify({ group: 'default', handlers: ['h'], capacity: 1 }),
      });
      const { workerId } = (await registered.json()) as { workerId: string };
      // The API fuzz found the first: a run id of 1.7e87 in a progress entry answered 500 on PostgreSQL.
      for (const ref of [
        { runId: 1.7190854925426264e87, attempt: 1 },
        { runId: 2 ** 53, attempt: 1 },
        { runId: 1, attempt: 2 ** 31 },
      ]) {
        const calls: Array<[string, unknown]> = [
          ['logs', { logs: [], progress: [{ ...ref, value: 0 }] }],
          ['logs', { logs: [{ ...ref, level: 'info', message: 'm', time: '2026-12-05T10:00:00Z' }] }],
          ['heartbeat', { running: [ref] }],
          ['report', { reports: [{ ...ref, outcome: 'succeeded' }] }],
        ];
        for (const [path, body] of calls) {
          const response = await fetch(`${url}/v1/worker/${workerId}/${path}`, {
            method: 'POST',
            headers: { authorization: 'Bearer worker-t', 'content-type': 'application/json' },
            body: JSON.stringify(body),
          });
          const text = await response.text();
          refused(
            { status: response.status, body: JSON.parse(text), bytes: text.length },
            400,
            'VALIDATION_FAILED',
          );
        }
      }
    });

    it.each([
      ['POST', '/v1/auth/login', { name: 'a\u0000b', password: 'whatever-password' }],
      [
        'POST',
        '/v1/jobs',
        { name: 'nul-2', handler: 'h', trigger: { kind: 'manual' }, description: 'a\u0000' },
      ],
      [
        'POST',
        '/v1/jobs',
        { name: 'nul-3', handler: 'h', trigger: { kind: 'manual' }, params: { a: 'b\u0000' } },
      ],
      [
        'POST',
        '/v1/jobs',
        { name: 'nul-4', handler: 'h', trigger: { kind: 'manual' }, params: { 'a\u0000': 1 } },
      ],
      ['POST', '/v1/jobs/nul/trigger', { params: { deep: [{ x: ['\u0000'] }] } }],
      // A lone surrogate is not Unicode: PostgreSQL's jsonb refused it (a 500), SQLite kept it.
      [
        'POST',
        '/v1/jobs',
        { name: 'lone-1', handler: 'h', trigger: { kind: 'manual' }, params: { a: 'x\ud800y' } },
      ],
      [
        'POST',
        '/v1/jobs',
        { name: 'lone-2', handler: 'h', trigger: { kind: 'manual' }, params: { '\udc00': 1 } },
      ],
      [
        'POST',
        '/v1/jobs',
        { name: 'lone-3', handler: 'h', trigger: { kind: 'manual' }, description: 'cut \ud83d' },
      ],
      ['POST', '/v1/jobs/nul/trigger', { params: { deep: [{ x: ['\ude00\ud83d'] }] } }],
    ])(
      '%s %s with a NUL or a lone surrogate in the body answers 400 VALIDATION_FAILED and stores nothing',
      async (method, path, body) => {
        refused(await send(method, path, body), 400, 'VALIDATION_FAILED');
        const jobs = (await send('GET', '/v1/jobs')).body.items as Array<{ name: string }>;
        expect(jobs.map((job) => job.name)).toEqual(['nul']);
        expect((await send('GET', '/v1/runs')).body.items).toEqual([]);
      },
    );

    it("a worker's report and log lines keep a NUL as U+FFFD: a handler's output is not refused", async () => {
      await send('POST', '/v1/jobs', { name: 'nul-run', handler: 'nul-h', trigger: { kind: 'manual' } });
      const run = (await send('POST', '/v1/jobs/nul-run/trigger', {})).body as unknown as { id: number };
      const worker = async (path: string, body: unknown) => {
        const response = await fetch(`${url}/v1/worker/${path}`, {
          method: 'POST',
          headers: { authorization: 'Bearer worker-t', 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return { status: response.status, body: (await response.json()) as Record<string, unknown> };
      };
      const { workerId } = (await worker('register', { group: 'default', handlers: ['nul-h'], capacity: 1 }))
        .body as { workerId: string };
      expect((await worker(`${workerId}/poll`, { max: 1, waitMs: 0 })).body.runs).toMatchObject([
        { runId: run.id },
      ]);
      const logs = await worker(`${workerId}/logs`, {
        logs: [
          {
            runId: run.id,
            attempt: 1,
            level: 'info',
            message: 'out\u0000put',
            time: new Date().toISOString(),
          },
        ],
      });
      expect(logs).toMatchObject({ status: 200, body: { accepted: 1 } });
      const report = await worker(`${workerId}/report`, {
        reports: [
          {
            runId: run.id,
            attempt: 1,
            outcome: 'failed',
            error: { name: 'E', message: 'bad\u0000byte' },
            retryable: false,
          },
        ],
      });
      expect(report.status).toBe(200);
      const ended = (await send('GET', `/v1/runs/${run.id}`)).body as unknown as {
        status: string;
        error: { message: string };
      };
      expect(ended).toMatchObject({ status: 'failed', error: { message: 'bad\ufffdbyte' } });
      // The same with a poll that carries the report, and a lone surrogate (text cut inside an emoji).
      const second = (await send('POST', '/v1/jobs/nul-run/trigger', {})).body as unknown as { id: number };
      expect((await worker(`${workerId}/poll`, { max: 1, waitMs: 0 })).body.runs).toMatchObject([
        { runId: second.id },
      ]);
      const carried = await worker(`${workerId}/poll`, {
        max: 1,
        waitMs: 0,
        reports: [
          {
            runId: second.id,
            attempt: 1,
            outcome: 'succeeded',
            result: { text: 'cut \ud83d', nul: 'a\u0000', ok: '\ud83d\ude00' },
          },
        ],
      });
      expect(carried).toMatchObject({ status: 200, body: { results: [{ runId: second.id, ok: true }] } });
      expect((await send('GET', `/v1/runs/${second.id}`)).body).toMatchObject({
        status: 'succeeded',
        result: { text: 'cut \ufffd', nul: 'a\ufffd', ok: '\ud83d\ude00' },
      });
      const lines = (await send('GET', `/v1/runs/${run.id}/logs`)).body as unknown as {
        items: Array<{ message: string }>;
      };
      expect(lines.items.map((line) => line.message)).toEqual(['out\ufffdput']);
    });

    it('a backslash followed by u0000 in a string is text, not a NUL; a surrogate pair is a character', async () => {
      const answer = await send('POST', '/v1/jobs', {
        name: 'nul-text',
        handler: 'h',
        trigger: { kind: 'manual' },
        params: { path: 'C:\\u0000', also: '\\ud800', emoji: '\ud83d\ude00' },
      });
      expect(answer.status).toBe(201);
      expect(answer.body.params).toEqual({ path: 'C:\\u0000', also: '\\ud800', emoji: '\ud83d\ude00' });
      await send('DELETE', '/v1/jobs/nul-text');
    });
  },
);

describe('cursors', () => {
  it('a cursor that no page answered is INVALID_CURSOR on jobs, runs, audit and skipped', async () => {
    await admin.createJob({ name: 'cur', handler: 'h', trigger: { kind: 'manual' } });
    for (const cursor of ['zzz zz', "'--", '-1', 'a/b']) {
      refused(await call('GET', `/v1/jobs?cursor=${cursor}`), 400, 'INVALID_CURSOR');
    }
    for (const path of ['/v1/runs', '/v1/audit', '/v1/jobs/cur/skipped']) {
      for (const cursor of ['99999999999999999999', '9223372036854775808', '1e3', '0', 'abc', '1.5']) {
        refused(await call('GET', `${path}?cursor=${cursor}`), 400, 'INVALID_CURSOR');
      }
    }
    expect((await call('GET', '/v1/jobs?cursor=cur')).status).toBe(200);
    expect((await call('GET', '/v1/runs?cursor=9007199254740991')).status).toBe(200);
  });
});

describe('cron, HTTP tasks and framework errors', () => {
  it.each(['?/5 * * * *', '+1 * * * *', '0 ?/5 * * * *', '* * * * +1', '? * * * *', '0 0 ? * +MON'])(
    'cron %j answers INVALID_CRON',
    async (cron) => {
      refused(
        await call('POST', '/v1/jobs', {
          body: { name: 'cron-bad', handler: 'h', trigger: { kind: 'cron', cron } },
        }),
        400,
        'INVALID_CRON',
      );
      expect(await jobNames()).not.toContain('cron-bad');
    },
  );

  it('a NUL in a header and CRLF in the URL of an HTTP task answer INVALID_TASK', async () => {
    const tasks = [
      { kind: 'http', url: 'http://example.test/\r\nX-Injected: 1' },
      { kind: 'http', url: 'http://example.test/a b' },
      { kind: 'http', url: 'http://example.test/', headers: { a: 'b\u0001c' } },
      { kind: 'http', url: 'http://example.test/', headers: { a: 'b\r\nX-Injected: 1' } },
      { kind: 'http', url: 'http://example.test/', headers: { 'a b': 'c' } },
    ];
    for (const task of tasks) {
      refused(
        await call('POST', '/v1/jobs', { body: { name: 'http-bad', task, trigger: { kind: 'manual' } } }),
        400,
        'INVALID_TASK',
      );
    }
    // A NUL is refused before the task is read (see 'a NUL anywhere in the input').
    const nul = { kind: 'http', url: 'http://example.test/', headers: { a: 'b\u0000c' } };
    refused(
      await call('POST', '/v1/jobs', { body: { name: 'http-bad', task: nul, trigger: { kind: 'manual' } } }),
      400,
      'VALIDATION_FAILED',
    );
    expect(await jobNames()).not.toContain('http-bad');
  });

  it('framework errors answer in the house shape', async () => {
    refused(await call('GET', '/v1/jobs/%ff'), 400, 'INVALID_URL');
    refused(await call('GET', '/v1/%ff'), 400, 'INVALID_URL');
    refused(await call('POST', '/v1/jobs', { raw: '{"name":' }), 400, 'INVALID_JSON');
    refused(
      await call('POST', '/v1/jobs', { raw: '<a/>', contentType: 'text/xml' }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    refused(await call('POST', '/v1/jobs', { raw: 'x'.repeat(2_000_000) }), 413, 'PAYLOAD_TOO_LARGE');
    refused(await call('GET', '/v1/nothing'), 404, 'NOT_FOUND');
    refused(await call('DELETE', '/v1/health'), 404, 'NOT_FOUND');
  });
});

describe('lists answer summaries within a size bound', () => {
  it('runs in a list carry no params or result; the run by id does', async () => {
    await admin.createJob({ name: 'big', handler: 'big-h', trigger: { kind: 'manual' } });
    const blob = 'x'.repeat(60_000);
    const runIds: number[] = [];
    for (let i = 0; i < 20; i++) runIds.push((await admin.triggerJob('big', { params: { blob } })).id);
    const page = await call('GET', '/v1/runs?job=big&limit=500');
    expect(page.status).toBe(200);
    const items = page.body.items as Array<Record<string, unknown>>;
    expect(items).toHaveLength(20);
    expect(items[0]).not.toHaveProperty('params');
    expect(items[0]).not.toHaveProperty('result');
    expect(page.bytes).toBeLessThan(50_000);
    expect((await admin.getRun(runIds[0]!)).params).toEqual({ blob });
  });

  it('with include=params a page of runs stops at the size bound and its cursor goes on', async () => {
    const first = await call('GET', '/v1/runs?job=big&limit=500&include=params');
    expect(first.status).toBe(200);
    expect(first.bytes).toBeLessThan(1_100_000);
    const items = first.body.items as Array<{ id: number; params: unknown }>;
    expect(items.length).toBeGreaterThan(0);
    expect(items.length).toBeLessThan(20);
    expect(items[0]!.params).toEqual({ blob: 'x'.repeat(60_000) });
    const next = await call(
      'GET',
      `/v1/runs?job=big&limit=500&include=params&cursor=${first.body.nextCursor}`,
    );
    expect((next.body.items as Array<{ id: number }>)[0]!.id).toBe(items[items.length - 1]!.id - 1);
    refused(await call('GET', '/v1/runs?include=everything'), 400, 'VALIDATION_FAILED');
  });

  it('a page of jobs stops at the size bound and its cursor goes on', async () => {
    const blob = 'y'.repeat(60_000);
    for (let i = 0; i < 20; i++) {
      await admin.createJob({
        name: `fat-${String(i).padStart(2, '0')}`,
        handler: 'h',
        trigger: { kind: 'manual' },
        params: { blob },
      });
    }
    let cursor: string | null = null;
    const seen: string[] = [];
    do {
      const page: Answer = await call('GET', `/v1/jobs?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.bytes).toBeLessThan(1_100_000);
      seen.push(...(page.body.items as Array<{ name: string }>).map((job) => job.name));
      cursor = page.body.nextCursor as string | null;
    } while (cursor);
    expect(seen.filter((name) => name.startsWith('fat-'))).toHaveLength(20);
  });
});
