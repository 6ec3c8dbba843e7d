import { KairosClient, type Run } from '@kairos/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MailReceiver, Receiver, verifyKairosWebhook } from './alert-receiver.ts';
import { apiError, startTestNode, testWorker } from './helpers.ts';
import { waitFor } from './processes.ts';

let receiver: Receiver;
let mail: MailReceiver;
let admin: KairosClient;
let viewer: KairosClient;
let url: string;
let stopWorker: () => Promise<void>;

beforeAll(async () => {
  receiver = await new Receiver().start();
  mail = await new MailReceiver().start({ user: 'kairos', password: 'smtp-pw' });
  const started = await startTestNode();
  admin = started.admin;
  url = started.node.url;
  const token = await admin.createToken({ name: 'look', role: 'viewer' });
  viewer = new KairosClient({ url, token: token.token });
  const worker = testWorker(started.node, 'default')
    .handle('fail', async (ctx) => {
      if (ctx.params.ok) return { ok: true };
      throw new Error('disk full');
    })
    .handle('ok', async () => ({ ok: true }));
  await worker.start();
  stopWorker = () => worker.stop();
});
afterAll(async () => {
  await stopWorker();
  await receiver.stop();
  await mail.stop();
});

async function finished(id: number): Promise<Run> {
  return waitFor(
    async () => {
      const run = await admin.getRun(id);
      return ['succeeded', 'failed', 'timed_out', 'cancelled'].includes(run.status) ? run : undefined;
    },
    20_000,
    `run ${id} to finish`,
  );
}

