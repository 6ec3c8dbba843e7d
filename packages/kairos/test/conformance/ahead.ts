import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob } from '../../src/core/job.ts';
import type { Store } from '../../src/store/store.ts';

/**
 * The fire-ahead part of the store conformance suite (`Store.dispatchAhead`), run by
 * `describeStoreConformance` on every dialect, unchanged.
 */
export function describeFireAheadConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, fire ahead: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);
    const F = T0 + 1000;
    const LEASE = 5000;

    beforeEach(async () => {
      store = await open();
      await store.migrate();
    });
    afterEach(async () => {
      await store.close();
    });

    async function worker(id = 'w1', group = 'default') {
      await store.registerWorker(
        { id, name: id, group, handlers: ['h'], capacity: 10, labels: {}, version: 't', host: 'h' },
        LEASE,
        T0,
      );
    }

    /** A job (every second, timeout 2 s) fired ahead: runs of `fires`, available at each fire time. */
    async function firedAhead(
      name: string,
      fires: number[],
      extra: Partial<Parameters<typeof compileJob>[0]> = {},
    ) {
      const created = await store.createJob(
        compileJob({ name, handler: 'h', trigger: { kind: 'every', every: '1s' }, timeout: '2s', ...extra }),
        fires[0]!,
        T0,
      );
      await store.fire(
        [{ jobId: created.id, expected: fires[0]!, next: fires[fires.length - 1]! + 1000, fires }],
        null,
        T0,
      );
      return created;
    }

    it('a run fired ahead is not claimable before its instant without ahead; then it is', async () => {
      await firedAhead('a', [F]);
      await worker();
      expect(await store.dispatchRuns('w1', 10, F - 1, 0)).toEqual([]);
      expect(await store.dispatchRuns('w1', 10, F, 0)).toMatchObject([{ fireTime: F }]);
    });

    it('claims up to max runs due in (now, until], soonest first, each starting at its instant', async () => {
      const a = await firedAhead('a', [F, F + 1000, F + 2000]);
      await firedAhead('b', [F + 200]);
      await worker();
      const now = F - 400;
      const claimed = await store.dispatchAhead('w1', 2, F + 1500, now);
      expect(claimed.map((c) => [c.jobName, c.fireTime, c.startAt])).toEqual([
        ['a', F, F],
        ['b', F + 200, F + 200],
      ]);
      // The count bound held: a's run at F + 1000 is within the window but was not taken.
      const again = await store.dispatchAhead('w1', 5, F + 1500, now);
      expect(again.map((c) => [c.fireTime, c.startAt])).toEqual([[F + 1000, F + 1000]]);
      // Beyond the window (F + 2000) and already claimed runs: nothing more.
      expect(await store.dispatchAhead('w1', 5, F + 1500, now)).toEqual([]);
      const runs = await store.listRuns({ jobId: a.id, limit: 10 });
      expect(runs.map((r) => [r.fireTime, r.status, r.startedAt]).sort()).toEqual([
        [F, 'running', F],
        [F + 1000, 'running', F + 1000],
        [F + 2000, 'queued', null],
      ]);
      expect(await store.getAttempts(claimed[0]!.runId)).toMatchObject([
        { attempt: 1, workerId: 'w1', status: 'running', startedAt: F },
      ]);
    });

    it('counts the deadline from the start instant; the attempt lives on the worker’s lease', async () => {
      await firedAhead('a', [F]);
      await firedAhead('long', [F], { timeout: '1h' });
      await worker();
      const claimed = await store.dispatchAhead('w1', 2, F, F - 500);
      const [a, long] = ['a', 'long'].map((name) => claimed.find((c) => c.jobName === name)!.runId);
      // Timeout 2 s from F, not from the claim at F − 500.
      expect(await store.expiredAttempts(F + 1999, 10)).toEqual([]);
      expect(await store.expiredAttempts(F + 2000, 10)).toMatchObject([{ runId: a, reason: 'timed_out' }]);
      // Without heartbeats, the worker's lease runs out, and the attempt with it.
      const lost = await store.expiredAttempts(F - 500 + LEASE, 10);
      expect(lost.find((x) => x.runId === long)).toMatchObject({ reason: 'lost' });
    });

    it('answers when the next queued run of the worker’s group becomes available', async () => {
      await firedAhead('a', [F, F + 1000]);
      await firedAhead('other', [F - 200], { group: 'g2' });
      await worker();
      expect(await store.nextAvailableAt('w1', F - 500)).toBe(F);
      expect(await store.nextAvailableAt('w1', F)).toBe(F + 1000);
      await store.dispatchAhead('w1', 1, F + 1000, F);
      // Claimed runs wait for nobody.
      expect(await store.nextAvailableAt('w1', F)).toBeNull();
      expect(await store.nextAvailableAt('nobody', F - 500)).toBeNull();
    });

    it('answers whether a queued run of a group is available by an instant, whichever worker may take it', async () => {
      await firedAhead('a', [F, F + 1000]);
      await firedAhead('other', [F - 200], { group: 'g2' });
      expect(await store.hasQueuedRuns('default', F - 1)).toBe(false);
      expect(await store.hasQueuedRuns('default', F)).toBe(true);
      expect(await store.hasQueuedRuns('g2', F - 200)).toBe(true);
      expect(await store.hasQueuedRuns('nobody', F + 5000)).toBe(false);
      // A claimed run is no longer queued: only the later one is left.
      await worker();
      await store.dispatchAhead('w1', 1, F, F - 500);
      expect(await store.hasQueuedRuns('default', F + 999)).toBe(false);
      expect(await store.hasQueuedRuns('default', F + 1000)).toBe(true);
    });

    it('a poll’s claim answers the next available instant when it takes nothing', async () => {
      await firedAhead('a', [F, F + 1000]);
      await firedAhead('other', [F - 200], { group: 'g2' });
      await worker();
      // Nothing ready before F: nothing claimed, and when the first run becomes available.
      expect(await store.dispatchForPoll('w1', 10, F - 500, 0)).toEqual({
        runs: [],
        nextAvailableAt: F,
      });
      // Ready at F: claimed as dispatchRuns would, and no instant.
      const ready = await store.dispatchForPoll('w1', 10, F, 0);
      expect(ready).toMatchObject({ runs: [{ fireTime: F, attempt: 1 }], nextAvailableAt: null });
      expect(await store.dispatchForPoll('w1', 10, F, 0)).toEqual({
        runs: [],
        nextAvailableAt: F + 1000,
      });
      await store.dispatchAhead('w1', 1, F + 1000, F);
      expect(await store.dispatchForPoll('w1', 10, F, 0)).toEqual({ runs: [], nextAvailableAt: null });
      await expect(store.dispatchForPoll('nobody', 10, F, 0)).rejects.toMatchObject({
        code: 'WORKER_NOT_FOUND',
      });
    });

    it('passes over runs due now, runs with dispatch policies, limited groups and draining workers', async () => {
      await firedAhead('due', [F - 100]);
      await firedAhead('routed', [F], { routing: { strategy: 'round-robin' } });
      await firedAhead('limited', [F + 1], { maxConcurrency: 2 });
      await firedAhead('other', [F + 2], { group: 'g2' });
      await worker('w1');
      await worker('w2', 'g2');
      await store.setGroupLimit('g2', { maxConcurrency: 5, rateLimit: null }, T0);
      expect(await store.dispatchAhead('w1', 10, F + 500, F - 50)).toEqual([]);
      expect(await store.dispatchAhead('w2', 10, F + 500, F - 50)).toEqual([]);
      await firedAhead('plain', [F + 3]);
      await store.drainWorker('w1', F - 50);
      expect(await store.dispatchAhead('w1', 10, F + 500, F - 50)).toEqual([]);
      expect(await store.dispatchAhead('nobody', 10, F + 500, F - 50)).toEqual([]);
    });

    const paused = (name: string) =>
      compileJob({
        name,
        handler: 'h',
        trigger: { kind: 'every', every: '1s' },
        timeout: '2s',
        paused: true,
      });

    it('a pause withdraws the fires made ahead that no worker holds, keeps the one a worker holds, and rewinds the next fire past it', async () => {
      const a = await firedAhead('a', [F, F + 1000, F + 2000]);
      await worker();
      const [held] = await store.dispatchAhead('w1', 1, F + 500, F - 100);
      expect(held).toMatchObject({ fireTime: F, startAt: F });
      await store.updateJob(a.id, paused('a'), F + 3000, F - 90);
      expect(await store.withdrawFiresAhead(a.id, F - 90)).toBe(2);
      // The next fire is the earliest withdrawn one, never the instant of the held run.
      expect((await store.getJob('a'))!.nextFireAt).toBe(F + 1000);
      const left = await store.listRuns({ jobId: a.id, limit: 10 });
      expect(left.map((run) => [run.fireTime, run.status, run.workerId])).toEqual([[F, 'running', 'w1']]);
      // The worker keeps it: the heartbeat cancels nothing, and the run starts at its instant.
      const ref = { runId: held!.runId, attempt: held!.attempt };
      expect((await store.heartbeat('w1', [ref], LEASE, F - 40))?.cancel).toEqual([]);
      expect(await store.withdrawFiresAhead(a.id, F - 40)).toBe(0);
      // Nothing is claimable any more: no worker can be handed a withdrawn fire.
      expect(await store.dispatchAhead('w1', 10, F + 3000, F - 40)).toEqual([]);
    });

    it('a pause withdraws no fire earlier than one that has a run it keeps: the next fire never points at or before a kept run', async () => {
      const a = await firedAhead('a', [F, F + 1000, F + 2000, F + 3000]);
      await worker();
      // The run of F + 1000 is held while the one of F is still queued (F is not ahead at F).
      const [held] = await store.dispatchAhead('w1', 1, F + 1500, F);
      expect(held).toMatchObject({ fireTime: F + 1000 });
      await store.updateJob(a.id, paused('a'), F + 4000, F - 90);
      expect(await store.withdrawFiresAhead(a.id, F - 90)).toBe(2);
      expect((await store.getJob('a'))!.nextFireAt).toBe(F + 2000);
      const left = await store.listRuns({ jobId: a.id, limit: 10 });
      expect(left.map((run) => [run.fireTime, run.status]).sort()).toEqual([
        [F, 'queued'],
        [F + 1000, 'running'],
      ]);
    });

    it('a pause racing with claims ahead: a claimed run is never deleted, every fire is either held or withdrawn', async () => {
      await worker();
      for (let round = 0; round < 8; round++) {
        const fires = [F, F + 1000, F + 2000, F + 3000, F + 4000];
        const a = await firedAhead(`race-${round}`, fires);
        await store.updateJob(a.id, paused(`race-${round}`), F + 5000, F - 100);
        const [claimed, withdrawn] = await Promise.all([
          store.dispatchAhead('w1', 1 + (round % 5), F + 5000, F - 100),
          store.withdrawFiresAhead(a.id, F - 100),
        ]);
        const mine = claimed.filter((c) => c.jobName === `race-${round}`);
        const left = await store.listRuns({ jobId: a.id, limit: 10 });
        for (const c of mine)
          expect(left.find((run) => run.id === c.runId)).toMatchObject({ status: 'running', workerId: 'w1' });
        expect(left.length + withdrawn).toBe(fires.length);
        const next = (await store.getJob(`race-${round}`))!.nextFireAt!;
        for (const run of left) expect(run.fireTime!).toBeLessThan(next);
      }
    });

    it('a pause keeps runs that started, fires due before the cutoff and runs not made by the schedule', async () => {
      const a = await firedAhead('a', [F, F + 1000, F + 2000]);
      await store.enqueueRuns(a.id, [{ params: {}, priority: 0 }], F);
      await worker();
      expect(await store.dispatchRuns('w1', 1, F, 0)).toMatchObject([{ fireTime: F }]);
      await store.updateJob(a.id, paused('a'), F + 3000, F + 10);
      expect(await store.withdrawFiresAhead(a.id, F + 1500)).toBe(1);
      expect((await store.getJob('a'))!.nextFireAt).toBe(F + 2000);
      const left = await store.listRuns({ jobId: a.id, limit: 10 });
      expect(left.map((run) => run.fireTime).sort()).toEqual([F, F + 1000, null].sort());
    });
  });
}
