import { KairosClient } from '@kairos/client';
import { beforeAll, describe, expect, it } from 'vitest';
import { apiError, startTestNode } from './helpers.ts';

// The fleet routes in process: job dispatch fields, drain, group limits, logs; every refusal with its code.
let admin: KairosClient;
let workerClient: KairosClient;
let url: string;

beforeAll(async () => {
  let node: { url: string };
  ({ node, admin, workerClient } = await startTestNode());
  url = node.url;
});

describe('job dispatch fields', () => {
  it('are stored and shown', async () => {
    const job = await admin.createJob({
      name: 'routed',
      handler: 'h',
      trigger: { kind: 'manual' },
      routing: { strategy: 'consistent-hash', key: 'customer', selector: { region: 'eu' } },
      maxConcurrency: 2,
      rateLimit: { limit: 10, per: '1m' },
      scheduleToStartTimeout: '30s',
    });
    expect(job).toMatchObject({
      routing: { strategy: 'consistent-hash', key: 'customer', selector: { region: 'eu' } },
      maxConcurrency: 2,
      rateLimit: { limit: 10, per: 60_000 },
      scheduleToStartTimeout: 30_000,
      task: null,
    });
    const shell = await admin.createJob({
      name: 'backup',
      trigger: { kind: 'manual' },
      task: { kind: 'shell', command: '/usr/local/bin/backup', args: ['--all'] },
    });
    expect(shell).toMatchObject({
      handler: 'kairos:shell',
      task: { kind: 'shell', command: '/usr/local/bin/backup' },
    });
  });

  const base = { name: 'bad', handler: 'h', trigger: { kind: 'manual' } };
  it.each([
    ['an unknown strategy', { ...base, routing: { strategy: 'fastest' } }, 'INVALID_ROUTING'],
    [
      'a key without consistent-hash',
      { ...base, routing: { strategy: 'first', key: 'k' } },
      'INVALID_ROUTING',
    ],
    ['an unknown routing field', { ...base, routing: { strategy: 'first', weight: 2 } }, 'VALIDATION_FAILED'],
    ['a zero concurrency', { ...base, maxConcurrency: 0 }, 'VALIDATION_FAILED'],
    ['a rate period under 1 s', { ...base, rateLimit: { limit: 1, per: '1ms' } }, 'INVALID_DURATION'],
    ['a task with a foreign handler', { ...base, task: { kind: 'shell', command: 'ls' } }, 'INVALID_TASK'],
    ['a built-in handler without its task', { ...base, handler: 'kairos:http' }, 'INVALID_TASK'],
    [
      'a shell task with a URL',
      { name: 'bad', trigger: { kind: 'manual' }, task: { kind: 'shell', command: 'ls', url: 'x' } },
      'INVALID_TASK',
    ],
    [
      'an unknown task kind',
      { name: 'bad', trigger: { kind: 'manual' }, task: { kind: 'ssh' } },
      'VALIDATION_FAILED',
    ],
  ])('refuses %s', async (_what, spec, code) => {
    expect(await apiError(admin.request('POST', '/v1/jobs', spec))).toMatchObject({ status: 400, code });
    expect(await apiError(admin.getJob('bad'))).toMatchObject({ code: 'JOB_NOT_FOUND' });
  });
});

describe('workers and groups', () => {
  it('drains a worker; an unknown one is 404, a stopped one 409', async () => {
    const { workerId } = await workerClient.register({ name: 'w', group: 'g', handlers: ['h'], capacity: 2 });
    expect(await admin.drainWorker(workerId)).toMatchObject({ id: workerId, status: 'draining' });
    // A draining worker's poll answers nothing rather than "unknown worker".
    expect(await workerClient.poll(workerId, { max: 1, waitMs: 0 })).toMatchObject({ runs: [] });
    expect(await apiError(admin.drainWorker('nobody'))).toMatchObject({
      status: 404,
      code: 'WORKER_NOT_FOUND',
    });
    await workerClient.unregister(workerId);
    expect(await apiError(admin.drainWorker(workerId))).toMatchObject({
      status: 409,
      code: 'WORKER_NOT_ACTIVE',
    });
    expect(await apiError(workerClient.drainWorker(workerId))).toMatchObject({
      status: 403,
      code: 'FORBIDDEN',
    });
  });

  it('resumes a drained worker; lists hide gone workers unless asked for all', async () => {
    const { workerId } = await workerClient.register({
      name: 'r',
      group: 'rg',
      handlers: ['h'],
      capacity: 2,
    });
    await admin.drainWorker(workerId);
    expect(await admin.resumeWorker(workerId)).toMatchObject({ id: workerId, status: 'active' });
    expect(await apiError(admin.resumeWorker('nobody'))).toMatchObject({
      status: 404,
      code: 'WORKER_NOT_FOUND',
    });
    expect(await apiError(workerClient.resumeWorker(workerId))).toMatchObject({
      status: 403,
      code: 'FORBIDDEN',
    });
    const listed = async (all?: boolean) =>
      (await admin.listWorkers({ all })).items.filter((w) => w.id === workerId).map((w) => w.status);
    expect(await listed()).toEqual(['active']);
    await workerClient.unregister(workerId);
    expect(await apiError(admin.resumeWorker(workerId))).toMatchObject({
      status: 409,
      code: 'WORKER_NOT_ACTIVE',
    });
    expect(await listed()).toEqual([]);
    expect(await listed(true)).toEqual(['stopped']);
    expect(
      (await admin.listWorkers()).items.every((w) => w.status === 'active' || w.status === 'draining'),
    ).toBe(true);
  });

  it('sets and lists group limits; bad ones are refused', async () => {
    expect(
      await admin.setGroupLimits('batch', { maxConcurrency: 5, rateLimit: { limit: 100, per: '1m' } }),
    ).toMatchObject({
      group: 'batch',
      maxConcurrency: 5,
      rateLimit: { limit: 100, per: 60_000 },
    });
    expect((await admin.listGroups()).items).toMatchObject([{ group: 'batch', maxConcurrency: 5 }]);
    expect(await admin.setGroupLimits('batch', {})).toMatchObject({ maxConcurrency: null, rateLimit: null });
    expect(await apiError(admin.setGroupLimits('batch', { maxConcurrency: 0 }))).toMatchObject({
      status: 400,
      code: 'VALIDATION_FAILED',
    });
    expect(await apiError(admin.setGroupLimits('bad group!', {}))).toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    expect(
      await apiError(admin.setGroupLimits('batch', { rateLimit: { limit: 1, per: 'soon' } })),
    ).toMatchObject({
      code: 'INVALID_DURATION',
    });
  });
});

