import type { RunSummary } from '@kairos/client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestNode, testWorker } from './helpers.ts';

// Fire ahead end to end, runs held until their instant: cancelled, or given back at shutdown.
// A wide window (10 s) and quick heartbeats leave room to act before the instant.
const { node, admin } = await startTestNode({}, { fireAhead: '10s', heartbeat: '200ms' });

const at = (iso: string | null) => (iso === null ? Number.NaN : Date.parse(iso));

describe('runs held for their instant', () => {
  const calls: number[] = [];
  let held: ReturnType<typeof testWorker>;

  beforeAll(async () => {
    held = testWorker(node, 'held').handle('later', (ctx) => {
      calls.push(ctx.runId);
      return null;
    });
    await held.start();
  });
  afterAll(() => held.stop());

  /** A one-shot job firing `inMs` from now, and its run once a worker holds it. */
  async function heldRun(
    name: string,
    group: string,
    inMs: number,
  ): Promise<{ run: RunSummary; fire: number }> {
    const fire = Date.now() + inMs;
    const job = await admin.createJob({
      name,
      group,
      handler: 'later',
      trigger: { kind: 'at', at: new Date(fire).toISOString() },
    });
    const run = await vi.waitFor(
      async () => {
        const [found] = (await admin.listRuns({ job: job.name, limit: 1 })).items;
        expect(found?.status).toBe('running');
        return found!;
      },
      { timeout: 6000, interval: 20 },
    );
    return { run, fire };
  }

  it('a run cancelled before its instant ends without calling the handler', async () => {
    const { run, fire } = await heldRun('cancel-me', 'held', 8000);
    expect(at(run.startedAt)).toBe(fire);
    await vi.waitFor(() => expect(held.held).toBe(1), { timeout: 6000, interval: 10 });
    await admin.cancelRun(run.id);
    // The next heartbeat answer tells the worker; it drops the run, well before the instant.
    await vi.waitFor(() => expect(held.held).toBe(0), { timeout: 6000, interval: 10 });
    expect(Date.now()).toBeLessThan(fire);
    expect(calls).toEqual([]);
    expect((await admin.getRun(run.id)).status).toBe('cancelled');
  });

  it('a worker that stops before the instant gives the run back for its instant', async () => {
    const leaving = testWorker(node, 'leaving', { shutdownGraceMs: 300 }).handle('later', () => null);
    await leaving.start();
    const { run, fire } = await heldRun('give-back', 'leaving', 8000);
    await vi.waitFor(() => expect(leaving.held).toBe(1), { timeout: 6000, interval: 10 });
    await leaving.stop();
    const back = await admin.getRun(run.id);
    expect(Date.now()).toBeLessThan(fire);
    expect(back).toMatchObject({ status: 'queued', attempt: 1, fireTime: new Date(fire).toISOString() });
    // Retried from its instant on, not before.
    expect(at(back.availableAt)).toBeGreaterThanOrEqual(fire);
    expect(back.attempts?.[0]).toMatchObject({ status: 'failed', error: { name: 'WorkerShutdown' } });
  });
});
