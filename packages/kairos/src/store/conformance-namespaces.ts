import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileCalendar } from '../core/calendar.ts';
import { compileJob } from '../core/job.ts';
import { QuotaExceededError } from '../errors.ts';
import type { Store } from './store.ts';

/**
 * The namespaces part of the store conformance suite (docs/tenancy.md): the namespaces and grants
 * themselves, the namespace every row carries (a run its job's), lists that filter by it, and the
 * claim paths, which hand a worker only runs of its own namespace and group. Run by
 * `describeStoreConformance` on every dialect, unchanged.
 */
export function describeNamespacesConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, namespaces: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);

    beforeEach(async () => {
      store = await open();
      await store.migrate();
      await store.namespaces.create({ name: 'blue', description: 'team blue' }, T0);
    });
    afterEach(async () => {
      await store.close();
    });

    const manual = (name: string) => compileJob({ name, handler: 'h', trigger: { kind: 'manual' } });
    const register = (id: string, namespace: string | undefined, group = 'default') =>
      store.registerWorker(
        {
          id,
          name: id,
          group,
          handlers: ['h'],
          capacity: 10,
          labels: {},
          version: 't',
          host: 'h',
          namespace,
        },
        5000,
        T0,
      );

    it('has `default` from the migration; creates, lists and refuses a second namespace of a name', async () => {
      expect((await store.namespaces.list()).map((n) => n.name)).toEqual(['blue', 'default']);
      expect(await store.namespaces.get('blue')).toEqual({
        name: 'blue',
        description: 'team blue',
        quotas: null,
        createdAt: T0,
      });
      expect(await store.namespaces.get('red')).toBeNull();
      await expect(store.namespaces.create({ name: 'blue', description: '' }, T0)).rejects.toMatchObject({
        code: 'NAMESPACE_TAKEN',
      });
    });

    it('sets and clears a namespace`s quotas; null for a namespace that does not exist', async () => {
      const quotas = { maxJobs: 3, maxFiresPerSecond: 1.5, minInterval: '10s' };
      expect(await store.namespaces.setQuotas('blue', quotas)).toMatchObject({ name: 'blue', quotas });
      expect((await store.namespaces.get('blue'))?.quotas).toEqual(quotas);
      expect((await store.namespaces.list()).find((n) => n.name === 'blue')?.quotas).toEqual(quotas);
      expect((await store.namespaces.get('default'))?.quotas).toBeNull();
      expect((await store.namespaces.setQuotas('blue', null))?.quotas).toBeNull();
      expect(await store.namespaces.setQuotas('red', quotas)).toBeNull();
    });

    it('checks a job create`s quota with the triggers of its namespace`s jobs, and writes nothing on refusal', async () => {
      await store.createJob(manual('b1'), null, T0, 'blue');
      await store.createJob(
        compileJob({ name: 'b2', handler: 'h', trigger: { kind: 'every', every: '5s' } }),
        T0 + 5000,
        T0,
        'blue',
      );
      await store.createJob(manual('d1'), null, T0);
      const seen: string[][] = [];
      await store.createJob(manual('b3'), null, T0, 'blue', (triggers) => {
        seen.push(triggers.map((t) => t.kind).sort());
      });
      expect(seen).toEqual([['every', 'manual']]);
      const refuse = () => {
        throw new QuotaExceededError('maxJobs', 3, 3, 'full');
      };
      await expect(store.createJob(manual('b4'), null, T0, 'blue', refuse)).rejects.toMatchObject({
        code: 'QUOTA_EXCEEDED',
        status: 422,
      });
      expect(await store.getJob('b4')).toBeNull();
    });

    it('counts a namespace`s queued runs, up to a bound', async () => {
      const blue = await store.createJob(manual('qb'), null, T0, 'blue');
      const other = await store.createJob(manual('qd'), null, T0);
      const request = { params: {}, priority: 0, availableAt: T0 };
      await store.enqueueRuns(blue.id, [request, request, request], T0);
      await store.enqueueRuns(other.id, [request], T0);
      expect(await store.countQueuedRuns('blue', 100)).toBe(3);
      expect(await store.countQueuedRuns('blue', 2)).toBe(2);
      expect(await store.countQueuedRuns('default', 100)).toBe(1);
      expect(await store.countQueuedRuns('red', 100)).toBe(0);
    });

    it('never lets concurrent creates past a count the check enforces', async () => {
      const limit = 3;
      const check = (triggers: readonly unknown[]) => {
        if (triggers.length + 1 > limit)
          throw new QuotaExceededError('maxJobs', limit, triggers.length, 'full');
      };
      const outcomes = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => store.createJob(manual(`race-${i}`), null, T0, 'blue', check)),
      );
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(limit);
      for (const o of outcomes) {
        if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'QUOTA_EXCEEDED' });
      }
      expect(await store.listJobs({ namespace: 'blue', limit: 100 })).toHaveLength(limit);
    });

    it('gives each job its namespace and each run its job`s, by every way a run is made', async () => {
      const plain = await store.createJob(manual('old'), null, T0);
      expect(plain.namespace).toBe('default');
      const job = await store.createJob(manual('b1'), null, T0, 'blue');
      expect(job.namespace).toBe('blue');
      expect((await store.getJob('b1'))?.namespace).toBe('blue');
      const [enqueued] = await store.enqueueRuns(job.id, [{ params: {}, priority: 0 }], T0);
      const triggered = await store.triggerRun('b1', { params: null, priority: null }, T0);
      const every = await store.createJob(
        compileJob({ name: 'b2', handler: 'h', trigger: { kind: 'every', every: '1s' } }),
        T0,
        T0,
        'blue',
      );
      await store.fire([{ jobId: every.id, expected: T0, next: T0 + 1000, fires: [T0] }], null, T0);
      const backfilled = await store.backfillRuns(every.id, [T0 - 1000], 'allow', T0);
      const runs = await store.listRuns({ namespace: 'blue', limit: 10 });
      // Queued by hand, triggered, fired, backfilled.
      expect(runs.map((r) => r.cause).sort()).toEqual(['backfill', 'manual', 'manual', 'schedule']);
      expect(runs.map((r) => r.id)).toContain(enqueued);
      expect(runs.map((r) => r.id)).toContain(triggered!.id);
      expect(runs.map((r) => r.id)).toContain(backfilled.created[0]!.runId);
      expect(runs.every((r) => r.namespace === 'blue')).toBe(true);
      expect((await store.getRun(enqueued!))?.namespace).toBe('blue');
      expect(await store.listRuns({ namespace: 'default', limit: 10 })).toEqual([]);
      expect((await store.listJobs({ namespace: 'blue', limit: 10 })).map((j) => j.name)).toEqual([
        'b1',
        'b2',
      ]);
      expect((await store.listJobs({ namespace: 'default', limit: 10 })).map((j) => j.name)).toEqual(['old']);
      expect(await store.listJobs({ limit: 10 })).toHaveLength(3);
    });

    it('hands a worker only runs of its own namespace and group, on every claim path', async () => {
      const blue = await store.createJob(manual('b'), null, T0, 'blue');
      const plain = await store.createJob(manual('d'), null, T0);
      await store.enqueueRuns(blue.id, [{ params: {}, priority: 0 }], T0);
      await store.enqueueRuns(plain.id, [{ params: {}, priority: 0 }], T0);
      await register('wd', undefined);
      await register('wb', 'blue');
      expect((await store.listWorkers('blue')).map((w) => [w.id, w.namespace])).toEqual([['wb', 'blue']]);
      expect(await store.workerIdentity('wb')).toMatchObject({ namespace: 'blue', group: 'default' });

      expect((await store.claimRuns('wd', 10, T0)).map((c) => c.jobName)).toEqual(['d']);
      expect((await store.dispatchRuns('wb', 10, T0, 0)).map((c) => c.jobName)).toEqual(['b']);
      // Nothing of the other namespace is left for either.
      await store.enqueueRuns(blue.id, [{ params: {}, priority: 0 }], T0);
      expect(await store.claimRuns('wd', 10, T0)).toEqual([]);
      expect((await store.dispatchForPoll('wd', 10, T0, 0)).runs).toEqual([]);
      expect((await store.dispatchForPoll('wb', 10, T0, 0)).runs.map((c) => c.jobName)).toEqual(['b']);
    });

    it('claims ahead only runs of the worker`s namespace', async () => {
      const blue = await store.createJob(manual('b'), null, T0, 'blue');
      await store.enqueueRuns(blue.id, [{ params: {}, priority: 0, availableAt: T0 + 1000 }], T0);
      await register('wd', undefined);
      await register('wb', 'blue');
      expect(await store.dispatchAhead('wd', 5, T0 + 2000, T0)).toEqual([]);
      expect((await store.dispatchAhead('wb', 5, T0 + 2000, T0)).map((c) => c.jobName)).toEqual(['b']);
    });

    it('keeps calendars, API tokens and audit entries in their namespace', async () => {
      const calendar = compileCalendar({ name: 'holidays', dates: ['2026-12-25'] });
      const put = await store.putCalendar(calendar, T0, 'blue');
      expect(put).toMatchObject({ created: true, calendar: { namespace: 'blue' } });
      expect((await store.listCalendars('blue')).map((c) => c.name)).toEqual(['holidays']);
      expect(await store.listCalendars('default')).toEqual([]);
      // Names are still global in this release: another namespace cannot take over the calendar.
      await expect(store.putCalendar(calendar, T0 + 1, 'default')).rejects.toMatchObject({
        code: 'NAME_TAKEN',
      });
      expect((await store.getCalendars(['holidays']))[0]).toMatchObject({ namespace: 'blue', updatedAt: T0 });

      const token = await store.createApiToken(
        {
          name: 'ci',
          tokenHash: 'a'.repeat(64),
          role: 'operator',
          groups: null,
          createdBy: 'x',
          namespace: 'blue',
        },
        T0,
        { namespace: 'blue', at: T0, actor: 'x', action: 'token.create', target: 'token:ci', details: {} },
      );
      expect(token.namespace).toBe('blue');
      expect((await store.findApiToken('a'.repeat(64)))?.namespace).toBe('blue');
      await store.createApiToken(
        { name: 'old', tokenHash: 'b'.repeat(64), role: 'viewer', groups: null, createdBy: 'x' },
        T0,
      );
      expect((await store.listApiTokens('blue')).map((t) => t.name)).toEqual(['ci']);
      expect((await store.listApiTokens('default')).map((t) => t.name)).toEqual(['old']);
      await store.appendAudit({ at: T0, actor: 'x', action: 'job.create', target: 'job:d', details: {} });
      expect((await store.listAudit({ namespaces: ['blue'], limit: 10 })).map((a) => a.action)).toEqual([
        'token.create',
      ]);
      expect((await store.listAudit({ namespaces: ['default'], limit: 10 })).map((a) => a.action)).toEqual([
        'job.create',
      ]);
      expect(await store.listAudit({ limit: 10 })).toHaveLength(2);
      expect(await store.listAudit({ namespaces: ['blue', 'default'], limit: 10 })).toHaveLength(2);
    });

    it('grants users a role per namespace', async () => {
      await store.createUser({ name: 'ana', role: 'viewer', passwordHash: 'h' }, T0);
      expect(await store.namespaces.putGrant('ana', 'blue', 'operator', T0)).toEqual({
        user: 'ana',
        namespace: 'blue',
        role: 'operator',
        createdAt: T0,
      });
      expect(await store.namespaces.putGrant('ana', 'blue', 'admin', T0 + 1)).toMatchObject({
        role: 'admin',
      });
      expect(await store.namespaces.putGrant('nobody', 'blue', 'admin', T0)).toBeNull();
      expect((await store.namespaces.listGrants({ user: 'ana' })).map((g) => [g.namespace, g.role])).toEqual([
        ['blue', 'admin'],
      ]);
      expect(await store.namespaces.listGrants({ namespace: 'default' })).toEqual([]);
      expect(await store.namespaces.deleteGrant('ana', 'blue')).toBe(true);
      expect(await store.namespaces.deleteGrant('ana', 'blue')).toBe(false);
      await store.namespaces.putGrant('ana', 'blue', 'viewer', T0);
      await store.deleteUser('ana');
      expect(await store.namespaces.listGrants({})).toEqual([]);
    });

    it('keeps a user`s last grant when asked to, even against concurrent deletes', async () => {
      await store.createUser({ name: 'bo', role: 'viewer', passwordHash: 'h' }, T0);
      await store.namespaces.create({ name: 'green', description: '' }, T0);
      await store.namespaces.putGrant('bo', 'blue', 'admin', T0);
      await store.namespaces.putGrant('bo', 'green', 'admin', T0);
      // Both at once: one may go, the other is the last and stays.
      const outcomes = await Promise.allSettled([
        store.namespaces.deleteGrant('bo', 'blue', undefined, { keepLast: true }),
        store.namespaces.deleteGrant('bo', 'green', undefined, { keepLast: true }),
      ]);
      expect(outcomes.filter((o) => o.status === 'fulfilled').map((o) => o.value)).toEqual([true]);
      const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
      expect(refused.reason).toMatchObject({ code: 'FORBIDDEN' });
      expect(await store.namespaces.listGrants({ user: 'bo' })).toHaveLength(1);
      expect(await store.namespaces.deleteGrant('nobody', 'blue', undefined, { keepLast: true })).toBe(false);
      // Without keepLast the last grant goes.
      const [left] = await store.namespaces.listGrants({ user: 'bo' });
      expect(await store.namespaces.deleteGrant('bo', left!.namespace)).toBe(true);
    });

    it('deletes only an empty namespace, with its grants and stopped workers', async () => {
      expect(await store.namespaces.delete('red')).toBe('not_found');
      const job = await store.createJob(manual('b'), null, T0, 'blue');
      await register('wb', 'blue');
      expect(await store.namespaces.delete('blue')).toBe('not_empty');
      expect(await store.deleteJob(job.name)).toBe(true);
      expect(await store.namespaces.delete('blue')).toBe('not_empty');
      await store.unregisterWorker('wb', T0);
      await store.createUser({ name: 'ana', role: 'viewer', passwordHash: 'h' }, T0);
      await store.namespaces.putGrant('ana', 'blue', 'operator', T0);
      expect(
        await store.namespaces.delete('blue', {
          namespace: '*',
          at: T0,
          actor: 'x',
          action: 'namespace.delete',
          target: 'namespace:blue',
          details: {},
        }),
      ).toBe('deleted');
      expect(await store.namespaces.get('blue')).toBeNull();
      expect(await store.namespaces.listGrants({})).toEqual([]);
      expect(await store.workerIdentity('wb')).toBeNull();
      expect((await store.listAudit({ namespaces: ['*'], limit: 5 })).map((a) => a.action)).toEqual([
        'namespace.delete',
      ]);
    });
  });
}
