import { describe, expect, it } from 'vitest';
import { startTestNode, testWorker } from './helpers.ts';
import { waitFor } from './processes.ts';

/** `GET /v1/runs/:id` tells why a queued run waits, from the live workers of the cluster. */
describe('why a queued run waits, on its detail', async () => {
  const { node, admin } = await startTestNode();

  it('no live worker in its group, then none that declares its handler', async () => {
    await admin.createJob({ name: 'stranded', handler: 'h', group: 'lonely', trigger: { kind: 'manual' } });
    const run = await admin.triggerJob('stranded');
    expect((await admin.getRun(run.id)).waiting).toEqual({
      reason: 'no_live_worker_in_group',
      message: 'no live worker in group lonely',
    });
    const other = testWorker(node, 'lonely').handle('x', async () => 'ok');
    await other.start();
    try {
      expect((await admin.getRun(run.id)).waiting).toEqual({
        reason: 'no_live_worker_for_handler',
        message: 'no live worker in group lonely declares handler h',
      });
    } finally {
      await other.stop();
    }
  });

  it('all slots busy while the worker runs its capacity; an ended run has no reason', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const worker = testWorker(node, 'busy', { concurrency: 1 }).handle('slow', async () => {
      await held;
      return 'ok';
    });
    await worker.start();
    try {
      await admin.createJob({ name: 'slow', handler: 'slow', group: 'busy', trigger: { kind: 'manual' } });
      const first = await admin.triggerJob('slow');
      await waitFor(
        async () => (await admin.getRun(first.id)).status === 'running',
        30_000,
        'the first run started',
      );
      const second = await admin.triggerJob('slow');
      expect((await admin.getRun(second.id)).waiting).toMatchObject({ reason: 'all_slots_busy' });
      release();
      await waitFor(
        async () => (await admin.getRun(second.id)).status === 'succeeded',
        30_000,
        'the second run succeeded',
      );
      expect((await admin.getRun(second.id)).waiting).toBeUndefined();
    } finally {
      release();
      await worker.stop();
    }
  });
});
