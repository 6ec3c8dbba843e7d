import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MailReceiver,
  Receiver,
  verifyDingtalk,
  verifyFeishu,
  verifyKairosWebhook,
} from '../../test/alert-receiver.ts';
import type { ChannelRecord, ChannelType } from '../store/alerts.ts';
import { type AlertMessage, createAlertSender } from './alert-channels.ts';

const send = createAlertSender({ timeoutMs: 5000 });
let receiver: Receiver;

beforeAll(async () => {
  receiver = await new Receiver().start();
});
afterAll(() => receiver.stop());

const message = (): AlertMessage => ({
  eventId: 'evt-1',
  rule: 'nightly-failed',
  subject: 'job:nightly',
  state: 'firing',
  title: 'Job nightly: run 7 failed after its last attempt',
  text: 'Run 7 of job nightly failed. Error: boom',
  details: { job: 'nightly', runId: 7 },
  at: Date.now(),
});

function channel(type: ChannelType, path: string, secret?: string): ChannelRecord {
  return {
    id: 1,
    namespace: 'default',
    name: type,
    type,
    config: { urlOrigin: receiver.url, smtp: null },
    secrets: { url: `${receiver.url}${path}`, ...(secret ? { secret } : {}) },
    createdAt: 0,
    updatedAt: 0,
  };
}

async function deliver(c: ChannelRecord) {
  const before = receiver.received.length;
  await send(c, message());
  const got = receiver.received[before];
  expect(got).toBeDefined();
  return got!;
}

describe('alert channels against a local receiver that checks signatures as the platform does', () => {
  it('webhook: JSON body, event id header, a signature that verifies and fails with another key or body', async () => {
    const got = await deliver(channel('webhook', '/hook', 'whsec'));
    expect(JSON.parse(got.body)).toMatchObject({
      eventId: 'evt-1',
      state: 'firing',
      rule: 'nightly-failed',
      subject: 'job:nightly',
      details: { job: 'nightly', runId: 7 },
    });
    expect(got.headers['kairos-event-id']).toBe('evt-1');
    expect(verifyKairosWebhook(got, 'whsec')).toBe(true);
    expect(verifyKairosWebhook(got, 'other')).toBe(false);
    expect(verifyKairosWebhook({ ...got, body: got.body.replace('nightly', 'daily') }, 'whsec')).toBe(false);
    // A captured request replayed later than the tolerance is refused.
    expect(verifyKairosWebhook(got, 'whsec', Date.now() + 10 * 60_000)).toBe(false);
  });

  it('webhook without a secret sends no signature', async () => {
    const got = await deliver(channel('webhook', '/plain'));
    expect(got.headers['kairos-signature']).toBeUndefined();
  });

  it('Slack-compatible: a text message', async () => {
    const got = await deliver(channel('slack', '/services/T/B/x'));
    expect(JSON.parse(got.body)).toEqual({
      text: '*Job nightly: run 7 failed after its last attempt*\nRun 7 of job nightly failed. Error: boom',
    });
  });

  it('Feishu/Lark: timestamp and sign in the body, verified by the platform scheme', async () => {
    const got = await deliver(channel('feishu', '/open-apis/bot/v2/hook/abc', 'SECfeishu'));
    const body = JSON.parse(got.body);
    expect(body).toMatchObject({ msg_type: 'text', content: { text: expect.stringContaining('[FIRING]') } });
    expect(verifyFeishu(got, 'SECfeishu')).toBe(true);
    expect(verifyFeishu(got, 'SECother')).toBe(false);
  });

  it('DingTalk: timestamp and sign as query parameters next to the access token', async () => {
    const got = await deliver(channel('dingtalk', '/robot/send?access_token=tok', 'SECding'));
    expect(got.query.get('access_token')).toBe('tok');
    expect(verifyDingtalk(got, 'SECding')).toBe(true);
    expect(verifyDingtalk(got, 'SECother')).toBe(false);
    expect(JSON.parse(got.body)).toMatchObject({ msgtype: 'text', text: { content: expect.any(String) } });
  });

  it('WeCom: a text message to the key in the URL', async () => {
    const got = await deliver(channel('wecom', '/cgi-bin/webhook/send?key=k1'));
    expect(got.query.get('key')).toBe('k1');
    expect(JSON.parse(got.body)).toMatchObject({
      msgtype: 'text',
      text: { content: expect.stringContaining('nightly') },
    });
  });

  it('fails on an HTTP error or a chat platform refusal, without the URL in the reason', async () => {
    receiver.answer = { status: 500, body: 'oops' };
    await expect(send(channel('webhook', '/hook', 'k'), message())).rejects.toThrow('HTTP 500: oops');
    receiver.answer = { status: 200, body: '{"errcode":310000,"errmsg":"sign not match"}' };
    await expect(send(channel('dingtalk', '/robot/send?access_token=tok', 'k'), message())).rejects.toThrow(
      'refused (310000): sign not match',
    );
    receiver.answer = { status: 200, body: '{"code":0,"errcode":0}' };
    const down = channel('webhook', '/x');
    down.secrets.url = 'http://127.0.0.1:1/secret-path?token=abc';
    const error = await send(down, message()).then(
      () => null,
      (e: Error) => e,
    );
    expect(error?.message).not.toContain('token=abc');
  });

  it('email: a message through a local SMTP server, with login', async () => {
    const mail = await new MailReceiver().start({ user: 'kairos', password: 'mailpw' });
    try {
      const c: ChannelRecord = {
        id: 2,
        namespace: 'default',
        name: 'mail',
        type: 'email',
        config: {
          urlOrigin: null,
          smtp: {
            host: '127.0.0.1',
            port: mail.port,
            secure: false,
            user: 'kairos',
            from: 'kairos@example.test',
            to: ['oncall@example.test', 'lead@example.test'],
          },
        },
        secrets: { password: 'mailpw' },
        createdAt: 0,
        updatedAt: 0,
      };
      await send(c, message());
      expect(mail.messages).toHaveLength(1);
      const [got] = mail.messages;
      expect(got).toMatchObject({
        from: 'kairos@example.test',
        to: ['oncall@example.test', 'lead@example.test'],
        user: 'kairos',
      });
      expect(got!.raw).toContain('Subject: Job nightly: run 7 failed after its last attempt');
      expect(got!.raw).toMatch(/^X-Kairos-Event-Id: evt-1\r?$/im);
      c.secrets.password = 'wrong';
      await expect(send(c, message())).rejects.toThrow();
    } finally {
      await mail.stop();
    }
  });
});
