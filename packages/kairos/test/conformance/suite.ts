import type { JsonObject } from '@kairos/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob, type JobDefinition } from '../../src/core/job.ts';
import { EXTERNAL_PASSWORD_HASH } from '../../src/store/access.ts';
import {
  type AttemptOutcome,
  type ClaimedRun,
  GONE_NODE_KEPT_LEASES,
  LeaseLostError,
  type Store,
} from '../../src/store/store.ts';
import { describeFireAheadConformance } from './ahead.ts';
import { describeAlertsConformance } from './alerts.ts';
import { describeAttemptsConformance } from './attempts.ts';
import { describeDependenciesConformance } from './dependencies.ts';
import { describeFencingConformance } from './fencing.ts';
import { describeHandOffConformance } from './hand-off.ts';
import { describeNamespacesConformance } from './namespaces.ts';
import { describeQueueConformance } from './queue.ts';
import { describeResourceConformance } from './resources.ts';
import { describeRetentionConformance } from './retention.ts';
import { describeSchedulesConformance } from './schedules.ts';
import { describeSecretsConformance } from './secrets.ts';
import { describeTracingConformance } from './tracing.ts';
import { describeWorkflowMapRepairConformance } from './workflow-map-repair.ts';
import { describeWorkflowMapsConformance } from './workflow-maps.ts';
import { describeWorkflowOverlapConformance } from './workflow-overlap.ts';
import { describeWorkflowQuotasConformance } from './workflow-quotas.ts';
import { describeWorkflowRetentionConformance } from './workflow-retention.ts';
import { describeWorkflowTriggersConformance } from './workflow-triggers.ts';
import { describeWorkflowsConformance } from './workflows.ts';

/**
 * What the suite reads below the contract, from the last store `open` made: a property the contract
 * cannot show, such as which rows a call writes.
 */
export interface StoreProbe {
  /**
   * A token of the stored version of run `runId`'s row, which changes whenever the row is written
   * (PostgreSQL: its `xmin`; SQLite, which keeps no row version: its values).
   */
  runRowVersion(runId: number): Promise<string>;
  /** The stored attempt rows of run `runId` (ended attempts only: a running one is its run's row). */
  attemptRows(runId: number): Promise<StoredAttempt[]>;
  /** Whether `Store.triggerRun` hands a run to a waiting poll (SQLite) or leaves `handOff` aside (PostgreSQL). */
  handsOff: boolean;
}

/** An attempt's row as stored, for {@link StoreProbe.attemptRows}. */
export interface StoredAttempt {
  attempt: number;
  workerId: string;
  status: string;
  startedAt: number;
  finishedAt: number | null;
}

/**
 * The one conformance suite of the Store contract. Every dialect runs it unchanged:
 * `describeStoreConformance('sqlite', () => new SqliteStore(path), probe)`.
 */
