import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Receiver, verifyKairosWebhook } from '../../test/alert-receiver.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../../test/test-database.ts';
import { compileAlertRule } from '../core/alert-rule.ts';
import { compileJob } from '../core/job.ts';
import { PostgresStore } from '../store/postgres/postgres-store.ts';
import type { Store } from '../store/store.ts';
import { createAlertSender } from './alert-channels.ts';
import { AlertService } from './alert-service.ts';
import { systemClock } from './clock.ts';

// Two nodes on one PostgreSQL evaluate alerts: each event is decided and delivered by one of them.

let receiver: Receiver;
const stores: Store[] = [];
const services: AlertService[] = [];

beforeAll(async () => {
  receiver = await new Receiver().start();
});
afterEach(async () => {
  // The receiver first: closing its connections ends a request it holds, and so the loop waiting on it.
  await receiver.stop();
  await Promise.all(services.splice(0).map((s) => s.stop()));
  receiver = await new Receiver().start();
  await Promise.all(stores.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await receiver.stop();
  await dropTestSchemas();
});

async function cluster(): Promise<Store[]> {
  const schema = testSchema('kairos_alerts');
  const a = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
  const b = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
  stores.push(a, b);
  await a.migrate();
  await b.migrate();
  await a.alerts.putChannel(
    {
      name: 'hook',
      type: 'webhook',
      config: { urlOrigin: receiver.url, smtp: null },
      secrets: { url: `${receiver.url}/hook`, secret: 'whsec' },
    },
    Date.now(),
    true,
  );
  await a.alerts.putRule(
    compileAlertRule({ name: 'failed', kind: 'run-failed', channels: ['hook'] }),
    Date.now(),
    true,
  );
  return [a, b];
}

function service(store: Store, owner: string, timeoutMs = 5000): AlertService {
  const s = new AlertService({
    store,
    clock: systemClock,
    owner,
    logger: pino({ level: process.env.ALERT_TEST_LOG ?? 'silent' }),
    intervalMs: 100,
    leaseMs: 1500,
    sender: createAlertSender({ timeoutMs }),
  });
  services.push(s);
  return s;
}

let workers = 0;
async function failRun(store: Store, job: string): Promise<void> {
  const now = Date.now();
  const record =
    (await store.getJob(job)) ??
    (await store.createJob(
      compileJob({ name: job, handler: 'h', group: job, trigger: { kind: 'manual' } }),
      null,
      now,
    ));
  const [runId] = await store.enqueueRuns(record.id, [{ params: {}, priority: 0 }], now);
  const worker = `w${workers++}`;
  await store.registerWorker(
    {
      id: worker,
      name: worker,
      group: job,
      handlers: ['h'],
      capacity: 1,
      labels: {},
      version: 't',
      host: 'h',
    },
    60_000,
    now,
  );
  // Each job its own group: this worker claims this run, whatever the other writers do.
  expect((await store.claimRuns(worker, 1, now))[0]?.runId).toBe(runId);
  await store.finishAttempts(
    [
      {
        runId: runId!,
        attempt: 1,
        group: job,
        attemptStatus: 'failed',
        error: { name: 'Error', message: 'boom' },
        result: null,
        run: { status: 'failed' },
      },
    ],
    now,
  );
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('alerts on two nodes sharing PostgreSQL', () => {
  it('each failure is decided and delivered once, whichever node wrote it', async () => {
    const [a, b] = await cluster();
    service(a!, 'node-a').start();
    service(b!, 'node-b').start();
    await Promise.all(Array.from({ length: 20 }, (_, i) => failRun(i % 2 === 0 ? a! : b!, `job-${i}`)));
    await receiver.until(20);
    // Every event decided and every delivery sent: nothing is left that either node could send again.
    const settled = Date.now() + 30_000;
    while (
      (await a!.alerts.pendingEvents(1)).length > 0 ||
      (await a!.alerts.dueDeliveries(Number.MAX_SAFE_INTEGER, 1)).length > 0
    ) {
      if (Date.now() > settled) throw new Error('alert events or deliveries still pending after 30 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const subjects = receiver.received.map((r) => JSON.parse(r.body).subject as string).sort();
    expect(subjects).toEqual(Array.from({ length: 20 }, (_, i) => `job:job-${i}`).sort());
    expect(new Set(receiver.received.map((r) => r.headers['kairos-event-id'])).size).toBe(20);
    for (const request of receiver.received) expect(verifyKairosWebhook(request, 'whsec')).toBe(true);
    expect(services.filter((s) => s.leading)).toHaveLength(1);
    expect(await a!.alerts.pendingEvents(10)).toEqual([]);
  });

  it('a node that stops mid-delivery leaves the delivery to the other, which sends it with the same event id', async () => {
    const [a, b] = await cluster();
    const first = service(a!, 'node-a', 60_000);
    first.start();
    await until(() => first.leading);
    const second = service(b!, 'node-b');
    second.start();
    // The first node's request reaches the receiver and is never answered: its loop hangs there and
    // its lease runs out, as if the process had been frozen or killed mid-delivery.
    receiver.hold = 1;
    await failRun(a!, 'nightly');
    await receiver.until(1);
    await receiver.until(2);
    await until(async () => (await b!.alerts.listDeliveries({ limit: 1 }))[0]?.status === 'sent');
    expect(second.leading).toBe(true);
    const ids = receiver.received.map((r) => r.headers['kairos-event-id']);
    expect(ids).toHaveLength(2);
    expect(ids[1]).toBe(ids[0]);
    const [delivery] = await b!.alerts.listDeliveries({ limit: 5 });
    expect(delivery).toMatchObject({ status: 'sent', eventId: ids[0] });
  });
});
