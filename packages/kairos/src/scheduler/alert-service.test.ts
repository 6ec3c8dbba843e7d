import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Receiver, verifyKairosWebhook } from '../../test/alert-receiver.ts';
import { tempDir } from '../../test/helpers.ts';
import { compileAlertRule } from '../core/alert-rule.ts';
import { compileJob } from '../core/job.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import type { Store } from '../store/store.ts';
import { AlertService } from './alert-service.ts';
import { FakeClock } from './clock.ts';

const dir = tempDir();
let n = 0;
let receiver: Receiver;
let store: Store;
let clock: FakeClock;
let service: AlertService;
let ids = 0;

beforeAll(async () => {
  receiver = await new Receiver().start();
});
afterAll(() => receiver.stop());

beforeEach(async () => {
  store = new SqliteStore(join(dir, `alerts-${n++}.db`));
  await store.migrate();
  clock = new FakeClock(Date.UTC(2026, 0, 1));
  receiver.received.length = 0;
  ids = 0;
  receiver.answer = { status: 200, body: '{}' };
  service = new AlertService({
    store,
    clock,
    owner: 'node-a',
    logger: pino({ level: 'silent' }),
    retry: { baseMs: 5000, maxMs: 60_000, attempts: 3 },
    conditionsEveryMs: 0,
    newEventId: () => `evt-${++ids}`,
  });
  await store.alerts.putChannel(
    {
      name: 'hook',
      type: 'webhook',
      config: { urlOrigin: receiver.url, smtp: null },
      secrets: { url: `${receiver.url}/hook`, secret: 'whsec' },
    },
    clock.now(),
    true,
  );
});
afterEach(() => store.close());

let workers = 0;
async function endRun(job: string, status: 'succeeded' | 'failed'): Promise<number> {
  const record =
    (await store.getJob(job)) ??
    (await store.createJob(
      compileJob({ name: job, handler: 'h', trigger: { kind: 'manual' } }),
      null,
      clock.now(),
    ));
  const [runId] = await store.enqueueRuns(record.id, [{ params: {}, priority: 0 }], clock.now());
  const worker = `w${workers++}`;
  await store.registerWorker(
    {
      id: worker,
      name: worker,
      group: 'default',
      handlers: ['h'],
      capacity: 1,
      labels: {},
      version: 't',
      host: 'h',
    },
    60_000,
    clock.now(),
  );
  await store.claimRuns(worker, 1, clock.now());
  await store.finishAttempts(
    [
      {
        runId: runId!,
        attempt: 1,
        group: 'default',
        attemptStatus: status,
        error: status === 'failed' ? { name: 'Error', message: 'boom' } : null,
        result: null,
        run: { status },
      },
    ],
    clock.now(),
  );
  return runId!;
}

const bodies = () => receiver.received.map((r) => JSON.parse(r.body) as Record<string, unknown>);