export function describeStoreConformance(
  dialect: string,
  open: () => Promise<Store>,
  probe: StoreProbe,
): void {
  describe(`Store conformance: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);
    const all = { count: 1, owned: [0] };

    beforeEach(async () => {
      store = await open();
      await store.migrate();
    });
    afterEach(async () => {
      await store.close();
    });

    const job = (name: string, extra: Partial<Parameters<typeof compileJob>[0]> = {}): JobDefinition =>
      compileJob({ name, handler: 'h', trigger: { kind: 'every', every: '1s' }, ...extra });

    async function queuedRun(name = 'j', extra: Partial<Parameters<typeof compileJob>[0]> = {}) {
      const created = await store.createJob(job(name, { trigger: { kind: 'manual' }, ...extra }), null, T0);
      const [id] = await store.enqueueRuns(created.id, [{ params: { n: 1 }, priority: 0 }], T0);
      return { job: created, runId: id! };
    }

    async function worker(id = 'w1', handlers = ['h'], group = 'default') {
      await store.registerWorker(
        { id, name: id, group, handlers, capacity: 10, labels: {}, version: 't', host: 'h' },
        5000,
        T0,
      );
    }

    describe('jobs', () => {
      it('creates, reads, updates, lists by page and deletes', async () => {
        const a = await store.createJob(job('a'), T0 + 1000, T0);
        expect(a).toMatchObject({ name: 'a', group: 'default', nextFireAt: T0 + 1000, paused: false });
        await store.createJob(job('b', { group: 'g2' }), null, T0);
        await store.createJob(job('c'), null, T0);
        expect((await store.getJob('a'))?.trigger).toEqual({ kind: 'every', every: 1000, anchor: 0 });
        const page1 = await store.listJobs({ limit: 2 });
        expect(page1.map((j) => j.name)).toEqual(['a', 'b']);
        expect((await store.listJobs({ limit: 2, after: 'b' })).map((j) => j.name)).toEqual(['c']);
        expect((await store.listJobs({ limit: 10, group: 'g2' })).map((j) => j.name)).toEqual(['b']);
        const updated = await store.updateJob(a.id, job('a', { priority: 5 }), T0 + 2000, T0 + 10);
        expect(updated).toMatchObject({
          priority: 5,
          nextFireAt: T0 + 2000,
          updatedAt: T0 + 10,
          createdAt: T0,
        });
        expect(await store.updateJob(999_999, job('zz'), null, T0)).toBeNull();
        expect(await store.deleteJob('a')).toBe(true);
        expect(await store.deleteJob('a')).toBe(false);
        expect(await store.getJob('a')).toBeNull();
      });

      it('keeps a job’s owner: set on create, changed and cleared by an update, none for a job made by hand', async () => {
        const owned = await store.createJob(job('owned', { owner: 'team-a' }), null, T0);
        expect(owned.owner).toBe('team-a');
        expect((await store.createJob(job('by-hand'), null, T0)).owner).toBeNull();
        expect((await store.updateJob(owned.id, job('owned', { owner: 'team-b' }), null, T0))?.owner).toBe(
          'team-b',
        );
        expect((await store.getJob('owned'))?.owner).toBe('team-b');
        const cleared = await store.updateJob(owned.id, job('owned'), null, T0);
        expect(cleared?.owner).toBeNull();
        // A delete for a version that is gone deletes nothing.
        expect(await store.deleteJob('owned', cleared!.version - 1)).toBe(false);
        expect(await store.deleteJob('owned', cleared!.version)).toBe(true);
        expect(await store.getJob('owned')).toBeNull();
      });

      it('an update with an expectation applies only to the version and next fire it read', async () => {
        const a = await store.createJob(job('v'), T0 + 1000, T0);
        expect(a.version).toBe(1);
        const read = { version: 1, nextFireAt: T0 + 1000 };
        const first = await store.updateJob(a.id, job('v', { priority: 1 }), T0 + 1000, T0 + 1, read);
        expect(first).toMatchObject({ priority: 1, version: 2 });
        // The same expectation again: the version moved on, nothing is written.
        expect(await store.updateJob(a.id, job('v', { priority: 2 }), null, T0 + 2, read)).toBeNull();
        // The schedule moves the next fire without a new version: an edit that read the old one loses.
        const fired = await store.fire(
          [{ jobId: a.id, expected: T0 + 1000, next: T0 + 2000, fires: [T0 + 1000] }],
          null,
          T0 + 1000,
        );
        expect(fired.conflicts).toBe(0);
        expect((await store.getJob('v'))?.version).toBe(2);
        const stale = { version: 2, nextFireAt: T0 + 1000 };
        expect(await store.updateJob(a.id, job('v', { priority: 3 }), T0 + 1000, T0 + 3, stale)).toBeNull();
        expect(await store.getJob('v')).toMatchObject({ priority: 1, nextFireAt: T0 + 2000, version: 2 });
        // What is stored now applies; a paused job resumes only from its version too.
        const current = { version: 2, nextFireAt: T0 + 2000 };
        const paused = await store.updateJob(a.id, job('v', { paused: true }), T0 + 2000, T0 + 4, current);
        expect(paused).toMatchObject({ paused: true, version: 3 });
        expect(await store.resumeJob(a.id, job('v'), T0 + 5000, null, T0 + 5, current)).toBeNull();
        const resumed = await store.resumeJob(a.id, job('v'), T0 + 5000, null, T0 + 5, {
          version: 3,
          nextFireAt: T0 + 2000,
        });
        expect(resumed).toMatchObject({ paused: false, nextFireAt: T0 + 5000, version: 4 });
        // Without an expectation an update applies as before, and still bumps the version.
        expect(await store.updateJob(a.id, job('v'), null, T0 + 6)).toMatchObject({
          version: 5,
          nextFireAt: null,
        });
      });

      it('rejects a second job with the same name and keeps the first', async () => {
        await store.createJob(job('dup', { priority: 1 }), null, T0);
        await expect(store.createJob(job('dup', { priority: 2 }), null, T0)).rejects.toMatchObject({
          code: 'JOB_NAME_TAKEN',
        });
        expect((await store.getJob('dup'))?.priority).toBe(1);
      });

      it('deleting a job deletes its runs', async () => {
        const { runId } = await queuedRun('gone');
        await store.deleteJob('gone');
        expect(await store.getRun(runId)).toBeNull();
      });
    });

    describe('firing', () => {
      it('lists due jobs of owned partitions, most overdue first, and the next fire time', async () => {
        const a = await store.createJob(job('a'), T0 + 2000, T0);
        const b = await store.createJob(job('b'), T0 + 1000, T0);
        await store.createJob(job('later'), T0 + 9000, T0);
        await store.createJob(job('paused', { paused: true }), T0, T0);
        expect((await store.dueJobs(all, T0 + 5000, 10)).map((j) => j.id)).toEqual([b.id, a.id]);
        expect(await store.nextFireAt(all)).toBe(T0 + 1000);
        const evens = { count: 2, owned: [a.id % 2] };
        expect((await store.dueJobs(evens, T0 + 5000, 10)).map((j) => j.id)).toEqual([a.id]);
      });

      it('creates one run per fire and advances the next fire time by compare-and-set', async () => {
        const a = await store.createJob(job('a'), T0 + 1000, T0);
        const entry = { jobId: a.id, expected: T0 + 1000, next: T0 + 3000, fires: [T0 + 1000, T0 + 2000] };
        expect(await store.fire([entry], null, T0 + 2500)).toEqual({
          runs: 2,
          conflicts: 0,
          groups: ['default'],
        });
        // A second writer with the same stale view changes nothing.
        expect(await store.fire([entry], null, T0 + 2500)).toMatchObject({ runs: 0, conflicts: 1 });
        expect((await store.getJob('a'))?.nextFireAt).toBe(T0 + 3000);
        const runs = await store.listRuns({ jobId: a.id, limit: 10 });
        expect(runs.map((r) => r.fireTime).sort()).toEqual([T0 + 1000, T0 + 2000]);
        expect(runs[0]).toMatchObject({
          status: 'queued',
          cause: 'schedule',
          attempt: 0,
          maxAttempts: 3,
          jobName: 'a',
        });
      });

      it('fires a batch of plain and policy entries in one call: each won fire once, lost ones counted', async () => {
        const at = T0 + 1000;
        const make = (name: string, extra: Partial<Parameters<typeof compileJob>[0]> = {}) =>
          store.createJob(job(name, extra), at, T0);
        const plain = [];
        for (let i = 0; i < 5; i++) plain.push(await make(`p${i}`));
        const skip = await make('skip', { schedule: { overlap: 'skip' } });
        const broadcast = await make('bc', { routing: { strategy: 'broadcast' } });
        const stale = await make('stale');
        const entries = [
          { jobId: plain[0]!.id, expected: at, next: at + 1000, fires: [at] },
          { jobId: skip.id, expected: at, next: at + 1000, fires: [at], overlap: 'skip' as const },
          { jobId: plain[1]!.id, expected: at, next: at + 2000, fires: [at, at + 1000] },
          { jobId: stale.id, expected: at - 1000, next: at + 1000, fires: [at] },
          { jobId: plain[2]!.id, expected: at, next: at + 1000, fires: [at], availableAt: [at + 300] },
          { jobId: broadcast.id, expected: at, next: at + 1000, fires: [at] },
          { jobId: plain[3]!.id, expected: at, next: at + 5000, fires: [] },
          { jobId: plain[4]!.id, expected: at, next: at + 1000, fires: [at] },
        ];
        expect(await store.fire(entries, null, at)).toMatchObject({
          runs: 7,
          conflicts: 1,
          groups: ['default'],
        });
        const runs = (await store.listRuns({ limit: 100 })).map((r) => ({
          job: r.jobName,
          fireTime: r.fireTime,
          availableAt: r.availableAt,
          shard: r.shard,
        }));
        const plainRun = (job: string, fireTime = at) => ({
          job,
          fireTime,
          availableAt: fireTime,
          shard: null,
        });
        expect(runs.sort((a, b) => a.job.localeCompare(b.job) || a.fireTime! - b.fireTime!)).toEqual([
          { ...plainRun('bc'), shard: { index: 0, total: 1 } },
          plainRun('p0'),
          plainRun('p1'),
          plainRun('p1', at + 1000),
          { ...plainRun('p2'), availableAt: at + 300 },
          plainRun('p4'),
          plainRun('skip'),
        ]);
        const next = async (name: string) => (await store.getJob(name))?.nextFireAt;
        expect(await next('p1')).toBe(at + 2000);
        expect(await next('p3')).toBe(at + 5000);
        expect(await next('stale')).toBe(at);
        // The same batch again: every compare-and-set fails, nothing is written.
        expect(await store.fire(entries, null, at)).toMatchObject({ runs: 0, conflicts: 8 });
        expect(await store.listRuns({ limit: 100 })).toHaveLength(7);
      });

      it('never creates two runs for one fire time, even when the compare-and-set is passed twice', async () => {
        const a = await store.createJob(job('a'), T0 + 1000, T0);
        await store.fire(
          [{ jobId: a.id, expected: T0 + 1000, next: T0 + 1000, fires: [T0 + 1000] }],
          null,
          T0 + 1000,
        );
        const again = await store.fire(
          [{ jobId: a.id, expected: T0 + 1000, next: T0 + 2000, fires: [T0 + 1000] }],
          null,
          T0 + 1000,
        );
        expect(again).toMatchObject({ runs: 0, conflicts: 0 });
        expect(await store.listRuns({ jobId: a.id, limit: 10 })).toHaveLength(1);
      });

      it('does not fire a job paused since it was read', async () => {
        const a = await store.createJob(job('a'), T0, T0);
        await store.updateJob(a.id, job('a', { paused: true }), T0, T0);
        const result = await store.fire(
          [{ jobId: a.id, expected: T0, next: T0 + 1000, fires: [T0] }],
          null,
          T0,
        );
        expect(result).toMatchObject({ runs: 0, conflicts: 1 });
      });

      it('fences a fire by the partition lease: a stale holder writes nothing', async () => {
        const a = await store.createJob(job('a'), T0, T0);
        const [lease] = await store.acquireLeases(['trigger/0'], 'node-a', 3000, T0);
        expect(lease).toMatchObject({ owner: 'node-a', epoch: 1, expiresAt: T0 + 3000 });
        // node-a pauses past its lease; node-b takes over with a new epoch.
        const [taken] = await store.acquireLeases(['trigger/0'], 'node-b', 3000, T0 + 3001);
        expect(taken).toMatchObject({ owner: 'node-b', epoch: 2 });
        const entry = { jobId: a.id, expected: T0, next: T0 + 1000, fires: [T0] };
        await expect(store.fire([entry], [lease!], T0 + 3002)).rejects.toBeInstanceOf(LeaseLostError);
        expect(await store.listRuns({ limit: 10 })).toHaveLength(0);
        expect(await store.renewLeases([lease!], 3000, T0 + 3002)).toEqual([]);
        expect(await store.fire([entry], [taken!], T0 + 3002)).toMatchObject({ runs: 1 });
      });

      it('leases: held leases are not taken, renewal keeps the epoch, release hands over at once', async () => {
        const [a] = await store.acquireLeases(['p'], 'a', 3000, T0);
        expect(await store.acquireLeases(['p'], 'b', 3000, T0 + 100)).toEqual([]);
        const [renewed] = await store.renewLeases([a!], 3000, T0 + 1000);
        expect(renewed).toMatchObject({ epoch: a!.epoch, expiresAt: T0 + 4000 });
        await store.releaseLeases([renewed!]);
        const [b] = await store.acquireLeases(['p'], 'b', 3000, T0 + 1001);
        expect(b).toMatchObject({ owner: 'b', epoch: a!.epoch + 1 });
      });
    });

    describe('runs and the worker protocol', () => {
      it('enqueues with an idempotency key once', async () => {
        const created = await store.createJob(job('m', { trigger: { kind: 'manual' } }), null, T0);
        const first = await store.enqueueRuns(
          created.id,
          [{ params: {}, priority: 0, idempotencyKey: 'k' }],
          T0,
        );
        const second = await store.enqueueRuns(
          created.id,
          [{ params: {}, priority: 0, idempotencyKey: 'k' }],
          T0,
        );
        expect(second).toEqual(first);
        expect(await store.listRuns({ limit: 10 })).toHaveLength(1);
        await expect(store.enqueueRuns(999_999, [{ params: {}, priority: 0 }], T0)).rejects.toMatchObject({
          code: 'JOB_NOT_FOUND',
        });
      });

      it('an idempotency key holds its run until it expires, then a new run takes it', async () => {
        const created = await store.createJob(job('ttl', { trigger: { kind: 'manual' } }), null, T0);
        const keyed = (params: JsonObject, expires: number) => ({
          params,
          priority: 0,
          idempotencyKey: 'k',
          idempotencyExpiresAt: expires,
        });
        const [first] = await store.enqueueRuns(created.id, [keyed({ a: 1, b: 2 }, T0 + 1000)], T0);
        // Live: the same params (in any key order) answer the run; other params are refused, and the
        // whole batch with them writes nothing.
        expect(await store.enqueueRuns(created.id, [keyed({ b: 2, a: 1 }, T0 + 5000)], T0 + 999)).toEqual([
          first,
        ]);
        await expect(
          store.enqueueRuns(created.id, [{ params: {}, priority: 0 }, keyed({ a: 2 }, T0 + 5000)], T0 + 999),
        ).rejects.toMatchObject({ code: 'IDEMPOTENCY_CONFLICT', details: { runId: first } });
        await expect(
          store.triggerRun('ttl', { params: { a: 2 }, priority: 0, idempotencyKey: 'k' }, T0 + 999),
        ).rejects.toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
        expect(await store.listRuns({ jobId: created.id, limit: 10 })).toHaveLength(1);
        // Two requests of one batch with one key and other params: refused.
        await expect(
          store.enqueueRuns(
            created.id,
            [keyed({ x: 1 }, T0 + 9000), keyed({ x: 2 }, T0 + 9000)].map((r) => ({
              ...r,
              idempotencyKey: 'pair',
            })),
            T0,
          ),
        ).rejects.toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
        expect(await store.listRuns({ jobId: created.id, limit: 10 })).toHaveLength(1);
        // Expired: the key goes to a new run, with other params too; the old run stays.
        const [second] = await store.enqueueRuns(created.id, [keyed({ a: 2 }, T0 + 9000)], T0 + 1000);
        expect(second).not.toBe(first);
        const third = await store.triggerRun(
          'ttl',
          { params: { a: 3 }, priority: 0, idempotencyKey: 'k', idempotencyExpiresAt: T0 + 20_000 },
          T0 + 9000,
        );
        expect(third!.id).not.toBe(second);
        expect(
          await store.triggerRun('ttl', { params: { a: 3 }, priority: 0, idempotencyKey: 'k' }, T0 + 10_000),
        ).toEqual(third);
        expect((await store.listRuns({ jobId: created.id, limit: 10 })).map((r) => r.params)).toEqual([
          { a: 3 },
          { a: 2 },
          { a: 1, b: 2 },
        ]);
      });

      it('a run triggered for later is not claimed before its instant', async () => {
        const created = await store.createJob(job('later', { trigger: { kind: 'manual' } }), null, T0);
        const run = await store.triggerRun(
          'later',
          { params: null, priority: null, availableAt: T0 + 30_000 },
          T0,
        );
        expect(run).toMatchObject({ status: 'queued', availableAt: T0 + 30_000, createdAt: T0 });
        const [batch] = await store.enqueueRuns(
          created.id,
          [{ params: {}, priority: 0, availableAt: T0 + 60_000 }],
          T0,
        );
        await store.registerWorker(
          {
            id: 'w',
            name: 'w',
            group: 'default',
            handlers: ['h'],
            capacity: 10,
            labels: {},
            version: '',
            host: '',
          },
          3_600_000,
          T0,
        );
        expect(await store.claimRuns('w', 10, T0 + 29_999)).toEqual([]);
        expect(await store.nextAvailableAt('w', T0 + 29_999)).toBe(T0 + 30_000);
        expect((await store.claimRuns('w', 10, T0 + 30_000)).map((c) => c.runId)).toEqual([run!.id]);
        expect(await store.claimRuns('w', 10, T0 + 59_999)).toEqual([]);
        expect((await store.claimRuns('w', 10, T0 + 60_000)).map((c) => c.runId)).toEqual([batch]);
      });

      it('triggers one run by job name: the job’s defaults, its key once, the audit entry with it', async () => {
        const created = await store.createJob(
          job('t', { trigger: { kind: 'manual' }, params: { a: 1 }, priority: 3 }),
          null,
          T0,
        );
        const events: unknown[] = [];
        const unsubscribe = store.subscribe((e) => events.push(e));
        const audit = (n: number) => ({
          at: T0 + n,
          actor: 'u',
          action: 'jobs.trigger',
          target: 'jobs:t',
          details: {},
        });
        const byDefault = await store.triggerRun('t', { params: null, priority: null }, T0, audit(1));
        expect(byDefault).toMatchObject({
          jobId: created.id,
          jobName: 't',
          params: { a: 1 },
          priority: 3,
          status: 'queued',
          attempt: 0,
          cause: 'manual',
        });
        expect(events).toContainEqual({ type: 'runs', group: 'default' });
        const given = await store.triggerRun(
          't',
          { params: { b: 2 }, priority: 7, idempotencyKey: 'k' },
          T0 + 1,
          audit(2),
        );
        expect(given).toMatchObject({ params: { b: 2 }, priority: 7 });
        expect(await store.getRun(given!.id)).toEqual(given);
        events.length = 0;
        // The key's earlier run, nothing queued, no event; the call is audited all the same.
        const again = await store.triggerRun(
          't',
          { params: { b: 2 }, priority: 7, idempotencyKey: 'k' },
          T0 + 2,
          audit(3),
        );
        expect(again).toEqual(given);
        // The same key with other params (or the job's priority, 3): refused, nothing written.
        const others: Array<{ params: JsonObject; priority: number | null }> = [
          { params: { c: 3 }, priority: 7 },
          { params: { b: 2 }, priority: null },
        ];
        for (const other of others) {
          await expect(
            store.triggerRun('t', { ...other, idempotencyKey: 'k' }, T0 + 2, audit(9)),
          ).rejects.toMatchObject({ code: 'IDEMPOTENCY_CONFLICT', details: { runId: given!.id } });
        }
        expect(events).toEqual([]);
        unsubscribe();
        expect(await store.listRuns({ jobId: created.id, limit: 10 })).toHaveLength(2);
        expect((await store.listAudit({ limit: 10 })).map((e) => e.at)).toEqual([T0 + 3, T0 + 2, T0 + 1]);
        // No such job: null, and nothing written.
        expect(await store.triggerRun('nope', { params: null, priority: null }, T0, audit(4))).toBeNull();
        expect(await store.listAudit({ limit: 10 })).toHaveLength(3);
        // Without an audit entry.
        await store.triggerRun('t', { params: null, priority: null }, T0 + 5);
        expect(await store.listAudit({ limit: 10 })).toHaveLength(3);
      });

      it('claims by priority then age, only for the worker group and handlers, and only when available', async () => {
        const created = await store.createJob(job('m', { trigger: { kind: 'manual' } }), null, T0);
        const other = await store.createJob(
          job('o', { trigger: { kind: 'manual' }, handler: 'other' }),
          null,
          T0,
        );
        const [low, high] = await store.enqueueRuns(
          created.id,
          [
            { params: {}, priority: 0 },
            { params: {}, priority: 5 },
          ],
          T0,
        );
        await store.enqueueRuns(other.id, [{ params: {}, priority: 9 }], T0);
        await worker('w1', ['h']);
        const claimed = await store.claimRuns('w1', 10, T0 + 10);
        expect(claimed.map((c) => c.runId)).toEqual([high, low]);
        expect(claimed[0]).toMatchObject({ attempt: 1, jobName: 'm', handler: 'h', timeoutMs: 300_000 });
        expect(await store.claimRuns('w1', 10, T0 + 10)).toEqual([]);
        const run = await store.getRun(high!);
        expect(run).toMatchObject({ status: 'running', attempt: 1, workerId: 'w1', startedAt: T0 + 10 });
        expect(await store.getAttempts(high!)).toMatchObject([
          { attempt: 1, workerId: 'w1', status: 'running' },
        ]);
        await expect(store.claimRuns('nobody', 1, T0)).rejects.toMatchObject({
          code: 'WORKER_NOT_FOUND',
        });
      });

      it('deletes jobs while their runs end at the same time: every call answers, nothing is left', async () => {
        await worker('w1', ['h']);
        const jobs = 12;
        for (let i = 0; i < jobs; i++) {
          const created = await store.createJob(job(`del-${i}`, { trigger: { kind: 'manual' } }), null, T0);
          await store.enqueueRuns(
            created.id,
            Array.from({ length: 5 }, () => ({ params: {}, priority: 0 })),
            T0,
          );
        }
        const claimed = await store.claimRuns('w1', 100, T0 + 1);
        expect(claimed).toHaveLength(jobs * 5);
        const outcome = (c: ClaimedRun): AttemptOutcome => ({
          runId: c.runId,
          attempt: c.attempt,
          group: 'default',
          attemptStatus: 'succeeded',
          error: null,
          result: null,
          run: { status: 'succeeded' },
        });
        // Reports and deletes race: each report batch ends one run of every job, each delete takes
        // one job with its runs. On PostgreSQL they take their locks in one order, so none fails.
        const batches = Array.from({ length: 5 }, (_, b) =>
          claimed.filter((_, i) => i % 5 === b).map(outcome),
        );
        const settled = await Promise.allSettled([
          ...batches.map((batch) => store.finishAttempts(batch, T0 + 2)),
          ...Array.from({ length: jobs }, (_, i) => store.deleteJob(`del-${i}`)),
        ]);
        expect(settled.filter((r) => r.status === 'rejected')).toEqual([]);
        expect(await store.listJobs({ limit: 100 })).toEqual([]);
        expect(await store.listRuns({ limit: 10 })).toEqual([]);
      });

      it('fences reports by attempt: a stale attempt changes nothing', async () => {
        const { runId } = await queuedRun();
        await worker();
        await store.claimRuns('w1', 1, T0);
        const retry: AttemptOutcome = {
          runId,
          attempt: 1,
          group: 'default',
          attemptStatus: 'failed',
          error: { name: 'Error', message: 'boom' },
          result: null,
          run: { status: 'queued', availableAt: T0 + 1000 },
        };
        expect(await store.finishAttempts([retry], T0 + 1)).toEqual([true]);
        expect(await store.finishAttempts([retry], T0 + 1)).toEqual([false]);
        expect(await store.claimRuns('w1', 1, T0 + 500)).toEqual([]);
        const [second] = await store.claimRuns('w1', 1, T0 + 1000);
        expect(second).toMatchObject({ runId, attempt: 2 });
        const late: AttemptOutcome = {
          ...retry,
          attempt: 1,
          attemptStatus: 'succeeded',
          error: null,
          result: 1,
          run: { status: 'succeeded' },
        };
        expect(await store.finishAttempts([late], T0 + 1001)).toEqual([false]);
        const done: AttemptOutcome = { ...late, attempt: 2, result: { ok: true } };
        expect(await store.finishAttempts([done], T0 + 1002)).toEqual([true]);
        expect(await store.getRun(runId)).toMatchObject({
          status: 'succeeded',
          result: { ok: true },
          finishedAt: T0 + 1002,
        });
        expect((await store.getAttempts(runId)).map((a) => a.status)).toEqual(['failed', 'succeeded']);
      });

      it('ends a batch of attempts each with its own outcome, result and error', async () => {
        const runs = [];
        for (let i = 0; i < 4; i++) runs.push((await queuedRun(`batch-${i}`)).runId);
        await worker();
        const claimed = await store.claimRuns('w1', 4, T0);
        expect(claimed).toHaveLength(4);
        const base = { attempt: 1, group: 'default', error: null, result: null } as const;
        const outcomes: AttemptOutcome[] = [
          {
            ...base,
            runId: runs[0]!,
            attemptStatus: 'succeeded',
            result: 'text',
            run: { status: 'succeeded' },
          },
          {
            ...base,
            runId: runs[1]!,
            attemptStatus: 'succeeded',
            result: { n: [1, 2] },
            run: { status: 'succeeded' },
          },
          {
            ...base,
            runId: runs[2]!,
            attemptStatus: 'failed',
            error: { name: 'Boom', message: 'it broke' },
            run: { status: 'failed' },
          },
          { ...base, runId: runs[3]!, attempt: 2, attemptStatus: 'succeeded', run: { status: 'succeeded' } },
        ];
        expect(await store.finishAttempts(outcomes, T0 + 5)).toEqual([true, true, true, false]);
        expect(await store.getRun(runs[0]!)).toMatchObject({
          status: 'succeeded',
          result: 'text',
          finishedAt: T0 + 5,
        });
        expect(await store.getRun(runs[1]!)).toMatchObject({ status: 'succeeded', result: { n: [1, 2] } });
        expect(await store.getRun(runs[2]!)).toMatchObject({
          status: 'failed',
          error: { name: 'Boom', message: 'it broke' },
        });
        expect(await store.getRun(runs[3]!)).toMatchObject({ status: 'running' });
        expect((await store.getAttempts(runs[2]!)).map((a) => [a.status, a.finishedAt])).toEqual([
          ['failed', T0 + 5],
        ]);
        expect((await store.getAttempts(runs[3]!)).map((a) => a.status)).toEqual(['running']);
      });

      it('heartbeats extend leases and name the attempts that are no longer the worker’s', async () => {
        const { runId } = await queuedRun();
        await worker();
        await store.claimRuns('w1', 1, T0);
        expect((await store.heartbeat('w1', [{ runId, attempt: 1 }], 5000, T0 + 4000))?.cancel).toEqual([]);
        expect(await store.expiredAttempts(T0 + 8000, 10)).toEqual([]);
        expect((await store.heartbeat('w1', [{ runId, attempt: 7 }], 5000, T0 + 4000))?.cancel).toEqual([
          { runId, attempt: 7 },
        ]);
        expect(await store.heartbeat('ghost', [], 5000, T0)).toBeNull();
        await store.cancelRun(runId, T0 + 4500);
        expect((await store.heartbeat('w1', [{ runId, attempt: 1 }], 5000, T0 + 4600))?.cancel).toEqual([
          { runId, attempt: 1 },
        ]);
      });

      it('writes no run at a heartbeat: a running attempt lives on its worker’s lease', async () => {
        const { runId } = await queuedRun('long', { timeout: '1h' });
        await worker();
        await store.claimRuns('w1', 1, T0);
        const before = await probe.runRowVersion(runId);
        for (let beat = 1; beat <= 3; beat++) {
          expect(
            (await store.heartbeat('w1', [{ runId, attempt: 1 }], 5000, T0 + beat * 1000))?.cancel,
          ).toEqual([]);
        }
        expect(await probe.runRowVersion(runId)).toBe(before);
      });

      it('reaps the runs of a worker whose lease ended as lost, not a live worker’s long run', async () => {
        const lost = await queuedRun('a', { timeout: '1h' });
        const kept = await queuedRun('b', { timeout: '1h' });
        await worker('w1');
        await worker('w2');
        expect(await store.claimRuns('w1', 1, T0)).toMatchObject([{ runId: lost.runId }]);
        expect(await store.claimRuns('w2', 1, T0)).toMatchObject([{ runId: kept.runId }]);
        // w2 beats every 4 s for 20 s, four leases' worth; w1 never does.
        for (let at = T0 + 4000; at <= T0 + 20_000; at += 4000) {
          expect(
            (await store.heartbeat('w2', [{ runId: kept.runId, attempt: 1 }], 5000, at))?.cancel,
          ).toEqual([]);
          expect(
            (await store.expiredAttempts(at, 10)).map((x) => [x.runId, x.attempt, x.reason, x.workerId]),
          ).toEqual(at < T0 + 5000 ? [] : [[lost.runId, 1, 'lost', 'w1']]);
        }
        // Once w1 is declared lost, its run is still found (until the reaper ends it).
        expect(await store.markLostWorkers(T0 + 20_000)).toEqual(['w1']);
        expect((await store.expiredAttempts(T0 + 20_000, 10)).map((x) => x.runId)).toEqual([lost.runId]);
        // A stopped worker holds no lease: an attempt it still has is lost at once.
        await store.unregisterWorker('w2', T0 + 21_000);
        expect(
          (await store.expiredAttempts(T0 + 21_000, 10)).map((x) => [x.runId, x.reason, x.workerId]),
        ).toEqual([
          [lost.runId, 'lost', 'w1'],
          [kept.runId, 'lost', 'w2'],
        ]);
      });

      it('finds lost and timed-out attempts, and lost workers', async () => {
        const a = await queuedRun('a');
        const b = await queuedRun('b', { timeout: '2s' });
        await worker();
        await store.claimRuns('w1', 10, T0);
        expect(await store.expiredAttempts(T0 + 1000, 10)).toEqual([]);
        const timedOut = await store.expiredAttempts(T0 + 2000, 10);
        expect(timedOut).toMatchObject([{ runId: b.runId, reason: 'timed_out', workerId: 'w1' }]);
        const both = await store.expiredAttempts(T0 + 5000, 10);
        expect(both.map((x) => [x.runId, x.reason])).toEqual([
          [a.runId, 'lost'],
          [b.runId, 'timed_out'],
        ]);
        expect(both[0]?.retry.maxAttempts).toBe(3);
        expect(await store.markLostWorkers(T0 + 4999)).toEqual([]);
        expect(await store.markLostWorkers(T0 + 5000)).toEqual(['w1']);
        expect(await store.heartbeat('w1', [], 5000, T0 + 5001)).toBeNull();
        expect((await store.listWorkers())[0]).toMatchObject({ id: 'w1', status: 'lost', running: 2 });
      });

      it('prunes stopped and lost workers after their retention, never one that still holds a run', async () => {
        const DAY = 24 * 60 * 60 * 1000;
        const held = await queuedRun('held');
        for (const id of ['stopped', 'lost', 'holding', 'active', 'recent']) await worker(id);
        await store.unregisterWorker('stopped', T0);
        expect(await store.claimRuns('holding', 1, T0)).toMatchObject([{ runId: held.runId }]);
        expect((await store.heartbeat('active', [], 5000, T0 + 2 * DAY))?.cancel).toEqual([]);
        expect((await store.heartbeat('recent', [], 5000, T0 + 2 * DAY - 10_000))?.cancel).toEqual([]);
        expect((await store.markLostWorkers(T0 + 2 * DAY)).sort()).toEqual(['holding', 'lost', 'recent']);
        expect(await store.pruneWorkers(T0 + DAY, 1000)).toBe(2);
        const left = (await store.listWorkers()).map((w) => [w.id, w.status]).sort();
        expect(left).toEqual([
          ['active', 'active'],
          ['holding', 'lost'],
          ['recent', 'lost'],
        ]);
        // Once its run is ended, the worker that held it goes too.
        await store.finishAttempts(
          [
            {
              runId: held.runId,
              attempt: 1,
              group: 'default',
              attemptStatus: 'lost',
              error: { name: 'WorkerLost', message: 'lost' },
              result: null,
              run: { status: 'failed' },
            },
          ],
          T0 + 2 * DAY,
        );
        expect(await store.pruneWorkers(T0 + DAY, 1000)).toBe(1);
        expect(await store.pruneWorkers(T0 + DAY, 1000)).toBe(0);
      });

      it('cancels queued and running runs, and refuses finished ones', async () => {
        const q = await queuedRun('q');
        expect(await store.cancelRun(q.runId, T0 + 1)).toMatchObject({
          status: 'cancelled',
          finishedAt: T0 + 1,
        });
        await expect(store.cancelRun(q.runId, T0 + 2)).rejects.toMatchObject({ code: 'RUN_FINISHED' });
        expect(await store.cancelRun(999_999, T0)).toBeNull();
        const r = await queuedRun('r');
        await worker();
        await store.claimRuns('w1', 1, T0);
        expect(await store.cancelRun(r.runId, T0 + 3)).toMatchObject({ status: 'cancelled' });
        expect(await store.getAttempts(r.runId)).toMatchObject([{ status: 'cancelled' }]);
      });

      it('a fixed-delay job fires again `delay` after its scheduled run ends', async () => {
        const d = await store.createJob(job('d', { trigger: { kind: 'delay', delay: '10s' } }), T0, T0);
        await store.fire([{ jobId: d.id, expected: T0, next: null, fires: [T0] }], null, T0);
        expect((await store.getJob('d'))?.nextFireAt).toBeNull();
        await worker();
        const [claimed] = await store.claimRuns('w1', 1, T0 + 5);
        const done: AttemptOutcome = {
          runId: claimed!.runId,
          attempt: 1,
          group: 'default',
          attemptStatus: 'succeeded',
          error: null,
          result: null,
          run: { status: 'succeeded' },
        };
        await store.finishAttempts([done], T0 + 2000);
        expect((await store.getJob('d'))?.nextFireAt).toBe(T0 + 12_000);
      });

      it('lists runs newest first with filters and a cursor', async () => {
        const created = await store.createJob(job('m', { trigger: { kind: 'manual' } }), null, T0);
        const ids = await store.enqueueRuns(
          created.id,
          Array.from({ length: 5 }, () => ({ params: {}, priority: 0 })),
          T0,
        );
        const page = await store.listRuns({ limit: 2 });
        expect(page.map((r) => r.id)).toEqual([ids[4], ids[3]]);
        expect((await store.listRuns({ limit: 10, before: ids[3] })).map((r) => r.id)).toEqual([
          ids[2],
          ids[1],
          ids[0],
        ]);
        expect(await store.listRuns({ limit: 10, status: 'running' })).toEqual([]);
      });
    });

    describe('cluster membership', () => {
      const node = (id: string, instance = `${id}:1`) => ({
        instance,
        id,
        address: `http://${id}`,
        version: '1',
        startedAt: T0,
        partitions: [0, 1],
        clockSkewMs: 1.5,
      });

      it('counts live nodes, lists them, forgets removed ones', async () => {
        expect(await store.heartbeatNode(node('a'), 3000, T0)).toEqual({ alive: 1, namesakes: 0 });
        expect(await store.heartbeatNode(node('b'), 3000, T0 + 1000)).toEqual({ alive: 2, namesakes: 0 });
        // a's row expired at T0 + 3000: it no longer counts.
        expect(await store.heartbeatNode(node('b'), 3000, T0 + 3500)).toEqual({ alive: 1, namesakes: 0 });
        const nodes = await store.listNodes();
        expect(nodes.map((n) => [n.id, n.instance])).toEqual([
          ['a', 'a:1'],
          ['b', 'b:1'],
        ]);
        expect(nodes[1]).toMatchObject({
          partitions: [0, 1],
          clockSkewMs: 1.5,
          heartbeatAt: T0 + 3500,
          expiresAt: T0 + 6500,
        });
        await store.removeNode('a:1');
        expect((await store.listNodes()).map((n) => n.id)).toEqual(['b']);
      });

      it('keeps two processes with the same node id apart, and tells each of the other', async () => {
        expect(await store.heartbeatNode(node('twin', 'twin:x'), 3000, T0)).toEqual({
          alive: 1,
          namesakes: 0,
        });
        expect(await store.heartbeatNode(node('twin', 'twin:y'), 3000, T0 + 100)).toEqual({
          alive: 2,
          namesakes: 1,
        });
        expect(await store.heartbeatNode(node('twin', 'twin:x'), 3000, T0 + 1000)).toEqual({
          alive: 2,
          namesakes: 1,
        });
        expect((await store.listNodes()).map((n) => [n.id, n.instance])).toEqual([
          ['twin', 'twin:x'],
          ['twin', 'twin:y'],
        ]);
        // Their leases too: the owner is the instance, so one cannot renew or take the other's.
        const [x] = await store.acquireLeases(['trigger/0'], 'twin:x', 3000, T0 + 1000);
        expect(x).toBeDefined();
        expect(await store.acquireLeases(['trigger/0'], 'twin:y', 3000, T0 + 1100)).toEqual([]);
        // y stopped renewing: once its row expired, x is alone again.
        expect(await store.heartbeatNode(node('twin', 'twin:x'), 3000, T0 + 3200)).toEqual({
          alive: 1,
          namesakes: 0,
        });
      });

      it(`forgets a gone node ${GONE_NODE_KEPT_LEASES} leases after its row expired`, async () => {
        await store.heartbeatNode(node('gone'), 3000, T0);
        const expired = T0 + 3000;
        await store.heartbeatNode(node('b'), 3000, expired + GONE_NODE_KEPT_LEASES * 3000);
        expect((await store.listNodes()).map((n) => n.id)).toEqual(['b', 'gone']);
        await store.heartbeatNode(node('b'), 3000, expired + GONE_NODE_KEPT_LEASES * 3000 + 1);
        expect((await store.listNodes()).map((n) => n.id)).toEqual(['b']);
      });

      it('tells the time of its own clock', async () => {
        const before = Date.now();
        const time = await store.databaseTime();
        // The machine's database runs on this machine's clock; allow for the round trip.
        expect(Math.abs(time - before)).toBeLessThan(5000);
      });
    });

    // Workers at scale ----
    describe('dispatch policies', () => {
      async function routedJob(name: string, extra: Partial<Parameters<typeof compileJob>[0]> = {}) {
        return store.createJob(job(name, { trigger: { kind: 'manual' }, ...extra }), null, T0);
      }
      async function enqueue(jobId: number, params: Array<Record<string, number>>) {
        return store.enqueueRuns(
          jobId,
          params.map((p) => ({ params: p, priority: 0 })),
          T0,
        );
      }
      async function labelled(id: string, labels: Record<string, string>, capacity = 10) {
        await store.registerWorker(
          { id, name: id, group: 'default', handlers: ['h'], capacity, labels, version: 't', host: 'h' },
          5000,
          T0,
        );
      }
      const dispatch = (id: string, max = 10, now = T0 + 10, random = 0) =>
        store.dispatchRuns(id, max, now, random);
      const ids = async (id: string, max = 10, now = T0 + 10) =>
        (await dispatch(id, max, now)).map((c) => c.runId);

      it('plain jobs are claimed like claimRuns: priority, then age, for the worker’s handlers', async () => {
        const created = await routedJob('plain');
        const [low, high] = await store.enqueueRuns(
          created.id,
          [
            { params: {}, priority: 0 },
            { params: {}, priority: 5 },
          ],
          T0,
        );
        await worker('w1');
        const claimed = await dispatch('w1');
        expect(claimed.map((c) => c.runId)).toEqual([high, low]);
        expect(claimed[0]).toMatchObject({ attempt: 1, jobName: 'plain', handler: 'h' });
        expect(await store.getAttempts(high!)).toMatchObject([
          { attempt: 1, workerId: 'w1', status: 'running' },
        ]);
        await expect(dispatch('nobody')).rejects.toMatchObject({ code: 'WORKER_NOT_FOUND' });
      });

      it('round-robin assigns runs in turn across workers, with one shared state', async () => {
        const rr = await routedJob('rr', { routing: { strategy: 'round-robin' } });
        const runs = await enqueue(rr.id, [{}, {}, {}, {}, {}, {}]);
        for (const id of ['w1', 'w2', 'w3']) await worker(id);
        expect(await ids('w1')).toEqual([runs[0], runs[3]]);
        expect(await ids('w2')).toEqual([runs[1], runs[4]]);
        expect(await ids('w3')).toEqual([runs[2], runs[5]]);
        expect(await store.routingState(rr.id)).toMatchObject({ turn: 6, uses: { w1: 2, w2: 2, w3: 2 } });
        expect(await store.routingState(999_999)).toBeNull();
      });

      it('a run assigned to a worker that died or drains is routed again', async () => {
        const rr = await routedJob('first', { routing: { strategy: 'first' } });
        const [run] = await enqueue(rr.id, [{}]);
        await worker('w1');
        await worker('w2');
        expect(await ids('w2')).toEqual([]); // assigned to w1, the first by name
        expect(await store.getRun(run!)).toMatchObject({
          status: 'queued',
          assignedWorkerId: 'w1',
          shard: null,
        });
        await store.drainWorker('w1', T0 + 20);
        expect(await ids('w1')).toEqual([]); // draining: claims nothing, no error
        expect(await ids('w2')).toEqual([run]);
        const [next] = await enqueue(rr.id, [{}]);
        await worker('w0');
        expect(await ids('w2', 10, T0 + 30)).toEqual([]); // assigned to w0
        // w0 stops heartbeating: past its lease the run is routed again.
        await store.heartbeat('w2', [], 5000, T0 + 4000);
        expect(await ids('w2', 10, T0 + 5001)).toEqual([next]);
      });

      it('a label selector sends runs only to matching workers', async () => {
        const eu = await routedJob('eu', { routing: { strategy: 'any', selector: { region: 'eu' } } });
        const [run] = await enqueue(eu.id, [{}]);
        await labelled('us-1', { region: 'us' });
        await labelled('eu-1', { region: 'eu' });
        expect(await ids('us-1')).toEqual([]);
        expect(await ids('eu-1')).toEqual([run]);
      });

      it('consistent-hash keeps one key on one worker', async () => {
        const ch = await routedJob('ch', { routing: { strategy: 'consistent-hash', key: 'customer' } });
        const runs = await enqueue(ch.id, [
          { customer: 1 },
          { customer: 2 },
          { customer: 1 },
          { customer: 2 },
        ]);
        for (const id of ['w1', 'w2', 'w3']) await worker(id);
        const owners = new Map<number, string>();
        for (const id of ['w1', 'w2', 'w3']) for (const runId of await ids(id)) owners.set(runId, id);
        expect(owners.size).toBe(4);
        expect(owners.get(runs[0]!)).toBe(owners.get(runs[2]!));
        expect(owners.get(runs[1]!)).toBe(owners.get(runs[3]!));
      });

      it('busy-over skips a worker already running the job', async () => {
        const bo = await routedJob('bo', { routing: { strategy: 'busy-over' } });
        const [first, second, third] = await enqueue(bo.id, [{}, {}, {}]);
        await worker('w1');
        await worker('w2');
        expect(await ids('w1')).toEqual([first]);
        expect(await ids('w2')).toEqual([second]);
        // Both are busy with the job: the third waits, assigned to nobody.
        expect(await ids('w1')).toEqual([]);
        expect(await ids('w2')).toEqual([]);
        expect(await store.getRun(third!)).toMatchObject({ status: 'queued' });
      });

      it('least-loaded picks the worker with the most free slots', async () => {
        const ll = await routedJob('ll', { routing: { strategy: 'least-loaded' } });
        const filler = await routedJob('filler');
        await labelled('big', {}, 10);
        await labelled('small', {}, 2);
        await enqueue(filler.id, [{}, {}, {}, {}, {}, {}, {}, {}, {}]);
        expect(await ids('big', 9)).toHaveLength(9); // big: 1 free slot, small: 2
        const [run] = await enqueue(ll.id, [{}]);
        expect(await ids('big')).toEqual([]);
        expect(await ids('small')).toEqual([run]);
      });

      it('limits the runs of a job running at once', async () => {
        const limited = await routedJob('limited', { maxConcurrency: 2 });
        const runs = await enqueue(limited.id, [{}, {}, {}]);
        await worker('w1');
        await worker('w2');
        expect(await ids('w1')).toEqual([runs[0], runs[1]]);
        expect(await ids('w2')).toEqual([]);
        const done: AttemptOutcome = {
          runId: runs[0]!,
          attempt: 1,
          group: 'default',
          attemptStatus: 'succeeded',
          error: null,
          result: null,
          run: { status: 'succeeded' },
        };
        await store.finishAttempts([done], T0 + 20);
        expect(await ids('w2', 10, T0 + 30)).toEqual([runs[2]]);
      });

      it('limits the runs of a group running at once', async () => {
        const plain = await routedJob('g');
        const runs = await enqueue(plain.id, [{}, {}, {}]);
        await store.setGroupLimit('default', { maxConcurrency: 2, rateLimit: null }, T0);
        expect(await store.listGroupLimits()).toEqual([
          { namespace: 'default', group: 'default', maxConcurrency: 2, rateLimit: null, updatedAt: T0 },
        ]);
        await worker('w1');
        expect(await ids('w1')).toEqual([runs[0], runs[1]]);
        expect(await ids('w1')).toEqual([]);
        await store.setGroupLimit('default', { maxConcurrency: null, rateLimit: null }, T0 + 1);
        expect(await ids('w1')).toEqual([runs[2]]);
      });

      it('rate-limits the runs of a job started, across claims, with a token bucket in the store', async () => {
        const limited = await routedJob('rated', { rateLimit: { limit: 2, per: '1s' } });
        const runs = await enqueue(limited.id, [{}, {}, {}, {}]);
        await worker('w1');
        await worker('w2');
        // A burst of 2, shared by every worker (and node).
        expect(await ids('w1', 10, T0 + 10)).toEqual([runs[0], runs[1]]);
        expect(await ids('w2', 10, T0 + 10)).toEqual([]);
        // One token back every 500 ms.
        expect(await ids('w2', 10, T0 + 500)).toEqual([]);
        expect(await ids('w2', 10, T0 + 510)).toEqual([runs[2]]);
        expect(await ids('w1', 10, T0 + 1010)).toEqual([runs[3]]);
      });

      it('rate-limits the runs of a group started', async () => {
        const plain = await routedJob('g');
        const runs = await enqueue(plain.id, [{}, {}, {}]);
        await store.setGroupLimit(
          'default',
          { maxConcurrency: null, rateLimit: { limit: 1, perMs: 2000 } },
          T0,
        );
        expect((await store.listGroupLimits())[0]?.rateLimit).toEqual({ limit: 1, perMs: 2000 });
        await worker('w1');
        expect(await ids('w1', 10, T0 + 10)).toEqual([runs[0]]);
        expect(await ids('w1', 10, T0 + 1500)).toEqual([]);
        expect(await ids('w1', 10, T0 + 2010)).toEqual([runs[1]]);
      });

      it('drains a worker: it keeps heartbeating; draining a lost worker is refused', async () => {
        await worker('w1');
        expect(await store.drainWorker('w1', T0)).toMatchObject({ id: 'w1', status: 'draining' });
        expect(await store.drainWorker('w1', T0)).toMatchObject({ status: 'draining' });
        expect((await store.heartbeat('w1', [], 5000, T0 + 1000))?.cancel).toEqual([]);
        expect(await store.drainWorker('ghost', T0)).toBeNull();
        await store.markLostWorkers(T0 + 60_000);
        await expect(store.drainWorker('w1', T0 + 60_001)).rejects.toMatchObject({
          code: 'WORKER_NOT_ACTIVE',
        });
      });

      it('resumes a drained worker: it claims again; resuming a lost worker is refused', async () => {
        const plain = await store.createJob(job('r', { trigger: { kind: 'manual' } }), null, T0);
        const [run] = await enqueue(plain.id, [{}]);
        await worker('w1');
        await store.drainWorker('w1', T0);
        expect(await ids('w1', 10, T0 + 1)).toEqual([]);
        const events: unknown[] = [];
        const unsubscribe = store.subscribe((event) => events.push(event));
        expect(await store.resumeWorker('w1', T0 + 2)).toMatchObject({ id: 'w1', status: 'active' });
        unsubscribe();
        expect(events).toContainEqual({ type: 'runs', group: 'default' });
        expect(await store.resumeWorker('w1', T0 + 2)).toMatchObject({ status: 'active' });
        expect(await ids('w1', 10, T0 + 3)).toEqual([run]);
        expect(await store.resumeWorker('ghost', T0)).toBeNull();
        await store.markLostWorkers(T0 + 60_000);
        await expect(store.resumeWorker('w1', T0 + 60_001)).rejects.toMatchObject({
          code: 'WORKER_NOT_ACTIVE',
        });
      });

      it('fails queued runs past their schedule-to-start timeout, with the reason', async () => {
        const waiting = await routedJob('waiting', { scheduleToStartTimeout: '5s' });
        const patient = await routedJob('patient');
        const [run] = await enqueue(waiting.id, [{}]);
        const [other] = await enqueue(patient.id, [{}]);
        expect(await store.expireQueuedRuns(T0 + 4999, 10)).toEqual([]);
        expect(await store.expireQueuedRuns(T0 + 5000, 10)).toEqual([run]);
        expect(await store.getRun(run!)).toMatchObject({
          status: 'failed',
          finishedAt: T0 + 5000,
          error: { name: 'ScheduleToStartTimeout' },
        });
        expect(await store.getRun(other!)).toMatchObject({ status: 'queued' });
        expect(await store.expireQueuedRuns(T0 + 9000, 10)).toEqual([]);
      });

      it('broadcast: a fire becomes one shard per live worker; a failed shard is retried alone', async () => {
        const b = await store.createJob(
          job('bc', { trigger: { kind: 'every', every: '1m' }, routing: { strategy: 'broadcast' } }),
          T0,
          T0,
        );
        for (const id of ['w4', 'w2', 'w3', 'w1']) await worker(id);
        const entry = { jobId: b.id, expected: T0, next: T0 + 60_000, fires: [T0] };
        await store.fire([entry], null, T0 + 5);
        // The same fire again (a stale writer passing the compare-and-set) adds nothing.
        await store.fire([{ ...entry, expected: T0 + 60_000, next: T0 + 60_000 }], null, T0 + 6);
        const runs = await store.listRuns({ jobId: b.id, limit: 10 });
        expect(runs).toHaveLength(4);
        expect(runs.map((r) => [r.shard?.index, r.shard?.total, r.assignedWorkerId]).sort()).toEqual([
          [0, 4, 'w1'],
          [1, 4, 'w2'],
          [2, 4, 'w3'],
          [3, 4, 'w4'],
        ]);
        const claimed = new Map<string, { index: number; total: number } | undefined>();
        for (const id of ['w1', 'w2', 'w3', 'w4']) {
          const got = await dispatch(id, 10, T0 + 10);
          expect(got).toHaveLength(1);
          claimed.set(id, got[0]!.shard);
        }
        expect([...claimed]).toEqual([
          ['w1', { index: 0, total: 4 }],
          ['w2', { index: 1, total: 4 }],
          ['w3', { index: 2, total: 4 }],
          ['w4', { index: 3, total: 4 }],
        ]);
        const shard2 = (await store.listRuns({ jobId: b.id, limit: 10 })).find((r) => r.workerId === 'w3')!;
        const retry: AttemptOutcome = {
          runId: shard2.id,
          attempt: 1,
          group: 'default',
          attemptStatus: 'failed',
          error: { name: 'Error', message: 'shard failed' },
          result: null,
          run: { status: 'queued', availableAt: T0 + 20 },
        };
        expect(await store.finishAttempts([retry], T0 + 15)).toEqual([true]);
        // Any live worker takes the retried shard; the other shards stay as they were.
        const again = await dispatch('w1', 10, T0 + 20);
        expect(again.map((c) => [c.runId, c.attempt, c.shard])).toEqual([
          [shard2.id, 2, { index: 2, total: 4 }],
        ]);
        expect((await store.listRuns({ jobId: b.id, status: 'running', limit: 10 })).length).toBe(4);
      });

      it('broadcast: a manual trigger becomes one shard per live worker, its id the first shard', async () => {
        const b = await routedJob('manual-bc', { routing: { strategy: 'broadcast' } });
        for (const id of ['w2', 'w1']) await worker(id);
        const [run] = await enqueue(b.id, [{ n: 1 }]);
        const runs = await store.listRuns({ jobId: b.id, limit: 10 });
        expect(
          runs.map((r) => [r.shard?.index, r.shard?.total, r.assignedWorkerId, r.params]).sort(),
        ).toEqual([
          [0, 2, 'w1', { n: 1 }],
          [1, 2, 'w2', { n: 1 }],
        ]);
        expect(runs.find((r) => r.shard?.index === 0)?.id).toBe(run);
      });

      it('broadcast: a trigger by name is sharded the same way and answers the first shard', async () => {
        const b = await routedJob('named-bc', { routing: { strategy: 'broadcast' }, params: { d: 1 } });
        for (const id of ['w2', 'w1']) await worker(id);
        const run = await store.triggerRun('named-bc', { params: null, priority: null }, T0, {
          at: T0,
          actor: 'u',
          action: 'jobs.trigger',
          target: 'jobs:named-bc',
          details: {},
        });
        const runs = await store.listRuns({ jobId: b.id, limit: 10 });
        expect(runs.map((r) => [r.shard?.index, r.assignedWorkerId, r.params]).sort()).toEqual([
          [0, 'w1', { d: 1 }],
          [1, 'w2', { d: 1 }],
        ]);
        expect(run).toMatchObject({
          id: runs.find((r) => r.shard?.index === 0)?.id,
          shard: { index: 0, total: 2 },
        });
        expect(await store.listAudit({ limit: 10 })).toHaveLength(1);
      });

      it('broadcast without live workers: one shard, for the first worker that comes', async () => {
        const b = await routedJob('lonely', { routing: { strategy: 'broadcast' } });
        const [run] = await enqueue(b.id, [{}]);
        expect(await store.listRuns({ jobId: b.id, limit: 10 })).toHaveLength(1);
        await worker('w1');
        expect(await dispatch('w1')).toMatchObject([{ runId: run, shard: { index: 0, total: 1 } }]);
      });

      it('keeps a job’s dispatch policy', async () => {
        const created = await routedJob('policy', {
          routing: { strategy: 'consistent-hash', key: 'k', selector: { region: 'eu' } },
          maxConcurrency: 3,
          scheduleToStartTimeout: '1m',
          resources: { cpu: 0.25, memory: '1Gi', licence: 2 },
        });
        const expected = {
          routing: { strategy: 'consistent-hash', key: 'k', selector: { region: 'eu' } },
          maxConcurrency: 3,
          scheduleToStartMs: 60_000,
          rateLimit: null,
          resources: { cpu: 250, memory: 2 ** 30, licence: 2 },
        };
        expect(created.dispatch).toEqual(expected);
        expect((await store.getJob('policy'))?.dispatch).toEqual(expected);
        const updated = await store.updateJob(
          created.id,
          job('policy', { trigger: { kind: 'manual' } }),
          null,
          T0,
        );
        expect(updated?.dispatch).toEqual({
          routing: { strategy: 'any', key: null, selector: {} },
          maxConcurrency: null,
          scheduleToStartMs: null,
          rateLimit: null,
          resources: null,
        });
      });
    });

    describe('run logs and progress', () => {
      const line = (runId: number, attempt: number, message: string, time = T0) => ({
        runId,
        attempt,
        level: 'info' as const,
        message,
        fields: null,
        time,
      });

      it('stores lines of the worker’s own attempts in order, numbered per run', async () => {
        const { runId } = await queuedRun();
        await worker('w1');
        await worker('w2');
        await store.claimRuns('w1', 1, T0);
        const events: unknown[] = [];
        const off = store.subscribe((event) => events.push(event));
        const batch = { logs: [line(runId, 1, 'a'), line(runId, 1, 'b', T0 + 1)], progress: [] };
        expect(await store.appendRunLogs('w1', batch, 100, T0 + 5)).toBe(2);
        off();
        expect(events).toContainEqual({ type: 'logs', runId });
        // A stranger, or an attempt that never was, writes nothing.
        expect(await store.appendRunLogs('w2', { logs: [line(runId, 1, 'x')], progress: [] }, 100, T0)).toBe(
          0,
        );
        expect(await store.appendRunLogs('w1', { logs: [line(runId, 2, 'y')], progress: [] }, 100, T0)).toBe(
          0,
        );
        await store.appendRunLogs('w1', { logs: [line(runId, 1, 'c', T0 + 2)], progress: [] }, 100, T0 + 6);
        const lines = await store.runLogs(runId, 0, 10);
        expect(lines).toEqual([
          { seq: 1, attempt: 1, time: T0, level: 'info', message: 'a', fields: null },
          { seq: 2, attempt: 1, time: T0 + 1, level: 'info', message: 'b', fields: null },
          { seq: 3, attempt: 1, time: T0 + 2, level: 'info', message: 'c', fields: null },
        ]);
        expect((await store.runLogs(runId, 1, 1)).map((l) => l.message)).toEqual(['b']);
        // A late line of an attempt that ended is still the worker's own.
        await store.cancelRun(runId, T0 + 7);
        const late = {
          runId,
          attempt: 1,
          level: 'warn' as const,
          message: 'late',
          fields: { k: 1 },
          time: T0,
        };
        expect(await store.appendRunLogs('w1', { logs: [late], progress: [] }, 100, T0 + 8)).toBe(1);
        expect((await store.runLogs(runId, 3, 10))[0]).toMatchObject({
          seq: 4,
          message: 'late',
          fields: { k: 1 },
        });
      });

      it('keeps at most maxLines per run, then one marker line', async () => {
        const { runId } = await queuedRun();
        await worker('w1');
        await store.claimRuns('w1', 1, T0);
        const batch = (n: number, from: number) => ({
          logs: Array.from({ length: n }, (_, i) => line(runId, 1, `l${from + i}`)),
          progress: [],
        });
        expect(await store.appendRunLogs('w1', batch(3, 1), 5, T0)).toBe(3);
        expect(await store.appendRunLogs('w1', batch(4, 4), 5, T0)).toBe(2);
        expect(await store.appendRunLogs('w1', batch(2, 8), 5, T0)).toBe(0);
        const lines = await store.runLogs(runId, 0, 100);
        expect(lines.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5, 6]);
        expect(lines[5]).toMatchObject({
          level: 'warn',
          message: expect.stringContaining('limit of 5 lines'),
        });
      });

      it('keeps the last progress of the latest attempt', async () => {
        const { runId } = await queuedRun();
        await worker('w1');
        await store.claimRuns('w1', 1, T0);
        expect(await store.runProgress(runId)).toBeNull();
        await store.appendRunLogs(
          'w1',
          {
            logs: [],
            progress: [
              { runId, attempt: 1, value: 0.2, message: 'one' },
              { runId, attempt: 1, value: 0.4, message: 'two' },
            ],
          },
          100,
          T0 + 3,
        );
        expect(await store.runProgress(runId)).toEqual({
          attempt: 1,
          value: 0.4,
          message: 'two',
          updatedAt: T0 + 3,
        });
      });

      it('prunes lines stored before the retention horizon', async () => {
        const { runId } = await queuedRun();
        await worker('w1');
        await store.claimRuns('w1', 1, T0);
        await store.appendRunLogs('w1', { logs: [line(runId, 1, 'old')], progress: [] }, 100, T0);
        await store.appendRunLogs('w1', { logs: [line(runId, 1, 'new')], progress: [] }, 100, T0 + 1000);
        expect(await store.pruneRunLogs(T0 + 1000, 100)).toBe(1);
        expect((await store.runLogs(runId, 0, 10)).map((l) => l.message)).toEqual(['new']);
      });
    });

    it('notifies subscribers of runs and job changes', async () => {
      const events: unknown[] = [];
      const off = store.subscribe((event) => events.push(event));
      await queuedRun('n');
      off();
      expect(events).toContainEqual({ type: 'jobs' });
      expect(events).toContainEqual({ type: 'runs', group: 'default' });
    });

    describe('access', () => {
      const audit = (action: string, target: string) => ({
        at: T0,
        actor: 'user:root',
        action,
        target,
        details: {},
      });

      it('users: create, read, list, update, delete; names are unique; changes are audited in the same write', async () => {
        const ana = await store.createUser(
          { name: 'ana', role: 'admin', passwordHash: 'h1' },
          T0,
          audit('user.create', 'user:ana'),
        );
        expect(ana).toMatchObject({
          name: 'ana',
          role: 'admin',
          passwordHash: 'h1',
          createdAt: T0,
          updatedAt: T0,
        });
        await store.createUser({ name: 'bob', role: 'viewer', passwordHash: 'h2' }, T0);
        await expect(
          store.createUser({ name: 'ana', role: 'viewer', passwordHash: 'x' }, T0),
        ).rejects.toMatchObject({
          code: 'USER_NAME_TAKEN',
        });
        expect((await store.listUsers()).map((u) => u.name)).toEqual(['ana', 'bob']);
        const bob = await store.updateUser(
          'bob',
          { role: 'operator' },
          T0 + 5,
          audit('user.update', 'user:bob'),
        );
        expect(bob).toMatchObject({ role: 'operator', passwordHash: 'h2', updatedAt: T0 + 5 });
        expect(await store.updateUser('nobody', { role: 'viewer' }, T0)).toBeNull();
        expect(await store.deleteUser('bob', audit('user.delete', 'user:bob'))).toBe(true);
        expect(await store.deleteUser('bob')).toBe(false);
        expect(await store.getUser('bob')).toBeNull();
        // The failed create wrote no audit entry.
        expect((await store.listAudit({ limit: 10 })).map((e) => e.action)).toEqual([
          'user.delete',
          'user.update',
          'user.create',
        ]);
      });

      it('never removes or demotes the last admin, and then writes nothing', async () => {
        await store.createUser({ name: 'root', role: 'admin', passwordHash: 'h' }, T0);
        await expect(
          store.updateUser('root', { role: 'viewer' }, T0, audit('user.update', 'user:root')),
        ).rejects.toMatchObject({
          code: 'LAST_ADMIN',
        });
        await expect(store.deleteUser('root', audit('user.delete', 'user:root'))).rejects.toMatchObject({
          code: 'LAST_ADMIN',
        });
        expect(await store.getUser('root')).toMatchObject({ role: 'admin' });
        expect(await store.listAudit({ limit: 10 })).toEqual([]);
        await store.createUser({ name: 'second', role: 'admin', passwordHash: 'h' }, T0);
        expect(await store.updateUser('root', { role: 'viewer' }, T0)).toMatchObject({ role: 'viewer' });
      });

      it('a single sign-on login never demotes the last admin user, and then writes nothing', async () => {
        const idp = 'https://idp.example';
        const login = (role: 'admin' | 'viewer', at: number) =>
          store.upsertExternalUser(
            { issuer: idp, subject: 's-root', name: 'root.sso', role },
            at,
            audit('auth.oidc.login', 'users:root.sso'),
          );
        await login('admin', T0);
        await expect(login('viewer', T0 + 1)).rejects.toMatchObject({ code: 'LAST_ADMIN' });
        expect(await store.getUser('root.sso')).toMatchObject({ role: 'admin', updatedAt: T0 });
        expect(await store.listAudit({ limit: 10 })).toHaveLength(1);
        await store.createUser({ name: 'second', role: 'admin', passwordHash: 'h' }, T0);
        expect(await login('viewer', T0 + 2)).toMatchObject({ role: 'viewer' });
      });

      it('external users: found by issuer and subject, renamed and re-mapped at each login, never taking over a name', async () => {
        const local = await store.createUser({ name: 'ana', role: 'viewer', passwordHash: 'h' }, T0);
        expect(local).toMatchObject({ issuer: null, subject: null });
        const idp = 'https://idp.example';
        const first = await store.upsertExternalUser(
          { issuer: idp, subject: 's-1', name: 'ana.sso', role: 'operator' },
          T0,
          audit('auth.oidc.login', 'users:ana.sso'),
        );
        expect(first).toMatchObject({
          name: 'ana.sso',
          role: 'operator',
          issuer: idp,
          subject: 's-1',
          passwordHash: EXTERNAL_PASSWORD_HASH,
          createdAt: T0,
          updatedAt: T0,
        });
        // The same identity again: the same row, with the provider's name and role of now.
        const again = await store.upsertExternalUser(
          { issuer: idp, subject: 's-1', name: 'ana.renamed', role: 'admin' },
          T0 + 5,
        );
        expect(again).toMatchObject({ id: first.id, name: 'ana.renamed', role: 'admin', updatedAt: T0 + 5 });
        expect(await store.getUser('ana.sso')).toBeNull();
        // A name held by a local user, or by another identity, is refused and nothing is written.
        await expect(
          store.upsertExternalUser(
            { issuer: idp, subject: 's-2', name: 'ana', role: 'admin' },
            T0,
            audit('auth.oidc.login', 'users:ana'),
          ),
        ).rejects.toMatchObject({ code: 'USER_NAME_TAKEN' });
        await expect(
          store.upsertExternalUser({ issuer: idp, subject: 's-1', name: 'ana', role: 'admin' }, T0),
        ).rejects.toMatchObject({ code: 'USER_NAME_TAKEN' });
        await expect(
          store.upsertExternalUser(
            { issuer: 'https://other.example', subject: 's-1', name: 'ana.renamed', role: 'viewer' },
            T0,
          ),
        ).rejects.toMatchObject({ code: 'USER_NAME_TAKEN' });
        expect(await store.getUser('ana')).toMatchObject({
          id: local.id,
          role: 'viewer',
          passwordHash: 'h',
          issuer: null,
        });
        expect(await store.getUser('ana.renamed')).toMatchObject({ id: first.id, subject: 's-1' });
        // The same subject at another issuer is another user.
        expect(
          await store.upsertExternalUser(
            { issuer: 'https://other.example', subject: 's-1', name: 'ana.other', role: 'viewer' },
            T0,
          ),
        ).toMatchObject({ issuer: 'https://other.example', subject: 's-1' });
        expect((await store.listAudit({ limit: 10 })).map((e) => e.target)).toEqual(['users:ana.sso']);
        // Sessions carry the user's identity.
        await store.createSession(
          { idHash: 'sx', userId: first.id, csrfToken: 'c', expiresAt: T0 + 1000 },
          T0,
        );
        expect(await store.getSession('sx', T0)).toMatchObject({
          user: { name: 'ana.renamed', issuer: idp, subject: 's-1' },
        });
      });

      it('logins under way at an OpenID provider: taken once, never after they expired', async () => {
        const login = (idHash: string, expiresAt: number) => ({
          idHash,
          state: `state-${idHash}`,
          nonce: `nonce-${idHash}`,
          codeVerifier: `verifier-${idHash}`,
          expiresAt,
        });
        await store.createOidcLogin(login('a', T0 + 600), T0);
        await store.createOidcLogin(login('b', T0 + 600), T0);
        expect(await store.takeOidcLogin('a', T0 + 599)).toEqual({ ...login('a', T0 + 600), createdAt: T0 });
        expect(await store.takeOidcLogin('a', T0 + 599)).toBeNull();
        expect(await store.takeOidcLogin('nope', T0)).toBeNull();
        // Expired: not answered, and gone.
        expect(await store.takeOidcLogin('b', T0 + 600)).toBeNull();
        expect(await store.takeOidcLogin('b', T0)).toBeNull();
        // A new login removes those that expired before it.
        await store.createOidcLogin(login('c', T0 + 10), T0);
        await store.createOidcLogin(login('d', T0 + 700), T0 + 10);
        expect(await store.takeOidcLogin('c', T0)).toBeNull();
        expect(await store.takeOidcLogin('d', T0 + 10)).toMatchObject({
          state: 'state-d',
          codeVerifier: 'verifier-d',
        });
      });

      it('sessions: found with their user until they expire; a new password ends them', async () => {
        const user = await store.createUser({ name: 'ana', role: 'operator', passwordHash: 'h' }, T0);
        await store.createSession(
          { idHash: 's1', userId: user.id, csrfToken: 'c1', expiresAt: T0 + 1000 },
          T0,
        );
        expect(await store.getSession('s1', T0 + 999)).toMatchObject({
          idHash: 's1',
          csrfToken: 'c1',
          createdAt: T0,
          expiresAt: T0 + 1000,
          user: { name: 'ana', role: 'operator' },
        });
        expect(await store.getSession('s1', T0 + 1000)).toBeNull();
        expect(await store.getSession('nope', T0)).toBeNull();
        await store.createSession(
          { idHash: 's2', userId: user.id, csrfToken: 'c2', expiresAt: T0 + 9000 },
          T0,
        );
        await store.deleteSession('s2');
        expect(await store.getSession('s2', T0)).toBeNull();
        await store.createSession(
          { idHash: 's3', userId: user.id, csrfToken: 'c3', expiresAt: T0 + 9000 },
          T0,
        );
        await store.updateUser('ana', { passwordHash: 'h2' }, T0);
        expect(await store.getSession('s3', T0)).toBeNull();
      });

      it('API tokens: found by hash, listed newest first, deleted; groups survive the round trip', async () => {
        const ci = await store.createApiToken(
          { name: 'ci', tokenHash: 'aa', role: 'operator', groups: null, createdBy: 'user:ana' },
          T0,
          audit('token.create', 'token:ci'),
        );
        const w = await store.createApiToken(
          { name: 'w-a', tokenHash: 'bb', role: 'worker', groups: ['a', 'b'], createdBy: 'user:ana' },
          T0 + 1,
        );
        expect(await store.findApiToken('aa')).toMatchObject({
          id: ci.id,
          role: 'operator',
          groups: null,
          createdAt: T0,
        });
        expect(await store.findApiToken('bb')).toMatchObject({ role: 'worker', groups: ['a', 'b'] });
        expect(await store.findApiToken('cc')).toBeNull();
        expect((await store.listApiTokens()).map((t) => t.id)).toEqual([w.id, ci.id]);
        expect(await store.deleteApiToken(ci.id, audit('token.delete', 'token:ci'))).toBe(true);
        expect(await store.deleteApiToken(ci.id)).toBe(false);
        expect(await store.findApiToken('aa')).toBeNull();
      });

      it('audit log: appended, paged newest first', async () => {
        for (let i = 0; i < 5; i++)
          await store.appendAudit({
            at: T0 + i,
            actor: 'admin-token',
            action: 'job.create',
            target: `job:j${i}`,
            details: { i },
          });
        const page = await store.listAudit({ limit: 2 });
        expect(page.map((e) => e.target)).toEqual(['job:j4', 'job:j3']);
        expect(page[0]).toMatchObject({ at: T0 + 4, actor: 'admin-token', details: { i: 4 } });
        const rest = await store.listAudit({ limit: 10, before: page[1]!.id });
        expect(rest.map((e) => e.target)).toEqual(['job:j2', 'job:j1', 'job:j0']);
      });

      it('overview counts and runs per minute by outcome', async () => {
        const created = await store.createJob(job('m', { trigger: { kind: 'manual' } }), null, T0);
        const ids = await store.enqueueRuns(
          created.id,
          Array.from({ length: 4 }, () => ({ params: {}, priority: 0 })),
          T0,
        );
        await worker();
        expect(await store.workerIdentity('w1')).toEqual({
          namespace: 'default',
          group: 'default',
          registeredBy: '',
        });
        expect(await store.workerIdentity('nobody')).toBeNull();
        const claimed = await store.claimRuns('w1', 3, T0);
        const end = (runId: number, status: 'succeeded' | 'failed', at: number) =>
          store.finishAttempts(
            [
              {
                runId,
                attempt: 1,
                group: 'default',
                attemptStatus: status,
                error: status === 'failed' ? { name: 'E', message: 'x' } : null,
                result: null,
                run: { status },
              },
            ],
            at,
          );
        await end(claimed[0]!.runId, 'succeeded', T0 + 10_000);
        await end(claimed[1]!.runId, 'failed', T0 + 70_000);
        await store.heartbeatNode(
          {
            instance: 'n1:1',
            id: 'n1',
            address: 'http://n1',
            version: '1',
            startedAt: T0,
            partitions: [0],
            clockSkewMs: 0,
          },
          3000,
          T0,
        );
        expect(await store.overviewCounts(T0, T0 + 1000)).toEqual({
          running: 1,
          queued: 1,
          ended: { succeeded: 1, failed: 1, timed_out: 0, cancelled: 0 },
          workersOnline: 1,
          nodesOnline: 1,
        });
        expect((await store.overviewCounts(T0 + 60_000, T0 + 6000)).ended).toMatchObject({
          succeeded: 0,
          failed: 1,
        });
        expect(await store.overviewCounts(T0, T0 + 6000)).toMatchObject({ workersOnline: 0, nodesOnline: 0 });
        expect(await store.runsPerMinute(T0)).toEqual([
          { minute: T0, status: 'succeeded', count: 1 },
          { minute: T0 + 60_000, status: 'failed', count: 1 },
        ]);
        expect(await store.runsPerMinute(T0 + 60_000)).toHaveLength(1);
        expect(ids).toHaveLength(4);
      });

      it('fire lateness: first starts of scheduled runs in the window, nearest rank over the newest sample', async () => {
        const created = await store.createJob(job('late'), T0, T0);
        // Fires at T0, T0+1s, …; each is claimed (first attempt) at a growing delay.
        const fires = Array.from({ length: 5 }, (_, i) => T0 + i * 1000);
        await store.fire([{ jobId: created.id, expected: T0, next: T0 + 5000, fires }], null, T0 + 4000);
        await store.registerWorker(
          {
            id: 'w1',
            name: 'w1',
            group: 'default',
            handlers: ['h'],
            capacity: 10,
            labels: {},
            version: 't',
            host: 'h',
          },
          60_000,
          T0,
        );
        const lateness = [100, 300, 200, 400, 5000];
        const started: number[] = [];
        for (const late of lateness) {
          // Oldest fire first: the claim order; each claim at its fire time plus the lateness.
          const at = fires[started.length]! + late;
          const claimed = await store.claimRuns('w1', 1, at);
          expect(claimed).toHaveLength(1);
          started.push(at);
        }
        // A manual run starts too, and is no scheduled run.
        const manual = await store.createJob(job('by-hand', { trigger: { kind: 'manual' } }), null, T0);
        await store.enqueueRuns(manual.id, [{ params: {}, priority: 0 }], T0 + 9000);
        expect(await store.claimRuns('w1', 1, T0 + 9500)).toHaveLength(1);
        expect(await store.fireLateness(T0, T0 + 10_000, 100)).toEqual({
          count: 5,
          p50: 300,
          p99: 5000,
          sampled: false,
        });
        // The newest 2 starts only: 400 and 5000.
        expect(await store.fireLateness(T0, T0 + 10_000, 2)).toEqual({
          count: 2,
          p50: 400,
          p99: 5000,
          sampled: true,
        });
        // The window starts after the first two starts.
        expect((await store.fireLateness(started[2]!, T0 + 10_000, 100)).count).toBe(3);
        expect(await store.fireLateness(T0 + 20_000, T0 + 30_000, 100)).toEqual({
          count: 0,
          p50: null,
          p99: null,
          sampled: false,
        });
      });

      it('runs by creation time: since inclusive, until exclusive, with the id cursor', async () => {
        const created = await store.createJob(job('ranged', { trigger: { kind: 'manual' } }), null, T0);
        const ids: number[] = [];
        for (let i = 0; i < 5; i++) {
          ids.push(...(await store.enqueueRuns(created.id, [{ params: {}, priority: 0 }], T0 + i * 1000)));
        }
        const list = async (q: Partial<Parameters<Store['listRuns']>[0]>) =>
          (await store.listRuns({ limit: 10, ...q })).map((r) => r.id);
        expect(await list({ createdSince: T0 + 1000, createdUntil: T0 + 4000 })).toEqual([
          ids[3],
          ids[2],
          ids[1],
        ]);
        expect(await list({ createdSince: T0 + 3000 })).toEqual([ids[4], ids[3]]);
        expect(await list({ createdUntil: T0 + 1000 })).toEqual([ids[0]]);
        expect(await list({ createdSince: T0 + 10_000 })).toEqual([]);
        // Paging inside a range.
        expect(
          await list({ createdSince: T0 + 1000, createdUntil: T0 + 4000, before: ids[2], limit: 1 }),
        ).toEqual([ids[1]]);
        expect(await list({ createdSince: T0, jobId: created.id, status: 'queued' })).toHaveLength(5);
      });

      it('lists runs as summaries without their params and result', async () => {
        const created = await store.createJob(job('summary', { trigger: { kind: 'manual' } }), null, T0);
        const [id] = await store.enqueueRuns(
          created.id,
          [{ params: { blob: 'x'.repeat(1000) }, priority: 0 }],
          T0,
        );
        const [full] = await store.listRuns({ jobId: created.id, limit: 10 });
        const [summary] = await store.listRuns({ jobId: created.id, limit: 10, summary: true });
        expect(full).toMatchObject({ id, params: { blob: 'x'.repeat(1000) } });
        expect(summary).toEqual({ ...full, params: {}, result: null });
      });
    });
  });
  describeSchedulesConformance(dialect, open);
  describeFireAheadConformance(dialect, open);
  describeResourceConformance(dialect, open);
  describeAttemptsConformance(dialect, open, probe);
  describeAlertsConformance(dialect, open);
  describeFencingConformance(dialect, open);
  describeHandOffConformance(dialect, open, probe.handsOff);
  describeRetentionConformance(dialect, open);
  describeQueueConformance(dialect, open);
  describeTracingConformance(dialect, open);
  describeSecretsConformance(dialect, open);
  describeNamespacesConformance(dialect, open);
  describeWorkflowsConformance(dialect, open);
  describeWorkflowMapsConformance(dialect, open);
  describeWorkflowMapRepairConformance(dialect, open);
  describeDependenciesConformance(dialect, open);
  describeWorkflowTriggersConformance(dialect, open);
  describeWorkflowOverlapConformance(dialect, open);
  describeWorkflowRetentionConformance(dialect, open);
  describeWorkflowQuotasConformance(dialect, open);
}