describe('group limits per namespace', () => {
  it('are set and listed in the request`s namespace: its admin sets its own, a viewer sees only its own', async () => {
    await admin.createNamespace({ name: 'grp-blue', description: '' });
    const inBlue = new KairosClient({ url, token: 'admin-t', namespace: 'grp-blue' });
    const tokenOf = async (client: KairosClient, name: string, role: 'admin' | 'viewer') =>
      (await client.createToken({ name, role, global: false })).token;
    const blueAdminToken = await tokenOf(inBlue, 'grp-blue-admin', 'admin');
    const blueAdmin = new KairosClient({ url, token: blueAdminToken, namespace: 'grp-blue' });
    const blueViewer = new KairosClient({
      url,
      token: await tokenOf(inBlue, 'grp-blue-viewer', 'viewer'),
      namespace: 'grp-blue',
    });
    const defaultViewer = new KairosClient({
      url,
      token: await tokenOf(admin, 'grp-default-viewer', 'viewer'),
    });
    const etl = async (client: KairosClient) =>
      (await client.listGroups()).items
        .filter((g) => g.group === 'etl')
        .map((g) => [g.namespace, g.maxConcurrency]);

    expect(await blueAdmin.setGroupLimits('etl', { maxConcurrency: 2 })).toMatchObject({
      namespace: 'grp-blue',
      group: 'etl',
      maxConcurrency: 2,
      rateLimit: null,
    });
    expect(await etl(blueViewer)).toEqual([['grp-blue', 2]]);
    // The group `etl` of `default` is another group: no limit until default's operators set one.
    expect(await etl(defaultViewer)).toEqual([]);
    expect(await admin.setGroupLimits('etl', { maxConcurrency: 7 })).toMatchObject({ namespace: 'default' });
    expect(await etl(defaultViewer)).toEqual([['default', 7]]);
    expect(await etl(blueViewer)).toEqual([['grp-blue', 2]]);
    // `?namespace=` names the namespace as the header does.
    const viaQuery = await fetch(`${url}/v1/groups?namespace=grp-blue`, {
      headers: { authorization: `Bearer ${blueAdminToken}` },
    });
    expect(((await viaQuery.json()) as { items: Array<{ namespace: string }> }).items).toMatchObject([
      { namespace: 'grp-blue', group: 'etl' },
    ]);

    // A viewer sets nothing; a namespace's admin sets nothing in another namespace.
    expect(await apiError(blueViewer.setGroupLimits('etl', {}))).toMatchObject({
      status: 403,
      code: 'FORBIDDEN',
    });
    const blueAdminInDefault = new KairosClient({ url, token: blueAdminToken, namespace: 'default' });
    expect(await apiError(blueAdminInDefault.setGroupLimits('etl', {}))).toMatchObject({
      status: 404,
      code: 'NAMESPACE_NOT_FOUND',
    });
    expect(await apiError(blueAdminInDefault.listGroups())).toMatchObject({
      status: 404,
      code: 'NAMESPACE_NOT_FOUND',
    });
    expect(await etl(defaultViewer)).toEqual([['default', 7]]);
  });
});

