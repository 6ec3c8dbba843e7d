import { join } from 'node:path';
import type { WorkflowSpec } from '@kairos/client';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { firstScheduledFire } from '../core/fire-plan.ts';
import { compileWorkflow } from '../core/workflow.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import type { Store } from '../store/store.ts';
import { workflowJobName } from '../store/workflows.ts';
import { FakeClock } from './clock.ts';
import { JobService } from './job-service.ts';
import { TriggerLoop } from './trigger-loop.ts';

const dir = tempDir();
const logger = pino({ level: 'silent' });
let n = 0;
const stores: Store[] = [];

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

async function setup(spec: Partial<WorkflowSpec>, options: { fireAheadMs?: number } = {}) {
  const store = new SqliteStore(join(dir, `workflow-triggers-${n++}.db`));
  stores.push(store);
  await store.migrate();
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 0, 0, 0, 0));
  const definition = compileWorkflow({ name: 'wf', steps: [{ id: 'a', handler: 'h' }], ...spec });
  const now = clock.now();
  const { workflow } = await store.workflows.put(definition, 'default', now, undefined, {
    next: firstScheduledFire(definition.trigger, definition.schedule, now),
  });
  const loop = new TriggerLoop({
    store,
    clock,
    owner: 'node-a',
    logger,
    partitions: 1,
    partitionLeaseMs: 3000,
    misfireGraceMs: 60_000,
    ...options,
  });
  const instances = async () =>
    (await store.workflows.listInstances(workflow.id, undefined, 100)).reverse().map((i) => ({
      at: i.scheduledFor === null ? null : i.scheduledFor - Date.UTC(2026, 0, 1),
      cause: i.cause,
    }));
  return { store, clock, loop, workflow, instances };
}

// The trigger loop fires a workflow's job as any job (misfire, calendars, window, pause), and each
// fire starts an instance: the scheduling logic under a fake clock, on a real store.
describe('workflow triggers in the trigger loop', () => {
  it('an `every 1s` workflow starts one instance per fire, at its instant (never ahead)', async () => {
    const { clock, loop, instances } = await setup(
      { trigger: { kind: 'every', every: '1s' } },
      { fireAheadMs: 500 },
    );
    await loop.tick();
    expect(await instances()).toEqual([]);
    await clock.advance(600); // within fireAheadMs of the first fire: a job of `allow` would fire now
    await loop.tick();
    expect(await instances()).toEqual([]);
    await clock.advance(400);
    await loop.tick();
    await clock.advance(1000);
    await loop.tick();
    await loop.tick();
    expect(await instances()).toEqual([
      { at: 1000, cause: 'schedule' },
      { at: 2000, cause: 'schedule' },
    ]);
  });

  it('misfire skip after an outage: one late fire is missed into the ledger, the newest starts', async () => {
    const { store, clock, loop, workflow, instances } = await setup({
      trigger: { kind: 'every', every: '1m' },
      schedule: { misfire: { policy: 'run-once' } },
    });
    await clock.jump(5 * 60_000 + 100);
    await loop.tick();
    expect(await instances()).toEqual([{ at: 300_000, cause: 'schedule' }]);
    const ledger = await store.listSkipped(workflow.jobId, { limit: 10 });
    expect(ledger.map((s) => [s.reason, s.count])).toEqual([['misfire', 4]]);
  });

  it('overlap skip: fires while an instance runs go to the ledger, one range extended', async () => {
    const { store, clock, loop, workflow, instances } = await setup({
      trigger: { kind: 'every', every: '1s' },
      schedule: { overlap: 'skip' },
    });
    for (let i = 0; i < 4; i++) {
      await clock.advance(1000);
      await loop.tick();
    }
    expect(await instances()).toEqual([{ at: 1000, cause: 'schedule' }]);
    const ledger = await store.listSkipped(workflow.jobId, { limit: 10 });
    expect(ledger.map((s) => [s.reason, s.first - clock.now() + 4000, s.count])).toEqual([
      ['overlap', 2000, 3],
    ]);
  });

  it('overlap buffer-one: one fire is held, later ones go to the ledger; a pause keeps the held fire, and the end starts it', async () => {
    const { store, clock, loop, workflow, instances } = await setup({
      trigger: { kind: 'every', every: '1s' },
      schedule: { overlap: 'buffer-one' },
    });
    for (let i = 0; i < 4; i++) {
      await clock.advance(1000);
      await loop.tick();
    }
    expect(await instances()).toEqual([{ at: 1000, cause: 'schedule' }]);
    const ledger = await store.listSkipped(workflow.jobId, { limit: 10 });
    expect(ledger.map((s) => [s.reason, s.first - clock.now() + 4000, s.count])).toEqual([
      ['overlap', 3000, 2],
    ]);
    // Paused, the workflow fires nothing more; the fire held before the pause starts at the end.
    await new JobService(store, clock).setWorkflowPaused(workflowJobName('default', 'wf'), true);
    const [running] = await store.workflows.listInstances(workflow.id, undefined, 10);
    await store.workflows.cancelInstance(running!.id, clock.now());
    expect(await instances()).toEqual([
      { at: 1000, cause: 'schedule' },
      { at: 2000, cause: 'schedule' },
    ]);
    await clock.advance(3000);
    await loop.tick();
    expect(await instances()).toHaveLength(2);
  });

  it('paused through its job, it does not fire; the resume records the missed fires (paused)', async () => {
    const { store, clock, loop, workflow, instances } = await setup({
      trigger: { kind: 'every', every: '1s' },
    });
    const jobs = new JobService(store, clock);
    await jobs.setWorkflowPaused(workflowJobName('default', 'wf'), true);
    for (let i = 0; i < 3; i++) {
      await clock.advance(1000);
      await loop.tick();
    }
    expect(await instances()).toEqual([]);
    await clock.advance(500);
    await jobs.setWorkflowPaused(workflowJobName('default', 'wf'), false);
    const ledger = await store.listSkipped(workflow.jobId, { limit: 10 });
    expect(ledger.map((s) => [s.reason, s.count])).toEqual([['paused', 3]]);
    await clock.advance(500);
    await loop.tick();
    expect(await instances()).toEqual([{ at: 4000, cause: 'schedule' }]);
  });

  it('maxRuns counts instances: the workflow stops after them', async () => {
    const { clock, loop, instances } = await setup({
      trigger: { kind: 'every', every: '1s' },
      schedule: { maxRuns: 2 },
    });
    for (let i = 0; i < 4; i++) {
      await clock.advance(1000);
      await loop.tick();
    }
    expect(await instances()).toEqual([
      { at: 1000, cause: 'schedule' },
      { at: 2000, cause: 'schedule' },
    ]);
  });
});
