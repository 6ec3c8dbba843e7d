import { afterAll, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../src/cli/program.ts';
import { Receiver, verifyFeishu } from './alert-receiver.ts';
import { startTestNode } from './helpers.ts';

/** `kairos channels …` and `kairos alerts …` as a user types them, against a real node. */
describe('kairos channels and kairos alerts', async () => {
  const { node, admin } = await startTestNode();
  const receiver = await new Receiver().start();
  afterAll(() => receiver.stop());
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  const kairos = (...args: string[]) =>
    buildProgram().parseAsync(['node', 'kairos', '--url', node.url, '--token', 'admin-t', ...args]);

  it('puts a signed Feishu channel with its secret from the environment, and sends a test through it', async () => {
    process.env.FEISHU_SECRET = 'SEC-from-env';
    try {
      await kairos(
        'channels',
        'put',
        'lark',
        '--type',
        'feishu',
        '--webhook',
        `${receiver.url}/open-apis/bot/v2/hook/t1`,
        '--secret-env',
        'FEISHU_SECRET',
      );
    } finally {
      delete process.env.FEISHU_SECRET;
    }
    expect(await admin.getAlertChannel('lark')).toMatchObject({ type: 'feishu', secretSet: true });
    await kairos('channels', 'test', 'lark');
    const [got] = await receiver.until(1);
    expect(verifyFeishu(got!, 'SEC-from-env')).toBe(true);
    log.mockClear();
    await kairos('channels', 'list');
    const printed = log.mock.calls.flat().join('\n');
    expect(printed).toContain('lark');
    expect(printed).not.toContain('t1');
  });

  it('puts rules of each kind from flags', async () => {
    // A rule scoped to a job names a job that exists.
    await admin.createJob({ name: 'billing', handler: 'h', trigger: { kind: 'manual' } });
    await kairos(
      'alerts',
      'put',
      'stuck',
      '--kind',
      'run-queued',
      '--threshold',
      '5m',
      '--unroutable-only',
      '--group',
      'etl',
      '--channel',
      'lark',
    );
    await kairos(
      'alerts',
      'put',
      'streak',
      '--kind',
      'consecutive-failures',
      '--count',
      '3',
      '--job',
      'billing',
      '--channel',
      'lark',
      '--window',
      '30m',
    );
    await kairos(
      'alerts',
      'put',
      'skips',
      '--kind',
      'fire-skipped',
      '--reason',
      'misfire',
      '--reason',
      'overlap',
      '--channel',
      'lark',
    );
    expect((await admin.listAlertRules()).items).toMatchObject([
      { name: 'skips', kind: 'fire-skipped', reasons: ['misfire', 'overlap'], job: null, group: null },
      { name: 'streak', kind: 'consecutive-failures', count: 3, job: 'billing', window: 1_800_000 },
      { name: 'stuck', kind: 'run-queued', threshold: 300_000, unroutableOnly: true, group: 'etl' },
    ]);
    await kairos('alerts', 'silence', 'add', '--rule', 'stuck', '--for', '2h', '--comment', 'deploy');
    expect((await admin.listAlertSilences()).items).toMatchObject([{ rule: 'stuck', comment: 'deploy' }]);
    await kairos('alerts', 'delete', 'skips');
    expect((await admin.listAlertRules()).items.map((r) => r.name)).toEqual(['streak', 'stuck']);
  });
});
