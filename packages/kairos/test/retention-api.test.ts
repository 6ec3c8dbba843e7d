import type { KairosClient } from '@kairos/client';
import { beforeAll, describe, expect, it } from 'vitest';
import type { KairosNode } from '../src/node.ts';
import { FakeClock } from '../src/scheduler/clock.ts';
import { apiError, startTestNode, testWorker } from './helpers.ts';
import { waitFor } from './processes.ts';

const T0 = Date.UTC(2026, 2, 28, 12);
const clock = new FakeClock(T0);
let node: KairosNode;
let admin: KairosClient;

beforeAll(async () => {
  ({ node, admin } = await startTestNode({ clock }, { retentionFinished: '1h', retentionInterval: '1m' }));
});

describe('retention through the API', () => {
  it('keeps a job’s own retention in ms; an update changes the fields it names', async () => {
    const job = await admin.createJob({
      name: 'kept',
      handler: 'h',
      trigger: { kind: 'manual' },
      retention: { finished: '2d', keepLast: 100 },
    });
    expect(job.retention).toEqual({ finished: 2 * 86_400_000, failed: null, keepLast: 100 });
    const updated = await admin.updateJob('kept', { retention: { failed: '30d' } });
    expect(updated.retention).toEqual({ finished: 2 * 86_400_000, failed: 30 * 86_400_000, keepLast: 100 });
    // null gives a field back to the node's default.
    const cleared = await admin.updateJob('kept', { retention: { finished: null, keepLast: null } });
    expect(cleared.retention).toEqual({ finished: null, failed: 30 * 86_400_000, keepLast: null });
    const plain = await admin.createJob({ name: 'plain', handler: 'h', trigger: { kind: 'manual' } });
    expect(plain.retention).toEqual({ finished: null, failed: null, keepLast: null });
  });

  it.each([
    ['an age under a minute', { finished: '30s' }, 'INVALID_DURATION'],
    ['an age over ten years', { failed: '4000d' }, 'INVALID_DURATION'],
    ['keepLast 0', { keepLast: 0 }, 'VALIDATION_FAILED'],
    ['keepLast not a whole number', { keepLast: 1.5 }, 'VALIDATION_FAILED'],
    ['an unknown field', { forever: true }, 'VALIDATION_FAILED'],
  ])('refuses %s and writes nothing', async (_what, retention, code) => {
    const error = await apiError(
      admin.createJob({
        name: 'bad',
        handler: 'h',
        trigger: { kind: 'manual' },
        retention: retention as never,
      }),
    );
    expect(error.code).toBe(code);
    expect((await apiError(admin.getJob('bad'))).code).toBe('JOB_NOT_FOUND');
  });

  it('prunes finished runs past the node’s retention and counts them in the metrics', {
    timeout: 180_000,
  }, async () => {
    await admin.createJob({ name: 'work', handler: 'work', trigger: { kind: 'manual' } });
    const worker = testWorker(node, 'default').handle('work', async () => 'ok');
    await worker.start();
    try {
      const runs = await admin.triggerJobBatch('work', [{}, {}, {}]);
      for (const id of runs.runIds)
        await waitFor(
          async () => (await admin.getRun(id)).status === 'succeeded',
          60_000,
          `run ${id} to succeed`,
        );
    } finally {
      await worker.stop();
    }
    await clock.advance(2 * 3_600_000);
    await waitFor(
      async () => (await admin.listRuns({ job: 'work' })).items.length === 1,
      60_000,
      'the pruner to delete the runs past retention',
    );
    expect((await admin.listRuns({ job: 'work' })).items).toHaveLength(1);
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    expect(metrics).toMatch(/kairos_pruned_rows_total\{kind="runs"\} 2/);
    expect(metrics).toMatch(/kairos_prune_last_timestamp_seconds \d+/);
  });

  it('Settings → Retention shows the node’s retention and what its pruner did', async () => {
    // A cycle of the test before pruned the two old runs of "work"; wait for the node to end its last cycle.
    let settings = await admin.retentionSettings();
    const settled = () => {
      const { lastCycle, nextCycleAt } = settings.pruner;
      return lastCycle && nextCycleAt && Date.parse(nextCycleAt) - Date.parse(lastCycle.endedAt) === 60_000;
    };
    for (let i = 0; i < 200 && !settled(); i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      settings = await admin.retentionSettings();
    }
    expect(settings).toMatchObject({
      enabled: true,
      intervalMs: 60_000,
      keep: { finishedMs: 3_600_000, failedMs: 90 * 86_400_000, logsMs: 7 * 86_400_000 },
      pruner: { nodeId: node.config.nodeId, heldLease: true },
    });
    const { lastCycle, lastTryAt, nextCycleAt } = settings.pruner;
    expect(settings.pruner.prunedSinceStart).toMatchObject({ runs: 2 });
    expect(Object.keys(lastCycle!.pruned).sort()).toEqual([
      'audit_log',
      'run_logs',
      'runs',
      'skipped_fires',
      'workers',
      'workflow_instances',
      'workflow_map_items',
    ]);
    expect(Date.parse(lastCycle!.endedAt)).toBeGreaterThanOrEqual(Date.parse(lastTryAt!));
    expect(Date.parse(nextCycleAt!) - Date.parse(lastCycle!.endedAt)).toBe(60_000);
    const viewer = await admin.createToken({ name: 'settings-viewer', role: 'viewer' });
    const response = await fetch(`${node.url}/v1/settings/retention`, {
      headers: { authorization: `Bearer ${viewer.token}` },
    });
    expect(response.status).toBe(200);
  });
});
