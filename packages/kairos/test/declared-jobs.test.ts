import type { JobSpec } from '@kairos/client';
import type { Worker } from '@kairos/worker';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestNode, testWorker } from './helpers.ts';

/**
 * Jobs declared next to their handlers: workers of two releases start together and again, and the
 * newest release's definition is the one that stays, written once.
 */
describe('jobs declared in worker code', async () => {
  const { node, admin } = await startTestNode();
  const workers: Worker[] = [];
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
  });
  const report = (cron: string): JobSpec => ({
    name: 'report',
    handler: 'send-report',
    trigger: { kind: 'cron', cron, timezone: 'UTC' },
  });
  const release = (revision: number, cron: string, token = 'admin-t') => {
    const worker = testWorker(node, 'reports', { jobs: { revision, token } })
      .handle('send-report', () => ({ sent: true }))
      .declare(report(cron));
    workers.push(worker);
    return worker;
  };

  it('the newest release wins whatever the order; an older one starting later changes nothing', async () => {
    // Two releases start at the same time, several workers each.
    await Promise.all([
      release(1, '0 8 * * *').start(),
      release(2, '0 9 * * *').start(),
      release(1, '0 8 * * *').start(),
      release(2, '0 9 * * *').start(),
    ]);
    const job = await admin.getJob('report');
    expect(job).toMatchObject({
      group: 'reports',
      owner: 'worker.reports',
      revision: 2,
      trigger: { cron: '0 9 * * *' },
    });

    // Restarts of either release: no write at all, the version stays.
    await release(1, '0 8 * * *').start();
    await release(2, '0 9 * * *').start();
    expect(await admin.getJob('report')).toEqual(job);

    // The next release changes it; an operator's pause survives it.
    await admin.pauseJob('report');
    await release(3, '0 10 * * *').start();
    expect(await admin.getJob('report')).toMatchObject({
      revision: 3,
      paused: true,
      trigger: { cron: '0 10 * * *' },
    });
  });

  it('the API refuses an older revision of the same owner with STALE_REVISION, and writes nothing', async () => {
    const before = await admin.getJob('report');
    const error = await admin
      .putJob({ ...report('0 7 * * *'), group: 'reports', owner: 'worker.reports', revision: 1 })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'STALE_REVISION', status: 409, details: { revision: 3 } });
    expect(await admin.getJob('report')).toEqual(before);
  });

  it('a token that may not write jobs fails the start, loudly', async () => {
    const worker = release(9, '0 11 * * *', 'worker-t');
    await expect(worker.start()).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect((await admin.getJob('report')).revision).toBe(3);
  });
});
