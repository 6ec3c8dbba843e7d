import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestNode, testWorker } from './helpers.ts';

// Pausing a job while an SDK worker holds runs fired ahead of their instant (issue #13, defect 3).
// Heartbeats every 3 s: a worker hears of a change to what it holds up to 3 s late, after the
// instant of a run it holds (fire ahead 3 s). A pause must not count on it hearing in time.
const { node, admin } = await startTestNode({}, { fireAhead: '3s', heartbeat: '3s', workerLease: '10s' });

const WAIT = { timeout: 30_000, interval: 20 };

describe('a pause while a worker holds runs fired ahead', () => {
  /** Every execution of a handler. */
  const calls: Array<{ job: string; runId: number; fire: number }> = [];
  let worker: ReturnType<typeof testWorker>;

  beforeAll(async () => {
    worker = testWorker(node, 'pause', { prefetch: 4 }).handle('tick', (ctx) => {
      calls.push({ job: ctx.jobName, runId: ctx.runId, fire: ctx.fireTime!.getTime() });
      return null;
    });
    await worker.start();
  });
  afterAll(() => worker.stop());

  /**
   * A per-second job, once the worker holds a run of it due 100 ms to 1.5 s from now, less than a
   * second after the worker's last heartbeat (so its next one comes after that instant): answers
   * that run's instant.
   */
  async function heldSoon(name: string): Promise<number> {
    await admin.createJob({ name, group: 'pause', handler: 'tick', trigger: { kind: 'every', every: '1s' } });
    return vi.waitFor(async () => {
      const me = (await admin.listWorkers()).items.find((w) => w.group === 'pause');
      const running = (await admin.listRuns({ job: name, status: 'running', limit: 20 })).items;
      const now = Date.now();
      const soon = running
        .map((run) => Date.parse(run.startedAt!))
        .filter((at) => at > now + 100 && at < now + 1500);
      expect(now - Date.parse(me!.lastHeartbeatAt)).toBeLessThan(1000);
      expect(soon.length).toBeGreaterThan(0);
      return Math.min(...soon);
    }, WAIT);
  }

  /** Each execution of the job is one of its runs in the store, and no instant ran twice. */
  async function checkExecutions(job: string) {
    const runs = (await admin.listRuns({ job, limit: 200 })).items;
    const fires = runs.map((r) => Date.parse(r.fireTime!));
    expect(fires).toEqual([...new Set(fires)]);
    const executed = calls.filter((c) => c.job === job);
    const instants = executed.map((c) => c.fire);
    expect(instants).toEqual([...new Set(instants)]);
    for (const call of executed) expect(runs.map((r) => r.id)).toContain(call.runId);
    return { runs, executed };
  }

  it('pause and resume at once, before the held instant: the held run runs once and its instant is not fired again', async () => {
    const instant = await heldSoon('quick');
    await admin.pauseJob('quick');
    await admin.resumeJob('quick');
    // Past the instant, the worker's next heartbeat (3 s) and a few fires after it.
    await vi.waitFor(
      () => expect(calls.some((c) => c.job === 'quick' && c.fire >= instant + 4000)).toBe(true),
      WAIT,
    );
    await admin.pauseJob('quick');
    const { executed } = await checkExecutions('quick');
    expect(executed.filter((c) => c.fire === instant)).toHaveLength(1);
  }, 60_000);

  it('pause, the held run runs at its instant, resume: the run is kept, and the ledger never names an instant that ran', async () => {
    const instant = await heldSoon('slow');
    await admin.pauseJob('slow');
    await vi.waitFor(
      () => expect(calls.some((c) => c.job === 'slow' && c.fire === instant)).toBe(true),
      WAIT,
    );
    const ran = calls.find((c) => c.job === 'slow' && c.fire === instant)!;
    await vi.waitFor(async () => expect((await admin.getRun(ran.runId)).status).toBe('succeeded'), WAIT);
    await admin.resumeJob('slow');
    await admin.pauseJob('slow');
    const { executed } = await checkExecutions('slow');
    const { items: skipped } = await admin.listSkipped('slow');
    for (const range of skipped) {
      for (const call of executed)
        expect(
          call.fire < Date.parse(range.firstFireTime) || call.fire > Date.parse(range.lastFireTime),
        ).toBe(true);
    }
  }, 60_000);
});
