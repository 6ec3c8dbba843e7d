import type { JsonObject } from '@kairos/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob, type JobDefinition } from '../../src/core/job.ts';
import { decideOutcome } from '../../src/core/outcome.ts';
import { compileWorkflow } from '../../src/core/workflow.ts';
import type { ClaimedRun, Store } from '../../src/store/store.ts';

const RETRY_NONE = {
  maxAttempts: 1,
  backoff: 'fixed' as const,
  delay: 0,
  maxDelay: 0,
  jitter: false,
  nonRetryable: [],
};

/**
 * The dependencies part of the store conformance suite (docs/schedules.md#dependencies): the
 * `after` chain checked in the write, a broadcast parent that sets off its children once, a paused
 * child's ledger row, and broadcast or paused jobs as workflow `job` steps. Run by
 * `describeStoreConformance` on every dialect, unchanged.
 */
export function describeDependenciesConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, dependencies: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);

    beforeEach(async () => {
      store = await open();
      await store.migrate();
    });
    afterEach(async () => {
      await store.close();
    });

    const job = (name: string, extra: Partial<Parameters<typeof compileJob>[0]> = {}): JobDefinition =>
      compileJob({ name, handler: 'h', trigger: { kind: 'manual' }, ...extra });

    async function workers(...ids: string[]) {
      for (const id of ids) {
        await store.registerWorker(
          {
            id,
            name: id,
            group: 'default',
            handlers: ['h'],
            capacity: 10,
            labels: {},
            version: 't',
            host: 'h',
          },
          3_600_000,
          T0,
        );
      }
    }

    /** Worker `id` takes what is assigned to it (or free) and ends it as `ok` says, with `result`. */
    async function runAs(id: string, now: number, ok: boolean, result: JsonObject | null = null) {
      const claimed = await store.dispatchRuns(id, 10, now, 0);
      await store.finishAttempts(
        claimed.map((c) => ({
          ...decideOutcome(
            RETRY_NONE,
            c.attempt,
            ok
              ? { kind: 'succeeded', result }
              : { kind: 'failed', name: 'Error', error: { name: 'Error', message: 'boom' } },
            now,
            0,
          ),
          runId: c.runId,
          attempt: c.attempt,
          group: 'default',
        })),
        now,
      );
      return claimed;
    }

    const queuedOf = async (name: string) =>
      (await store.listRuns({ status: 'queued', limit: 50 })).filter((r) => r.jobName === name);
    const children = async () =>
      (await store.listRuns({ status: 'queued', limit: 50 })).filter((r) => r.jobName !== 'bc');

    it('refuses an `after` chain that leads back to the job in the write itself, and stores nothing', async () => {
      await store.createJob(job('a', { trigger: { kind: 'after', job: 'c' } }), null, T0);
      await store.createJob(job('b', { trigger: { kind: 'after', job: 'a' } }), null, T0);
      await expect(
        store.createJob(job('c', { trigger: { kind: 'after', job: 'b' } }), null, T0),
      ).rejects.toMatchObject({ code: 'DEPENDENCY_CYCLE', details: { cycle: ['c', 'b', 'a', 'c'] } });
      await expect(
        store.createJob(job('self', { trigger: { kind: 'after', job: 'self' } }), null, T0),
      ).rejects.toMatchObject({ code: 'DEPENDENCY_CYCLE' });
      expect(await store.getJob('c')).toBeNull();
      // An edit that closes the chain is refused too; the job stays as it was.
      const c = await store.createJob(job('c'), null, T0);
      await expect(
        store.updateJob(c.id, job('c', { trigger: { kind: 'after', job: 'b' } }), null, T0 + 1),
      ).rejects.toMatchObject({ code: 'DEPENDENCY_CYCLE' });
      expect((await store.getJob('c'))?.trigger).toEqual({ kind: 'manual' });
      // A chain within another namespace is its own: `c` of red is another job.
      await store.createJob(job('red-x', { trigger: { kind: 'after', job: 'a' } }), null, T0, 'red');
    });

    it('a paused child gets no run from its parent’s end but a ledger row, reason paused, that later ends extend', async () => {
      const parent = await store.createJob(job('parent'), null, T0);
      const child = await store.createJob(
        job('child', { trigger: { kind: 'after', job: 'parent', on: 'always' }, paused: true }),
        null,
        T0,
      );
      await workers('w1');
      await store.enqueueRuns(parent.id, [{ params: {}, priority: 0 }], T0);
      await runAs('w1', T0 + 10, true);
      await store.enqueueRuns(parent.id, [{ params: {}, priority: 0 }], T0 + 20);
      await runAs('w1', T0 + 30, false);
      expect(await queuedOf('child')).toEqual([]);
      expect(await store.listSkipped(child.id, { limit: 10 })).toMatchObject([
        { reason: 'paused', first: T0 + 10, last: T0 + 30, count: 2 },
      ]);
      // Resumed, then paused again: a new row for the new pause.
      const resumed = await store.updateJob(child.id, { ...child, paused: false }, null, T0 + 40);
      await store.updateJob(child.id, { ...resumed!, paused: true }, null, T0 + 50);
      await store.enqueueRuns(parent.id, [{ params: {}, priority: 0 }], T0 + 60);
      await runAs('w1', T0 + 70, true);
      expect((await store.listSkipped(child.id, { limit: 10 })).map((s) => [s.first, s.count])).toEqual([
        [T0 + 70, 1],
        [T0 + 10, 2],
      ]);
    });

    it('the jobs after a broadcast job run once, when its last shard ends, judged on the whole broadcast', async () => {
      const parent = await store.createJob(job('bc', { routing: { strategy: 'broadcast' } }), null, T0);
      for (const [name, on] of [
        ['on-success', 'success'],
        ['on-failure', 'failure'],
        ['always', 'always'],
      ] as const) {
        await store.createJob(job(name, { trigger: { kind: 'after', job: 'bc', on } }), null, T0);
      }
      await workers('w1', 'w2', 'w3');
      const [first] = await store.enqueueRuns(parent.id, [{ params: {}, priority: 0 }], T0);
      expect(await store.listRuns({ jobId: parent.id, limit: 10 })).toHaveLength(3);
      await runAs('w2', T0 + 10, true, { n: 2 });
      await runAs('w1', T0 + 20, true, { n: 1 });
      expect(await children()).toEqual([]);
      await runAs('w3', T0 + 30, true, { n: 3 });
      const queued = await children();
      expect(queued.map((r) => r.jobName).sort()).toEqual(['always', 'on-success']);
      expect(queued.find((r) => r.jobName === 'on-success')!.params).toEqual({
        parent: {
          job: 'bc',
          runId: first,
          status: 'succeeded',
          result: [{ n: 1 }, { n: 2 }, { n: 3 }],
        },
      });
      for (const child of queued) await store.cancelRun(child.id, T0 + 40);
      // One failed shard fails the broadcast; a cancelled one alone cancels it.
      const [second] = await store.enqueueRuns(parent.id, [{ params: {}, priority: 0 }], T0 + 50);
      await runAs('w1', T0 + 60, true, { n: 1 });
      await runAs('w2', T0 + 70, false);
      expect(await children()).toEqual([]);
      const third = (await store.listRuns({ jobId: parent.id, status: 'queued', limit: 10 }))[0]!;
      await store.cancelRun(third.id, T0 + 80);
      const failed = await children();
      expect(failed.map((r) => r.jobName).sort()).toEqual(['always', 'on-failure']);
      expect(failed.find((r) => r.jobName === 'on-failure')!.params).toEqual({
        parent: { job: 'bc', runId: second, status: 'failed', result: [{ n: 1 }, null, null] },
      });
    });

    it('a paused child of a broadcast job gets one ledger row count per broadcast, not per shard', async () => {
      const parent = await store.createJob(job('bc', { routing: { strategy: 'broadcast' } }), null, T0);
      const child = await store.createJob(
        job('child', { trigger: { kind: 'after', job: 'bc' }, paused: true }),
        null,
        T0,
      );
      await workers('w1', 'w2');
      await store.enqueueRuns(parent.id, [{ params: {}, priority: 0 }], T0);
      await runAs('w1', T0 + 10, true);
      expect(await store.listSkipped(child.id, { limit: 10 })).toEqual([]);
      await runAs('w2', T0 + 20, true);
      expect(await store.listSkipped(child.id, { limit: 10 })).toMatchObject([
        { reason: 'paused', first: T0 + 20, last: T0 + 20, count: 1 },
      ]);
    });

    it('a workflow `job` step of a broadcast job runs as a broadcast and ends when its last shard ends', async () => {
      await store.createJob(job('bc', { routing: { strategy: 'broadcast' } }), null, T0);
      await workers('w1', 'w2');
      await store.workflows.put(
        compileWorkflow({
          name: 'flow',
          steps: [
            { id: 'fan', job: 'bc' },
            { id: 'next', handler: 'h', after: ['fan'] },
          ],
        }),
        'default',
        T0,
      );
      const instance = (await store.workflows.start('default', 'flow', { context: {} }, T0))!;
      const fan = instance.steps.find((s) => s.id === 'fan')!;
      const shards = await store.listRuns({ status: 'queued', limit: 10 });
      expect(shards.map((r) => [r.shard?.index, r.shard?.total]).sort()).toEqual([
        [0, 2],
        [1, 2],
      ]);
      expect(shards.find((r) => r.shard?.index === 0)!.id).toBe(fan.runId);
      const steps = async () =>
        Object.fromEntries(
          (await store.workflows.getInstance(instance.id))!.steps.map((s) => [s.id, s.state]),
        );
      const ran: ClaimedRun[] = await runAs('w2', T0 + 10, true, { n: 2 });
      expect(ran).toHaveLength(1);
      expect(await steps()).toEqual({ fan: 'ready', next: 'waiting' });
      await runAs('w1', T0 + 20, true, { n: 1 });
      expect(await steps()).toEqual({ fan: 'succeeded', next: 'ready' });
      const [next] = await store.listRuns({ status: 'queued', limit: 10 });
      expect((next!.params.$workflow as { parents: unknown }).parents).toEqual({
        fan: { runId: fan.runId, state: 'succeeded', result: [{ n: 1 }, { n: 2 }] },
      });
    });

    it('a workflow `job` step of a paused job waits, queued but not claimable, until the job is resumed', async () => {
      const paused = await store.createJob(job('held', { paused: true }), null, T0);
      await workers('w1');
      await store.workflows.put(
        compileWorkflow({ name: 'flow', steps: [{ id: 'k', job: 'held' }] }),
        'default',
        T0,
      );
      const instance = (await store.workflows.start('default', 'flow', { context: {} }, T0))!;
      const k = instance.steps[0]!;
      expect(k).toMatchObject({ state: 'ready' });
      expect(await store.getRun(k.runId!)).toMatchObject({ status: 'queued' });
      expect(await store.dispatchRuns('w1', 10, T0 + 10, 0)).toEqual([]);
      expect(await store.claimRuns('w1', 10, T0 + 10)).toEqual([]);
      const resumed = await store.resumeJob(paused.id, { ...paused, paused: false }, null, null, T0 + 20);
      expect(resumed?.paused).toBe(false);
      expect((await runAs('w1', T0 + 30, true)).map((c) => c.runId)).toEqual([k.runId]);
      expect(await store.workflows.getInstance(instance.id)).toMatchObject({
        state: 'succeeded',
        steps: [{ id: 'k', state: 'succeeded' }],
      });
    });
  });
}
