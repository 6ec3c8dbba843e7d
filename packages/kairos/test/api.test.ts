import { KairosClient } from '@kairos/client';
import { beforeAll, describe, expect, it } from 'vitest';
import type { KairosNode } from '../src/node.ts';
import { apiError, startTestNode } from './helpers.ts';

let node: KairosNode;
let admin: KairosClient;
let workerClient: KairosClient;

beforeAll(async () => {
  ({ node, admin, workerClient } = await startTestNode());
});

describe('auth', () => {
  it('answers 401 without a token or with a wrong one, 403 for a worker token on the admin API', async () => {
    const anonymous = new KairosClient({ url: node.url });
    expect(await apiError(anonymous.listJobs())).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
    expect(await apiError(new KairosClient({ url: node.url, token: 'nope' }).listJobs())).toMatchObject({
      status: 401,
    });
    expect(await apiError(workerClient.listJobs())).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    expect(await apiError(anonymous.register({ group: 'g', handlers: [], capacity: 1 }))).toMatchObject({
      status: 401,
    });
    expect(await anonymous.health()).toMatchObject({ status: 'ok', store: 'sqlite' });
  });
});

describe('bad input gets a 4xx with a stable code and stores nothing', () => {
  const base = { name: 'bad', handler: 'h' };
  const cases: Array<[string, unknown, number, string]> = [
    ['invalid cron', { ...base, trigger: { kind: 'cron', cron: '61 * * * *' } }, 400, 'INVALID_CRON'],
    [
      'unknown time zone',
      { ...base, trigger: { kind: 'cron', cron: '* * * * *', timezone: 'Mars/Olympus' } },
      400,
      'INVALID_TIMEZONE',
    ],
    ['negative interval', { ...base, trigger: { kind: 'every', every: '-5s' } }, 400, 'INVALID_DURATION'],
    ['interval below 1s', { ...base, trigger: { kind: 'every', every: 10 } }, 400, 'INVALID_DURATION'],
    ['unknown field', { ...base, trigger: { kind: 'manual' }, colour: 'blue' }, 400, 'VALIDATION_FAILED'],
    [
      'unknown trigger field',
      { ...base, trigger: { kind: 'every', every: '1s', cron: '* * * * *' } },
      400,
      'INVALID_TRIGGER',
    ],
    ['unknown trigger kind', { ...base, trigger: { kind: 'sometimes' } }, 400, 'VALIDATION_FAILED'],
    ['missing handler', { name: 'bad', trigger: { kind: 'manual' } }, 400, 'VALIDATION_FAILED'],
    ['bad name', { ...base, name: 'no spaces', trigger: { kind: 'manual' } }, 400, 'VALIDATION_FAILED'],
    [
      'oversized params',
      { ...base, trigger: { kind: 'manual' }, params: { blob: 'x'.repeat(70_000) } },
      413,
      'PAYLOAD_TOO_LARGE',
    ],
    ['bad at', { ...base, trigger: { kind: 'at', at: 'tomorrow' } }, 400, 'INVALID_TRIGGER'],
    [
      'bad retry',
      { ...base, trigger: { kind: 'manual' }, retry: { maxAttempts: 0 } },
      400,
      'VALIDATION_FAILED',
    ],
  ];
  it.each(cases)('%s', async (_label, body, status, code) => {
    const error = await apiError(admin.request('POST', '/v1/jobs', body));
    expect(error).toMatchObject({ status, code });
    expect(error.message.length).toBeGreaterThan(5);
    expect((await admin.listJobs()).items.map((j) => j.name)).not.toContain('bad');
  });

  it('rejects a body that is not JSON, and unknown routes', async () => {
    const response = await fetch(`${node.url}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: 'Bearer admin-t', 'content-type': 'application/json' },
      body: '{"name":',
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('INVALID_JSON');
    expect(await apiError(admin.request('GET', '/v1/nothing'))).toMatchObject({
      status: 404,
      code: 'NOT_FOUND',
    });
  });
});

describe('jobs', () => {
  it('create, get, list, pause, resume, update, put, trigger and delete', async () => {
    const created = await admin.createJob({
      name: 'report',
      handler: 'send-report',
      trigger: { kind: 'cron', cron: '*/5 * * * * *', timezone: 'Asia/Shanghai' },
      params: { to: 'ops' },
    });
    expect(created).toMatchObject({ name: 'report', group: 'default', paused: false, timeout: 300_000 });
    expect(Date.parse(created.nextFireAt!) % 5000).toBe(0);
    expect(
      await apiError(admin.createJob({ name: 'report', handler: 'x', trigger: { kind: 'manual' } })),
    ).toMatchObject({
      status: 409,
      code: 'JOB_NAME_TAKEN',
    });
    expect((await admin.getJob('report')).params).toEqual({ to: 'ops' });
    expect((await admin.pauseJob('report')).nextFireAt).toBeNull();
    expect((await admin.resumeJob('report')).nextFireAt).not.toBeNull();
    const patched = await admin.updateJob('report', { priority: 7, retry: { maxAttempts: 5 } });
    expect(patched).toMatchObject({ priority: 7, retry: { maxAttempts: 5, backoff: 'exponential' } });
    // PUT with the same schedule keeps the next fire time: safe to run on every deploy.
    const put = await admin.putJob({
      name: 'report',
      handler: 'send-report',
      trigger: patched.trigger,
      params: { to: 'all' },
    });
    expect(put.nextFireAt).toBe(patched.nextFireAt);
    expect(put.priority).toBe(0);

    const run = await admin.triggerJob('report', { params: { extra: true }, mergeParams: true });
    expect(run).toMatchObject({
      status: 'queued',
      cause: 'manual',
      params: { to: 'all', extra: true },
      jobName: 'report',
    });
    // Params given replace the job's; priority defaults to the job's; checked before anything is written.
    expect(await admin.triggerJob('report', { params: { only: 1 } })).toMatchObject({
      params: { only: 1 },
      priority: 0,
    });
    expect(
      await apiError(admin.triggerJob('report', { params: { blob: 'x'.repeat(70_000) } })),
    ).toMatchObject({
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
    });
    expect(await apiError(admin.triggerJob('no-such-job', {}))).toMatchObject({
      status: 404,
      code: 'JOB_NOT_FOUND',
    });
    const again = await admin.triggerJob('report', { idempotencyKey: 'once' });
    expect((await admin.triggerJob('report', { idempotencyKey: 'once' })).id).toBe(again.id);
    const batch = await admin.triggerJobBatch('report', [{}, {}, {}]);
    expect(batch.runIds).toHaveLength(3);

    const runs = await admin.listRuns({ job: 'report', status: 'queued', limit: 2 });
    expect(runs.items).toHaveLength(2);
    const rest = await admin.listRuns({
      job: 'report',
      status: 'queued',
      limit: 50,
      cursor: runs.nextCursor!,
    });
    // The six triggered above (a fire of the every-5-seconds schedule may have come meanwhile).
    expect([...runs.items, ...rest.items].filter((r) => r.cause !== 'schedule')).toHaveLength(6);
    expect(await apiError(admin.listRuns({ cursor: 'zzz' }))).toMatchObject({ code: 'INVALID_CURSOR' });

    const cancelled = await admin.cancelRun(run.id);
    expect(cancelled.status).toBe('cancelled');
    expect(await apiError(admin.cancelRun(run.id))).toMatchObject({ status: 409, code: 'RUN_FINISHED' });

    await admin.deleteJob('report');
    expect(await apiError(admin.getJob('report'))).toMatchObject({ status: 404, code: 'JOB_NOT_FOUND' });
    expect(await apiError(admin.getRun(run.id))).toMatchObject({ status: 404, code: 'RUN_NOT_FOUND' });
  });
});

describe('worker protocol', () => {
  it('keeps a report that came after the node ended its attempt; gives back a claim the worker never got', async () => {
    // One attempt only: a claim given back never ran its handler, so it does not fail the run.
    await admin.createJob({
      name: 'wp-late',
      handler: 'late-h',
      trigger: { kind: 'manual' },
      retry: { maxAttempts: 1 },
    });
    const { workerId } = await workerClient.register({ group: 'default', handlers: ['late-h'], capacity: 1 });
    const first = await admin.triggerJob('wp-late');
    expect((await workerClient.poll(workerId, { max: 1, waitMs: 0, seq: 1 })).runs).toMatchObject([
      { runId: first.id, attempt: 1 },
    ]);
    // Cancelled while the worker ran it to its end: the report is fenced out, and kept.
    await admin.cancelRun(first.id);
    expect(
      await apiError(
        workerClient.request('POST', `/v1/worker/${workerId}/report`, {
          reports: [{ runId: first.id, attempt: 1, outcome: 'succeeded', result: 1 }],
        }),
      ),
    ).toMatchObject({ status: 409, code: 'ATTEMPT_STALE' });
    const [cancelled] = (await admin.getRun(first.id)).attempts ?? [];
    expect(cancelled).toMatchObject({
      status: 'cancelled',
      lateReport: { outcome: 'succeeded', error: null },
    });
    expect(Date.parse(cancelled!.lateReport!.reportedAt)).toBeGreaterThan(0);

    // Poll 2 claims a run whose answer the worker never got; its next heartbeat says poll 2 is settled.
    const second = await admin.triggerJob('wp-late');
    await workerClient.poll(workerId, { max: 1, waitMs: 0, seq: 2 });
    expect((await admin.getRun(second.id)).status).toBe('running');
    expect(await workerClient.heartbeat(workerId, { running: [], polled: 2 })).toMatchObject({ cancel: [] });
    expect(await admin.getRun(second.id)).toMatchObject({
      status: 'queued',
      attempts: [{ attempt: 1, status: 'lost', error: { name: 'WorkerLost' } }],
    });
    expect((await workerClient.poll(workerId, { max: 1, waitMs: 0, seq: 3 })).runs).toMatchObject([
      { runId: second.id, attempt: 2 },
    ]);
    for (const bad of [
      { running: [], polled: -1 },
      { running: [], polled: 1.5 },
    ]) {
      expect(
        await apiError(workerClient.request('POST', `/v1/worker/${workerId}/heartbeat`, bad)),
      ).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
    }
    expect(
      await apiError(workerClient.request('POST', `/v1/worker/${workerId}/poll`, { max: 1, seq: 'x' })),
    ).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
    await workerClient.report(workerId, {
      reports: [{ runId: second.id, attempt: 2, outcome: 'succeeded', result: 2 }],
    });
  });

  it('register, poll, report; a stale attempt gets 409 and changes nothing', async () => {
    await admin.createJob({ name: 'wp', handler: 'wp-h', trigger: { kind: 'manual' } });
    const [runId] = (await admin.triggerJobBatch('wp', [{ params: { i: 1 } }])).runIds;
    const { workerId } = await workerClient.register({ group: 'default', handlers: ['wp-h'], capacity: 2 });
    const { runs, nodeClock: polled } = await workerClient.poll(workerId, { max: 2, waitMs: 0 });
    expect(runs).toMatchObject([{ runId, attempt: 1, handler: 'wp-h', params: { i: 1 } }]);
    expect(polled).toEqual({ id: expect.stringMatching(/^[0-9a-f]{16}$/), time: expect.any(Number) });
    // Each answer carries the node process's clock as it answered (one id, a time that never goes
    // back): the worker maps held runs' instants with it.
    const beat = await workerClient.heartbeat(workerId, { running: [{ runId: runId!, attempt: 1 }] });
    expect(beat).toEqual({ cancel: [], nodeClock: { id: polled!.id, time: expect.any(Number) } });
    expect(beat.nodeClock!.time).toBeGreaterThanOrEqual(polled!.time);
    // The same attempt twice in one batch: the first report wins, the repeat is stale.
    const ok = await workerClient.report(workerId, {
      reports: [
        { runId: runId!, attempt: 1, outcome: 'succeeded', result: { n: 1 } },
        { runId: runId!, attempt: 1, outcome: 'succeeded', result: { n: 2 } },
      ],
    });
    expect(ok.results).toEqual([
      { runId, attempt: 1, ok: true },
      { runId, attempt: 1, ok: false, code: 'ATTEMPT_STALE' },
    ]);

    const stale = await fetch(`${node.url}/v1/worker/${workerId}/report`, {
      method: 'POST',
      headers: { authorization: 'Bearer worker-t', 'content-type': 'application/json' },
      body: JSON.stringify({
        reports: [{ runId, attempt: 1, outcome: 'failed', error: { name: 'E', message: 'late' } }],
      }),
    });
    expect(stale.status).toBe(409);
    expect(((await stale.json()) as { error: { code: string } }).error.code).toBe('ATTEMPT_STALE');
    expect(await admin.getRun(runId!)).toMatchObject({
      status: 'succeeded',
      result: { n: 1 },
      attempts: [{ status: 'succeeded' }],
    });

    expect(await apiError(workerClient.heartbeat('ghost', { running: [] }))).toMatchObject({
      status: 404,
      code: 'WORKER_NOT_FOUND',
    });
    expect(
      await apiError(workerClient.request('POST', `/v1/worker/${workerId}/poll`, { max: 0 })),
    ).toMatchObject({ status: 400 });
    const workers = await admin.listWorkers();
    expect(workers.items.find((w) => w.id === workerId)).toMatchObject({
      status: 'active',
      capacity: 2,
      handlers: ['wp-h'],
    });
  });

  it('a long poll wakes as soon as a run is queued', async () => {
    await admin.createJob({ name: 'wake', handler: 'wake-h', trigger: { kind: 'manual' } });
    const { workerId } = await workerClient.register({ group: 'default', handlers: ['wake-h'], capacity: 1 });
    const polling = workerClient.poll(workerId, { max: 1, waitMs: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const run = await admin.triggerJob('wake');
    const { runs } = await polling;
    expect(runs.map((r) => r.runId)).toEqual([run.id]);
  });
});

describe('node endpoints', () => {
  it('serves Prometheus metrics and the OpenAPI document', async () => {
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    expect(metrics).toContain('kairos_runs_created_total');
    expect(metrics).toContain('kairos_fire_lateness_seconds');
    const openapi = (await (await fetch(`${node.url}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, unknown>;
    };
    expect(openapi.openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining(['/v1/jobs', '/v1/jobs/{name}/trigger', '/v1/worker/{id}/poll']),
    );
  });
});