describe('alerts through the API', () => {
  it('keeps channel secrets write-only: never answered, kept across a PUT that leaves them out', async () => {
    const created = await admin.createAlertChannel({
      name: 'hook',
      type: 'webhook',
      url: `${receiver.url}/hooks/secret-token-path`,
      secret: 'whsec-123',
    });
    expect(created).toMatchObject({
      name: 'hook',
      type: 'webhook',
      url: `${receiver.url}/…`,
      secretSet: true,
      smtp: null,
    });
    await admin.createAlertChannel({
      name: 'mail',
      type: 'email',
      smtp: {
        host: '127.0.0.1',
        port: mail.port,
        user: 'kairos',
        password: 'smtp-pw',
        from: 'kairos@example.test',
        to: ['oncall@example.test'],
      },
    });
    const listed = JSON.stringify(await viewer.listAlertChannels());
    for (const secret of ['whsec-123', 'smtp-pw', 'secret-token-path']) expect(listed).not.toContain(secret);
    expect(await admin.getAlertChannel('mail')).toMatchObject({ smtp: { passwordSet: true, secure: false } });
    // A PUT without the secret and URL keeps them: the test message still signs with the stored key.
    await admin.putAlertChannel({ name: 'hook', type: 'webhook' });
    const test = await admin.testAlertChannel('hook');
    expect(test).toMatchObject({ status: 'sent', state: 'test', channel: 'hook', attempts: 1 });
    const [got] = await receiver.until(1);
    expect(got!.path).toBe('/hooks/secret-token-path');
    expect(verifyKairosWebhook(got!, 'whsec-123')).toBe(true);
    expect(await admin.testAlertChannel('mail')).toMatchObject({ status: 'sent' });
    expect(mail.messages).toHaveLength(1);
    // The audit log names the change, not the secret.
    expect(JSON.stringify(await admin.listAudit())).not.toContain('whsec-123');
  });

  it('refuses bad rules and channels with a stable code and changes nothing', async () => {
    expect(
      (await apiError(admin.createAlertRule({ name: 'x', kind: 'run-queued', channels: ['hook'] }))).code,
    ).toBe('INVALID_ALERT_RULE');
    expect(
      (await apiError(admin.createAlertRule({ name: 'x', kind: 'run-failed', channels: ['nope'] }))).code,
    ).toBe('CHANNEL_NOT_FOUND');
    expect(
      (
        await apiError(
          admin.createAlertRule({ name: 'x', kind: 'run-failed', channels: ['hook'], job: 'a', group: 'b' }),
        )
      ).code,
    ).toBe('INVALID_ALERT_RULE');
    expect(
      (
        await apiError(
          admin.createAlertRule({ name: 'x', kind: 'fire-late', threshold: 'soon', channels: ['hook'] }),
        )
      ).code,
    ).toBe('INVALID_DURATION');
    expect(
      (
        await apiError(
          admin.request('POST', '/v1/alert-rules', { name: 'x', kind: 'nope', channels: ['hook'] }),
        )
      ).code,
    ).toBe('VALIDATION_FAILED');
    expect((await apiError(admin.createAlertChannel({ name: 'w', type: 'wecom' }))).code).toBe(
      'INVALID_CHANNEL',
    );
    expect(
      (
        await apiError(
          admin.createAlertChannel({ name: 'w', type: 'slack', url: 'https://hooks.example/x', secret: 's' }),
        )
      ).code,
    ).toBe('INVALID_CHANNEL');
    expect((await apiError(admin.createAlertSilence({ endsAt: '2000-01-01T00:00:00Z' }))).code).toBe(
      'INVALID_TIME_RANGE',
    );
    expect((await admin.listAlertRules()).items).toEqual([]);
    expect(
      (await apiError(viewer.createAlertRule({ name: 'x', kind: 'run-failed', channels: ['hook'] }))).code,
    ).toBe('FORBIDDEN');
    expect((await apiError(admin.testAlertChannel('nope'))).code).toBe('CHANNEL_NOT_FOUND');
  });

  it('refuses a rule scoped to a job its namespace does not hold (it could never fire); a group is free-form', async () => {
    const missing = await apiError(
      admin.createAlertRule({ name: 'ghost', kind: 'run-failed', job: 'no-such-job', channels: ['hook'] }),
    );
    expect(missing).toMatchObject({ status: 404, code: 'JOB_NOT_FOUND', details: { field: 'job' } });
    expect(missing.message).toContain('could never fire');
    expect(
      await apiError(
        admin.putAlertRule({
          name: 'ghost',
          kind: 'no-success',
          threshold: '1h',
          job: 'no-such-job',
          channels: ['hook'],
        }),
      ),
    ).toMatchObject({ status: 404, code: 'JOB_NOT_FOUND' });
    // A job of that name in another namespace is not this namespace's.
    await admin.createNamespace({ name: 'al-other' });
    await new KairosClient({ url, token: 'admin-t', namespace: 'al-other' }).createJob({
      name: 'elsewhere',
      handler: 'h',
      trigger: { kind: 'manual' },
    });
    expect(
      await apiError(
        admin.createAlertRule({ name: 'ghost', kind: 'run-failed', job: 'elsewhere', channels: ['hook'] }),
      ),
    ).toMatchObject({ code: 'JOB_NOT_FOUND' });
    expect((await admin.listAlertRules()).items.map((r) => r.name)).not.toContain('ghost');
    // Once the job exists the rule is taken; an existing rule edited onto a missing job is refused.
    await admin.createJob({ name: 'ghost-job', handler: 'h', trigger: { kind: 'manual' } });
    await admin.createAlertRule({ name: 'ghost', kind: 'run-failed', job: 'ghost-job', channels: ['hook'] });
    expect(
      await apiError(
        admin.putAlertRule({ name: 'ghost', kind: 'run-failed', job: 'gone', channels: ['hook'] }),
      ),
    ).toMatchObject({ code: 'JOB_NOT_FOUND' });
    expect(await admin.getAlertRule('ghost')).toMatchObject({ job: 'ghost-job' });
    await admin.putAlertRule({
      name: 'ghost',
      kind: 'run-failed',
      group: 'any-group-name',
      channels: ['hook'],
    });
    await admin.deleteAlertRule('ghost');
  });

  it('a job that fails its last attempt: one signed webhook and one email; after it succeeds, one resolved each', async () => {
    receiver.received.length = 0;
    mail.messages.length = 0;
    await admin.createJob({
      name: 'billing',
      handler: 'fail',
      trigger: { kind: 'manual' },
      retry: { maxAttempts: 2, delay: '50ms' },
    });
    const rule = await admin.createAlertRule({
      name: 'billing-failed',
      kind: 'run-failed',
      job: 'billing',
      channels: ['hook', 'mail'],
      window: '1h',
    });
    expect(rule).toMatchObject({ kind: 'run-failed', job: 'billing', window: 3_600_000, enabled: true });
    expect((await apiError(admin.deleteAlertChannel('hook'))).code).toBe('CHANNEL_IN_USE');
    expect(await finished((await admin.triggerJob('billing')).id)).toMatchObject({
      status: 'failed',
      attempt: 2,
    });
    const [firing] = await receiver.until(1);
    const body = JSON.parse(firing!.body);
    expect(body).toMatchObject({
      state: 'firing',
      rule: 'billing-failed',
      subject: 'job:billing',
      details: { error: 'disk full' },
    });
    expect(verifyKairosWebhook(firing!, 'whsec-123')).toBe(true);
    await waitFor(async () => (mail.messages.length >= 1 ? true : undefined), 20_000, 'the email');
    expect(mail.messages[0]!.raw).toMatch(new RegExp(`^X-Kairos-Event-Id: ${body.eventId}\\r?$`, 'im'));
    expect((await admin.listOpenAlerts()).items).toMatchObject([
      { rule: 'billing-failed', subject: 'job:billing' },
    ]);

    // A second failure inside the window: no new alert.
    await finished((await admin.triggerJob('billing')).id);
    expect(await finished((await admin.triggerJob('billing', { params: { ok: true } })).id)).toMatchObject({
      status: 'succeeded',
    });
    await receiver.until(2);
    await waitFor(async () => (mail.messages.length >= 2 ? true : undefined), 20_000, 'the resolved email');
    expect(receiver.received.map((r) => JSON.parse(r.body).state)).toEqual(['firing', 'resolved']);
    expect(mail.messages).toHaveLength(2);
    expect(mail.messages[1]!.raw).toContain('[RESOLVED]');
    const history = await admin.listAlertDeliveries({ rule: 'billing-failed' });
    expect(history.items.map((d) => [d.channel, d.state, d.status]).sort()).toEqual([
      ['hook', 'firing', 'sent'],
      ['hook', 'resolved', 'sent'],
      ['mail', 'firing', 'sent'],
      ['mail', 'resolved', 'sent'],
    ]);
    expect((await admin.listOpenAlerts()).items).toEqual([]);
  });

  it('silences a rule for a while', async () => {
    const silence = await admin.createAlertSilence({
      rule: 'billing-failed',
      endsAt: new Date(Date.now() + 3_600_000).toISOString(),
      comment: 'migration',
    });
    expect(silence).toMatchObject({
      rule: 'billing-failed',
      comment: 'migration',
      createdBy: expect.any(String),
    });
    expect((await admin.listAlertSilences()).items).toHaveLength(1);
    const before = receiver.received.length;
    await finished((await admin.triggerJob('billing')).id);
    await waitFor(
      async () =>
        (await admin.listAlertDeliveries({ status: 'silenced' })).items.length === 2 ? true : undefined,
      20_000,
      'the silenced deliveries',
    );
    expect(receiver.received.length).toBe(before);
    await admin.deleteAlertSilence(silence.id);
    expect((await apiError(admin.deleteAlertSilence(silence.id))).code).toBe('SILENCE_NOT_FOUND');
  });
});
