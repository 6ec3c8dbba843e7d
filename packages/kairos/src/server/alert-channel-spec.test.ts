import { describe, expect, it } from 'vitest';
import type { ChannelRecord } from '../store/alerts.ts';
import { compileChannel, describeChannel } from './alert-channel-spec.ts';

const code = (f: () => unknown) => {
  try {
    f();
    return 'ok';
  } catch (error) {
    return `${(error as { code: string }).code} ${JSON.stringify((error as { details?: unknown }).details)}`;
  }
};

describe('compileChannel', () => {
  it('keeps the URL and secrets apart from what may be shown', () => {
    const channel = compileChannel(
      {
        name: 'd',
        type: 'dingtalk',
        url: 'https://oapi.dingtalk.com/robot/send?access_token=tok',
        secret: 'SEC1',
      },
      null,
    );
    expect(channel).toEqual({
      name: 'd',
      type: 'dingtalk',
      config: { urlOrigin: 'https://oapi.dingtalk.com', smtp: null },
      secrets: { url: 'https://oapi.dingtalk.com/robot/send?access_token=tok', secret: 'SEC1' },
    });
    const shown = JSON.stringify(
      describeChannel({ ...channel, id: 1, namespace: 'default', createdAt: 0, updatedAt: 0 }),
    );
    expect(shown).not.toContain('tok');
    expect(shown).not.toContain('SEC1');
    expect(shown).toContain('"secretSet":true');
  });

  it('refuses what a type does not take, and what it lacks', () => {
    expect(code(() => compileChannel({ name: 'w', type: 'wecom' }, null))).toBe(
      'INVALID_CHANNEL {"field":"url"}',
    );
    expect(
      code(() =>
        compileChannel({ name: 's', type: 'slack', url: 'https://hooks.slack.com/x', secret: 'k' }, null),
      ),
    ).toBe('INVALID_CHANNEL {"field":"secret"}');
    expect(code(() => compileChannel({ name: 'e', type: 'email', url: 'https://x.example' }, null))).toBe(
      'INVALID_CHANNEL {"field":"url"}',
    );
    expect(code(() => compileChannel({ name: 'e', type: 'email' }, null))).toBe(
      'INVALID_CHANNEL {"field":"smtp"}',
    );
    expect(
      code(() =>
        compileChannel(
          {
            name: 'e',
            type: 'email',
            smtp: { host: 'h', port: 25, password: 'p', from: 'a@b.c', to: ['d@e.f'] },
          },
          null,
        ),
      ),
    ).toBe('INVALID_CHANNEL {"field":"smtp.user"}');
  });

  it('a replacement without the URL, secret or password keeps the stored ones, of the same type only', () => {
    const stored: ChannelRecord = {
      id: 1,
      namespace: 'default',
      name: 'h',
      type: 'webhook',
      config: { urlOrigin: 'https://a.example', smtp: null },
      secrets: { url: 'https://a.example/hook', secret: 'k' },
      createdAt: 0,
      updatedAt: 0,
    };
    expect(compileChannel({ name: 'h', type: 'webhook' }, stored).secrets).toEqual(stored.secrets);
    expect(compileChannel({ name: 'h', type: 'webhook', secret: 'k2' }, stored).secrets).toEqual({
      url: 'https://a.example/hook',
      secret: 'k2',
    });
    expect(code(() => compileChannel({ name: 'h', type: 'slack' }, stored))).toBe(
      'INVALID_CHANNEL {"field":"url"}',
    );
    const mail = compileChannel(
      {
        name: 'm',
        type: 'email',
        smtp: { host: 'h', port: 465, user: 'u', password: 'p', from: 'a@b.c', to: ['d@e.f'] },
      },
      null,
    );
    expect(mail.config.smtp).toMatchObject({ secure: true, user: 'u' });
    const kept = compileChannel(
      { name: 'm', type: 'email', smtp: { host: 'h2', port: 587, user: 'u', from: 'a@b.c', to: ['d@e.f'] } },
      { ...mail, id: 2, namespace: 'default', createdAt: 0, updatedAt: 0 },
    );
    expect(kept).toMatchObject({
      secrets: { password: 'p' },
      config: { smtp: { host: 'h2', secure: false } },
    });
  });
});
