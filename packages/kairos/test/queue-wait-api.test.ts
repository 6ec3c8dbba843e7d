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

  it('a run no live worker can take says which resource it lacks, a workflow step by its own request; workers show what their runs use', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const worker = testWorker(node, 'ml', {
      concurrency: 4,
      resources: { cpu: 2, memory: '1Gi', gpu: 1 },
    }).handle('train', async () => {
      await held;
      return 'ok';
    });
    await worker.start();
    try {
      await admin.createJob({
        name: 'train-big',
        handler: 'train',
        group: 'ml',
        trigger: { kind: 'manual' },
        resources: { gpu: 2 },
      });
      const big = await admin.getRun((await admin.triggerJob('train-big')).id);
      expect(big.resources).toEqual({ gpu: 2 });
      expect(big.waiting).toEqual({
        reason: 'no_worker_with_resources',
        message:
          'no live worker in group ml declaring handler train has gpu 2 in all (short of the largest: gpu 1)',
        resources: { request: { gpu: 2 }, missing: { gpu: 1 } },
      });

      // A workflow step's run: its own request, not its job's (the workflow's, which requests nothing).
      await admin.putWorkflow({
        name: 'ml-flow',
        steps: [{ id: 'fit', handler: 'train', group: 'ml', resources: { cpu: 4, memory: '512Mi' } }],
      });
      const instance = await admin.startWorkflow('ml-flow');
      const stepRun = await waitFor(
        async () => (await admin.getWorkflowInstance(instance.id)).steps[0]?.runId ?? undefined,
        30_000,
        'the step run queued',
      );
      const step = await admin.getRun(stepRun);
      expect(step.resources).toEqual({ cpu: 4, memory: 512 * 2 ** 20 });
      expect(step.waiting).toMatchObject({
        reason: 'no_worker_with_resources',
        resources: { request: { cpu: 4, memory: 512 * 2 ** 20 }, missing: { cpu: 2 } },
      });

      // A run that fits: while it runs, the worker shows what it uses next to what it has.
      await admin.createJob({
        name: 'train-small',
        handler: 'train',
        group: 'ml',
        trigger: { kind: 'manual' },
        resources: { cpu: 1.5, memory: '256Mi' },
      });
      const small = await admin.triggerJob('train-small');
      await waitFor(
        async () => (await admin.getRun(small.id)).status === 'running',
        30_000,
        'the small run started',
      );
      const [info] = (await admin.listWorkers()).items.filter((w) => w.group === 'ml');
      expect(info).toMatchObject({
        resources: { cpu: 2, memory: 2 ** 30, gpu: 1 },
        resourcesInUse: { cpu: 1.5, memory: 256 * 2 ** 20 },
      });
      await admin.cancelRun(big.id);
      await admin.cancelRun(stepRun);
    } finally {
      release();
      await worker.stop();
    }
  });
});
