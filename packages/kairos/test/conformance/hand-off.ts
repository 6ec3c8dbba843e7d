import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob } from '../../src/core/job.ts';
import type { ClaimedRun, PollHandOff, Store, StoreEvent, WaitingPoll } from '../../src/store/store.ts';

/**
 * A trigger's hand-off to a waiting poll (Store.triggerRun with `handOff`): the run claimed for the
 * poll's worker in the trigger's transaction, given to the poll after the commit, and no event for
 * it. Run by `describeStoreConformance` on every dialect, unchanged.
 */
export function describeHandOffConformance(
  dialect: string,
  open: () => Promise<Store>,
  handsOff: boolean,
): void {
  describe(`Store conformance, a trigger's hand-off to a waiting poll: ${dialect}`, () => {
    let store: Store;
    let events: StoreEvent[];
    const T0 = Date.UTC(2026, 0, 1);

    beforeEach(async () => {
      store = await open();
      await store.migrate();
      events = [];
      store.subscribe((event) => {
        if (event.type === 'runs') events.push(event);
      });
    });
    afterEach(async () => {
      await store.close();
    });

    async function worker(id: string, labels: Record<string, string> = {}) {
      await store.registerWorker(
        { id, name: id, group: 'g', handlers: ['h'], capacity: 10, labels, version: 't', host: 'h' },
        60_000,
        T0,
      );
    }

    async function manualJob(name: string, extra: Partial<Parameters<typeof compileJob>[0]> = {}) {
      return store.createJob(
        compileJob({ name, handler: 'h', group: 'g', trigger: { kind: 'manual' }, ...extra }),
        null,
        T0,
      );
    }

    /** One poll of `workerId` that waits; records what it was given and the groups asked for. */
    function waiting(workerId: string, max = 5) {
      const given: ClaimedRun[][] = [];
      const asked: string[] = [];
      const poll: WaitingPoll = { workerId, max, seq: 7, random: 0, give: (runs) => given.push(runs) };
      let taken = false;
      const handOff: PollHandOff = {
        take: (group) => {
          asked.push(group);
          if (taken) return null;
          taken = true;
          return poll;
        },
      };
      return { handOff, given, asked };
    }

    /** Triggers job `name` now (T0 + 10 unless `at`), with `handOff`. */
    const trigger = (name: string, handOff: PollHandOff, at = T0 + 10) =>
      store.triggerRun(name, { params: null, priority: null }, at, undefined, undefined, handOff);

    if (!handsOff) {
      it('leaves the hand-off aside: the run queued, its event, no poll asked for', async () => {
        await worker('w1');
        await manualJob('now');
        const { handOff, given, asked } = waiting('w1');
        const run = await trigger('now', handOff);
        expect(run).toMatchObject({ status: 'queued', attempt: 0, workerId: null });
        expect(asked).toEqual([]);
        expect(given).toEqual([]);
        expect(events).toEqual([{ type: 'runs', group: 'g' }]);
      });
      return;
    }

    it('hands the run to the waiting poll in the trigger`s write: running, its worker`s, no event', async () => {
      await worker('w1');
      await manualJob('now', { params: { a: 1 } });
      const { handOff, given, asked } = waiting('w1');
      const run = await trigger('now', handOff);
      expect(asked).toEqual(['g']);
      expect(run).toMatchObject({ status: 'running', attempt: 1, workerId: 'w1', startedAt: T0 + 10 });
      expect(await store.getRun(run!.id)).toEqual(run);
      expect(given).toHaveLength(1);
      expect(given[0]).toMatchObject([
        { runId: run!.id, attempt: 1, jobName: 'now', handler: 'h', params: { a: 1 } },
      ]);
      expect(events).toEqual([]);
      // The poll's number is kept with the claim, as a poll's own claim keeps it: the heartbeat of a
      // worker that settled that poll without the run gives it back.
      const answer = await store.heartbeat('w1', [], 60_000, T0 + 20, 7);
      expect(answer?.unheld).toEqual([{ runId: run!.id, attempt: 1 }]);
      // Nothing is left for a claim of its own.
      expect(await store.claimRuns('w1', 5, T0 + 30)).toEqual([]);
    });

    it('takes the other ready runs of the poll`s group with it, up to what the poll asks for', async () => {
      await worker('w1');
      const created = await manualJob('many');
      const [older] = await store.enqueueRuns(created.id, [{ params: {}, priority: 0 }], T0);
      events.length = 0;
      const { handOff, given } = waiting('w1', 2);
      const run = await trigger('many', handOff);
      expect(given[0]!.map((c) => c.runId)).toEqual([older, run!.id]);
      // The poll took as many as it asked for: more may be ready, so the group's event goes out.
      expect(events).toEqual([{ type: 'runs', group: 'g' }]);
    });

    it('a poll of a worker that is gone gets nothing; the run stays queued and raises its event', async () => {
      await manualJob('nobody');
      const { handOff, given } = waiting('ghost');
      const run = await trigger('nobody', handOff);
      expect(run).toMatchObject({ status: 'queued', attempt: 0, workerId: null });
      expect(given).toEqual([[]]);
      expect(events).toEqual([{ type: 'runs', group: 'g' }]);
    });

    it('a run its routing keeps from the poll`s worker is not handed to it', async () => {
      await worker('w1', { region: 'us' });
      await manualJob('eu', { routing: { strategy: 'any', selector: { region: 'eu' } } });
      const { handOff, given } = waiting('w1');
      const run = await trigger('eu', handOff);
      expect(run).toMatchObject({ status: 'queued', workerId: null });
      expect(given).toEqual([[]]);
      expect(events).toEqual([{ type: 'runs', group: 'g' }]);
      await worker('w2', { region: 'eu' });
      expect(
        (await store.claimRuns('w1', 5, T0 + 20)).length +
          (await store.dispatchRuns('w2', 5, T0 + 20, 0)).length,
      ).toBe(1);
    });

    it('a broadcast`s first shard handed to its worker: the other shards` event still goes out', async () => {
      await worker('w1');
      await worker('w2');
      await manualJob('bc', { routing: { strategy: 'broadcast' } });
      const { handOff, given } = waiting('w1');
      const run = await trigger('bc', handOff);
      expect(run).toMatchObject({ shard: { index: 0, total: 2 }, status: 'running', workerId: 'w1' });
      expect(given[0]!.map((c) => c.runId)).toEqual([run!.id]);
      // Without it, w2's poll would wait for its backstop.
      expect(events).toEqual([{ type: 'runs', group: 'g' }]);
      expect((await store.dispatchRuns('w2', 5, T0 + 20, 0)).map((c) => c.shard)).toEqual([
        { index: 1, total: 2 },
      ]);
    });

    it('asks for no poll for a run triggered for later, nor for a key`s earlier run', async () => {
      await worker('w1');
      await manualJob('later');
      const { handOff, asked } = waiting('w1');
      const later = await store.triggerRun(
        'later',
        { params: null, priority: null, availableAt: T0 + 60_000 },
        T0 + 10,
        undefined,
        undefined,
        handOff,
      );
      expect(later).toMatchObject({ status: 'queued' });
      const keyed = await store.triggerRun(
        'later',
        { params: null, priority: null, idempotencyKey: 'k' },
        T0 + 10,
      );
      const again = await store.triggerRun(
        'later',
        { params: null, priority: null, idempotencyKey: 'k' },
        T0 + 20,
        undefined,
        undefined,
        handOff,
      );
      expect(again).toEqual(keyed);
      expect(asked).toEqual([]);
    });

    it('a trigger refused after the insert (a quota) gives the poll nothing and writes nothing', async () => {
      await worker('w1');
      const created = await manualJob('full');
      await store.enqueueRuns(created.id, [{ params: {}, priority: 0, availableAt: T0 + 60_000 }], T0);
      events.length = 0;
      const { handOff, given, asked } = waiting('w1');
      await expect(
        store.triggerRun('full', { params: null, priority: null }, T0 + 10, undefined, 1, handOff),
      ).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' });
      // Refused before a poll was taken, or given nothing when it was.
      expect(given).toEqual(asked.map(() => []));
      expect(await store.listRuns({ jobId: created.id, limit: 10 })).toHaveLength(1);
    });
  });
}