describe('run results', () => {
  it('are stored and returned; one over 64 KiB is replaced by a marker, the run still succeeds', async () => {
    await admin.createJob({ name: 'results', handler: 'r', trigger: { kind: 'manual' } });
    const { workerId } = await workerClient.register({ group: 'default', handlers: ['r'], capacity: 2 });
    const small = await admin.triggerJob('results');
    const big = await admin.triggerJob('results');
    const runs = (await workerClient.poll(workerId, { max: 2, waitMs: 0 })).runs;
    expect(runs.map((r) => r.runId).sort()).toEqual([small.id, big.id].sort());
    await workerClient.report(workerId, {
      reports: [
        { runId: small.id, attempt: 1, outcome: 'succeeded', result: { rows: 3, names: ['a', 'b'] } },
        { runId: big.id, attempt: 1, outcome: 'succeeded', result: 'x'.repeat(70_000) },
      ],
    });
    expect(await admin.getRun(small.id)).toMatchObject({
      status: 'succeeded',
      result: { rows: 3, names: ['a', 'b'] },
    });
    expect(await admin.getRun(big.id)).toMatchObject({
      status: 'succeeded',
      result: { truncated: true, bytes: 70_002, limit: 65_536 },
    });
  });
});

describe('run logs', () => {
  it('takes lines only for the worker’s own attempts and pages them', async () => {
    await admin.createJob({ name: 'logged', handler: 'h', trigger: { kind: 'manual' } });
    const { id } = await admin.triggerJob('logged');
    const { workerId } = await workerClient.register({ group: 'default', handlers: ['h'], capacity: 1 });
    const [assignment] = (await workerClient.poll(workerId, { max: 1, waitMs: 0 })).runs;
    expect(assignment?.runId).toBe(id);
    const time = new Date().toISOString();
    const lines = Array.from({ length: 5 }, (_, i) => ({
      runId: id,
      attempt: 1,
      level: 'info' as const,
      message: `l${i}`,
      time,
    }));
    expect(
      await workerClient.sendLogs(workerId, {
        logs: lines,
        progress: [{ runId: id, attempt: 1, value: 0.25 }],
      }),
    ).toEqual({
      accepted: 5,
    });
    const stranger = (await workerClient.register({ group: 'default', handlers: ['h'], capacity: 1 }))
      .workerId;
    expect(await workerClient.sendLogs(stranger, { logs: lines })).toEqual({ accepted: 0 });
    const page = await admin.runLogs(id, { after: 1, limit: 2 });
    expect(page).toMatchObject({
      next: 3,
      finished: false,
      progress: { attempt: 1, value: 0.25, message: null },
    });
    expect(page.items.map((l) => [l.seq, l.message])).toEqual([
      [2, 'l1'],
      [3, 'l2'],
    ]);
    expect((await admin.runLogs(id, { after: 3 })).next).toBeNull();
  });

  it('refuses bad lines with a code', async () => {
    const bad = { runId: 1, attempt: 1, level: 'info', message: 'x', time: 'yesterday' };
    expect(await apiError(workerClient.sendLogs('w', { logs: [bad as never] }))).toMatchObject({
      status: 400,
      code: 'VALIDATION_FAILED',
    });
    expect(
      await apiError(workerClient.sendLogs('w', { logs: [{ ...bad, level: 'loud' } as never] })),
    ).toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    expect(
      await apiError(
        workerClient.sendLogs('w', { logs: [], progress: [{ runId: 1, attempt: 1, value: 2 }] }),
      ),
    ).toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    expect(await apiError(admin.runLogs(999_999))).toMatchObject({ status: 404, code: 'RUN_NOT_FOUND' });
    expect(await apiError(admin.request('GET', '/v1/runs/1/logs', undefined, { after: -1 }))).toMatchObject({
      code: 'VALIDATION_FAILED',
    });
  });

  it('streams a finished run’s lines and ends', async () => {
    await admin.createJob({ name: 'streamed', handler: 'h', trigger: { kind: 'manual' } });
    const { id } = await admin.triggerJob('streamed');
    const { workerId } = await workerClient.register({ group: 'default', handlers: ['h'], capacity: 1 });
    await workerClient.poll(workerId, { max: 1, waitMs: 0 });
    const time = new Date().toISOString();
    await workerClient.sendLogs(workerId, {
      logs: ['a', 'b'].map((message) => ({ runId: id, attempt: 1, level: 'info', message, time })),
    });
    await admin.cancelRun(id);
    const events = [];
    for await (const event of admin.followRunLogs(id)) events.push(event);
    expect(events.map((e) => (e.type === 'log' ? e.line.message : e.type))).toEqual(['a', 'b', 'end']);
    expect(events.at(-1)).toMatchObject({ type: 'end', status: 'cancelled', lastSeq: 2 });
    // Resuming after a seq sends only what follows.
    const resumed = [];
    for await (const event of admin.followRunLogs(id, { after: 1 })) resumed.push(event);
    expect(resumed.map((e) => (e.type === 'log' ? e.line.seq : e.type))).toEqual([2, 'end']);
    await expect(async () => {
      for await (const _ of admin.followRunLogs(999_999)) break;
    }).rejects.toMatchObject({ status: 404, code: 'RUN_NOT_FOUND' });
  });
});
