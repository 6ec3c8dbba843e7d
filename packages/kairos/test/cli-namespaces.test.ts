import { describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../src/cli/program.ts';
import { startTestNode } from './helpers.ts';

/** `kairos namespaces quotas` as a user types it, against a real node. */
describe('kairos namespaces quotas', async () => {
  const { node, admin } = await startTestNode();
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const kairos = (...args: string[]) =>
    buildProgram().parseAsync(['node', 'kairos', '--url', node.url, '--token', 'admin-t', '--json', ...args]);
  await admin.createNamespace({ name: 'cli-q' });

  it('sets the quotas the flags name and leaves the others unlimited; without flags shows them', async () => {
    await kairos(
      'namespaces',
      'quotas',
      'cli-q',
      '--max-jobs',
      '10',
      '--min-interval',
      '30s',
      '--max-fires-per-second',
      '0.5',
    );
    expect((await admin.getNamespace('cli-q')).quotas).toMatchObject({
      maxJobs: 10,
      minInterval: '30s',
      maxFiresPerSecond: 0.5,
      requestsPerSecond: null,
    });
    out.mockClear();
    await kairos('namespaces', 'quotas', 'cli-q');
    expect(JSON.parse(String(out.mock.calls[0]?.[0]))).toMatchObject({ maxJobs: 10, minInterval: '30s' });
    await kairos('namespaces', 'quotas', 'cli-q', '--requests-per-second', '50');
    expect((await admin.getNamespace('cli-q')).quotas).toMatchObject({
      maxJobs: null,
      requestsPerSecond: 50,
    });
  });

  it('refuses a value that is not a number', async () => {
    await expect(kairos('namespaces', 'quotas', 'cli-q', '--max-jobs', 'many')).rejects.toThrow(/--max-jobs/);
  });
});