describe('AlertService on SQLite with a fake clock and a real webhook receiver', () => {
  it("a rule sees only its namespace's runs, even when it names another namespace's job; a silence only its namespace's rules", async () => {
    await store.namespaces.create({ name: 'blue', description: '' }, clock.now());
    await store.alerts.putChannel(
      {
        name: 'blue-hook',
        type: 'webhook',
        config: { urlOrigin: receiver.url, smtp: null },
        secrets: { url: `${receiver.url}/blue`, secret: 'whsec' },
      },
      clock.now(),
      true,
      'blue',
    );
    const put = (name: string, channel: string, namespace: string, job?: string) =>
      store.alerts.putRule(
        compileAlertRule({ name, kind: 'run-failed', channels: [channel], ...(job ? { job } : {}) }),
        clock.now(),
        true,
        namespace,
      );
    await put('dflt-any', 'hook', 'default');
    await put('blue-any', 'blue-hook', 'blue');
    await put('blue-nightly', 'blue-hook', 'blue', 'nightly');
    // Blue's silence of every rule: blue's rules only.
    await store.alerts.createSilence({
      namespace: 'blue',
      rule: null,
      startsAt: clock.now(),
      endsAt: clock.now() + 60_000,
      comment: '',
      createdBy: 'admin',
      createdAt: clock.now(),
    });
    await endRun('nightly', 'failed'); // a job of default
    await service.tick();
    expect(bodies()).toMatchObject([{ rule: 'dflt-any', subject: 'job:nightly', state: 'firing' }]);
    expect(receiver.received).toHaveLength(1);
    const deliveries = await store.alerts.listDeliveries({ limit: 10 });
    expect(deliveries.map((d) => [d.rule, d.namespace, d.status])).toEqual([['dflt-any', 'default', 'sent']]);
    const rules = new Map((await store.alerts.listRules()).map((r) => [r.id, r.name]));
    expect((await store.alerts.firingAlerts()).map((a) => rules.get(a.ruleId))).toEqual(['dflt-any']);
  });

  it('one alert per rule and subject per window, again after the window, and one resolved', async () => {
    await store.alerts.putRule(
      compileAlertRule({
        name: 'nightly-failed',
        kind: 'run-failed',
        job: 'nightly',
        channels: ['hook'],
        window: '1h',
      }),
      clock.now(),
      true,
    );
    await endRun('nightly', 'failed');
    await endRun('other', 'failed'); // out of scope
    await service.tick();
    expect(bodies()).toMatchObject([
      { eventId: 'evt-1', state: 'firing', subject: 'job:nightly', rule: 'nightly-failed' },
    ]);
    expect(verifyKairosWebhook(receiver.received[0]!, 'whsec', clock.now())).toBe(true);

    await clock.advance(60_000);
    await endRun('nightly', 'failed');
    await service.tick();
    expect(receiver.received).toHaveLength(1);
    expect(await store.alerts.firingAlerts()).toMatchObject([{ subject: 'job:nightly', count: 2 }]);

    await clock.advance(60 * 60_000);
    await endRun('nightly', 'failed');
    await service.tick();
    expect(bodies()[1]).toMatchObject({ eventId: 'evt-2', state: 'firing', details: { occurrences: 3 } });

    await endRun('nightly', 'succeeded');
    await service.tick();
    expect(bodies()[2]).toMatchObject({ eventId: 'evt-3', state: 'resolved', subject: 'job:nightly' });
    expect(await store.alerts.firingAlerts()).toEqual([]);
    // A success while nothing fires says nothing.
    await endRun('nightly', 'succeeded');
    await service.tick();
    expect(receiver.received).toHaveLength(3);
    expect(await store.alerts.pendingEvents(10)).toEqual([]);
  });

  it('retries a failed delivery with backoff under the same event id, then gives up and records it', async () => {
    await store.alerts.putRule(
      compileAlertRule({ name: 'any-failed', kind: 'run-failed', channels: ['hook'] }),
      clock.now(),
      true,
    );
    receiver.answer = { status: 503, body: 'busy' };
    await endRun('a', 'failed');
    await service.tick();
    expect(receiver.received).toHaveLength(1);
    const [first] = await store.alerts.listDeliveries({ limit: 5 });
    expect(first).toMatchObject({
      status: 'pending',
      attempts: 1,
      lastError: 'HTTP 503: busy',
      nextAttemptAt: clock.now() + 5000,
    });
    await clock.advance(4000);
    await service.tick();
    expect(receiver.received).toHaveLength(1);
    await clock.advance(1000);
    await service.tick();
    expect(receiver.received).toHaveLength(2);
    receiver.answer = { status: 200, body: '{}' };
    await clock.advance(10_000);
    await service.tick();
    expect(receiver.received.map((r) => r.headers['kairos-event-id'])).toEqual(['evt-1', 'evt-1', 'evt-1']);
    expect(await store.alerts.listDeliveries({ limit: 5 })).toMatchObject([{ status: 'sent', attempts: 3 }]);

    receiver.answer = { status: 500, body: '' };
    await endRun('b', 'failed');
    for (let i = 0; i < 4; i++) {
      await service.tick();
      await clock.advance(60_000);
    }
    const [gaveUp] = await store.alerts.listDeliveries({ limit: 1 });
    expect(gaveUp).toMatchObject({ subject: 'job:b', status: 'failed', attempts: 3, nextAttemptAt: null });
  });

  it('records alerts inside a silence without sending them', async () => {
    await store.alerts.putRule(
      compileAlertRule({ name: 'any-failed', kind: 'run-failed', channels: ['hook'] }),
      clock.now(),
      true,
    );
    await store.alerts.createSilence({
      namespace: 'default',
      rule: 'any-failed',
      startsAt: clock.now(),
      endsAt: clock.now() + 60_000,
      comment: 'maintenance',
      createdBy: 'admin',
      createdAt: clock.now(),
    });
    await endRun('a', 'failed');
    await service.tick();
    expect(receiver.received).toHaveLength(0);
    expect(await store.alerts.listDeliveries({ limit: 5 })).toMatchObject([
      { status: 'silenced', subject: 'job:a' },
    ]);
    await clock.advance(60_000);
    await endRun('b', 'failed');
    await service.tick();
    expect(bodies()).toMatchObject([{ subject: 'job:b' }]);
  });

  it('N consecutive failures alert once the N-th failure in a row ends, and resolve on success', async () => {
    await store.alerts.putRule(
      compileAlertRule({ name: 'three', kind: 'consecutive-failures', count: 3, channels: ['hook'] }),
      clock.now(),
      true,
    );
    await endRun('j', 'failed');
    await endRun('j', 'failed');
    await service.tick();
    expect(receiver.received).toHaveLength(0);
    await endRun('j', 'failed');
    await service.tick();
    expect(bodies()).toMatchObject([{ state: 'firing', details: { failuresInRow: 3 } }]);
    await endRun('j', 'succeeded');
    await service.tick();
    expect(bodies()[1]).toMatchObject({ state: 'resolved' });
  });

  it('a run no live worker can take raises the queued alert within its threshold, and resolves when one can', async () => {
    await store.alerts.putRule(
      compileAlertRule({
        name: 'stuck',
        kind: 'run-queued',
        threshold: '1m',
        unroutableOnly: true,
        channels: ['hook'],
      }),
      clock.now(),
      true,
    );
    const job = await store.createJob(
      compileJob({ name: 'orphan', handler: 'nobody', group: 'lonely', trigger: { kind: 'manual' } }),
      null,
      clock.now(),
    );
    await store.enqueueRuns(job.id, [{ params: {}, priority: 0 }], clock.now());
    await clock.advance(59_000);
    await service.tick();
    expect(receiver.received).toHaveLength(0);
    await clock.advance(1000);
    await service.tick();
    expect(bodies()).toMatchObject([
      {
        state: 'firing',
        subject: 'job:orphan',
        details: { noLiveWorker: 'No live worker in group lonely' },
      },
    ]);
    await service.tick();
    expect(receiver.received).toHaveLength(1);
    // A worker of the group that declares the handler arrives: someone can take the run now.
    await store.registerWorker(
      {
        id: 'w-l',
        name: 'w-l',
        group: 'lonely',
        handlers: ['nobody'],
        capacity: 1,
        labels: {},
        version: 't',
        host: 'h',
      },
      60_000,
      clock.now(),
    );
    await service.tick();
    expect(bodies()[1]).toMatchObject({ state: 'resolved', subject: 'job:orphan' });
  });

  it('dead man’s switch: a job that has not succeeded within its period', async () => {
    await store.alerts.putRule(
      compileAlertRule({
        name: 'daily',
        kind: 'no-success',
        job: 'backup',
        threshold: '1d',
        channels: ['hook'],
      }),
      clock.now(),
      true,
    );
    await endRun('backup', 'succeeded');
    await clock.advance(23 * 3_600_000);
    await service.tick();
    expect(receiver.received).toHaveLength(0);
    await clock.advance(3_600_000);
    await service.tick();
    expect(bodies()).toMatchObject([{ state: 'firing', subject: 'job:backup' }]);
    await endRun('backup', 'succeeded');
    await service.tick();
    expect(bodies()[1]).toMatchObject({ state: 'resolved' });
  });

  it('a worker lost, and back', async () => {
    await store.alerts.putRule(
      compileAlertRule({ name: 'workers', kind: 'worker-lost', channels: ['hook'] }),
      clock.now(),
      true,
    );
    await store.registerWorker(
      {
        id: 'w-x',
        name: 'box-1',
        group: 'etl',
        handlers: ['h'],
        capacity: 1,
        labels: {},
        version: 't',
        host: 'h',
      },
      5000,
      clock.now(),
    );
    await clock.advance(6000);
    expect(await store.markLostWorkers(clock.now())).toEqual(['w-x']);
    await service.tick();
    expect(bodies()).toMatchObject([
      { state: 'firing', subject: 'worker:w-x', details: { worker: 'box-1', group: 'etl' } },
    ]);
    await store.registerWorker(
      {
        id: 'w-x',
        name: 'box-1',
        group: 'etl',
        handlers: ['h'],
        capacity: 1,
        labels: {},
        version: 't',
        host: 'h',
      },
      5000,
      clock.now(),
    );
    await service.tick();
    expect(bodies()[1]).toMatchObject({ state: 'resolved', subject: 'worker:w-x' });
  });

  it('fires that did not run, by reason, from the ledger: a new range and one that extends', async () => {
    await store.alerts.putRule(
      compileAlertRule({
        name: 'misfires',
        kind: 'fire-skipped',
        reasons: ['misfire'],
        channels: ['hook'],
        window: 0,
      }),
      clock.now(),
      true,
    );
    const job = await store.createJob(
      compileJob({ name: 'tick', handler: 'h', trigger: { kind: 'every', every: '1s' } }),
      clock.now(),
      clock.now(),
    );
    const t = clock.now();
    await store.fire(
      [
        {
          jobId: job.id,
          expected: t,
          next: t + 5000,
          fires: [t + 4000],
          skipped: [{ reason: 'misfire', first: t, last: t + 3000, count: 4 }],
        },
      ],
      null,
      t + 4000,
    );
    await store.fire(
      [
        {
          jobId: job.id,
          expected: t + 5000,
          next: t + 7000,
          fires: [],
          skipped: [{ reason: 'overlap', first: t + 5000, last: t + 5000, count: 1 }],
        },
      ],
      null,
      t + 5000,
    );
    await service.tick();
    expect(bodies()).toMatchObject([
      { state: 'firing', subject: 'job:tick', details: { reason: 'misfire', count: 4 } },
    ]);
    // Two more misfires right after the range: the ledger extends its row, the alert says what is new.
    await store.fire(
      [
        {
          jobId: job.id,
          expected: t + 7000,
          next: t + 10_000,
          fires: [],
          skipped: [{ reason: 'misfire', first: t + 8000, last: t + 9000, count: 2, after: t + 3000 }],
        },
      ],
      null,
      t + 9000,
    );
    expect(
      (await store.listSkipped(job.id, { limit: 10 })).filter((r) => r.reason === 'misfire'),
    ).toHaveLength(1);
    await service.tick();
    expect(bodies()[1]).toMatchObject({
      state: 'firing',
      details: {
        reason: 'misfire',
        count: 2,
        firstFire: new Date(t + 3000).toISOString(),
        lastFire: new Date(t + 9000).toISOString(),
      },
    });
  });

  it('fire lateness over its threshold, then in time again', async () => {
    await store.alerts.putRule(
      compileAlertRule({ name: 'late', kind: 'fire-late', threshold: '30s', channels: ['hook'] }),
      clock.now(),
      true,
    );
    const job = await store.createJob(
      compileJob({ name: 'cron', handler: 'h', group: 'c', trigger: { kind: 'every', every: '1m' } }),
      clock.now(),
      clock.now(),
    );
    const t = clock.now();
    await store.fire([{ jobId: job.id, expected: t, next: t + 60_000, fires: [t] }], null, t);
    await clock.advance(29_000);
    await service.tick();
    expect(receiver.received).toHaveLength(0);
    await clock.advance(1000);
    await service.tick();
    expect(bodies()).toMatchObject([
      { state: 'firing', subject: 'job:cron', details: { fireTime: new Date(t).toISOString() } },
    ]);
    // The next fire starts on time.
    await store.registerWorker(
      { id: 'wc', name: 'wc', group: 'c', handlers: ['h'], capacity: 2, labels: {}, version: 't', host: 'h' },
      600_000,
      clock.now(),
    );
    await store.claimRuns('wc', 1, clock.now());
    await clock.setTime(t + 60_000);
    await store.fire(
      [{ jobId: job.id, expected: t + 60_000, next: t + 120_000, fires: [t + 60_000] }],
      null,
      t + 60_000,
    );
    await store.claimRuns('wc', 1, t + 61_000);
    await clock.setTime(t + 61_000);
    await service.tick();
    expect(bodies()[1]).toMatchObject({ state: 'resolved', subject: 'job:cron' });
  });

  it('a node that stops renewing its membership without a clean shutdown', async () => {
    await store.alerts.putRule(
      compileAlertRule({ name: 'nodes', kind: 'node-lost', channels: ['hook'] }),
      clock.now(),
      true,
    );
    const node = {
      id: 'n1',
      address: 'http://n1',
      version: 't',
      startedAt: clock.now(),
      partitions: [],
      clockSkewMs: 0,
    };
    await store.heartbeatNode({ ...node, instance: 'n1:a' }, 3000, clock.now());
    await service.tick();
    await clock.advance(3000);
    await service.tick();
    expect(bodies()).toMatchObject([{ state: 'firing', subject: 'node:n1' }]);
    await store.heartbeatNode({ ...node, instance: 'n1:b' }, 3000, clock.now());
    await service.tick();
    expect(bodies()[1]).toMatchObject({ state: 'resolved', subject: 'node:n1' });
  });

  it('a second node does nothing while the first holds the lease', async () => {
    const other = new AlertService({ store, clock, owner: 'node-b', logger: pino({ level: 'silent' }) });
    await store.alerts.putRule(
      compileAlertRule({ name: 'any-failed', kind: 'run-failed', channels: ['hook'] }),
      clock.now(),
      true,
    );
    await service.tick();
    await endRun('a', 'failed');
    await other.tick();
    expect(other.leading).toBe(false);
    expect(receiver.received).toHaveLength(0);
    await service.tick();
    expect(receiver.received).toHaveLength(1);
  });
});
