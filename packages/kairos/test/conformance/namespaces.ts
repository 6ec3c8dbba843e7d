import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileCalendar } from '../../src/core/calendar.ts';
import { compileJob } from '../../src/core/job.ts';
import { QuotaExceededError } from '../../src/errors.ts';
import type { Store } from '../../src/store/store.ts';

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

    it('checks an edit`s quota with the triggers of the namespace`s other jobs; a refused edit writes nothing', async () => {
      const b1 = await store.createJob(manual('b1'), null, T0, 'blue');
      await store.createJob(
        compileJob({ name: 'b2', handler: 'h', trigger: { kind: 'every', every: '5s' } }),
        T0 + 5000,
        T0,
        'blue',
      );
      await store.createJob(manual('d1'), null, T0);
      const faster = compileJob({ name: 'b1', handler: 'h', trigger: { kind: 'every', every: '1s' } });
      const seen: string[][] = [];
      const edited = await store.updateJob(b1.id, faster, T0 + 1000, T0, undefined, (triggers) => {
        seen.push(triggers.map((t) => t.kind));
      });
      expect(seen).toEqual([['every']]);
      expect(edited?.version).toBe(2);
      const refuse = () => {
        throw new QuotaExceededError('maxFiresPerSecond', 1, 1.2, 'too fast');
      };
      const back = compileJob({ name: 'b1', handler: 'h', trigger: { kind: 'every', every: '2s' } });
      await expect(store.updateJob(b1.id, back, T0 + 2000, T0, undefined, refuse)).rejects.toMatchObject({
        code: 'QUOTA_EXCEEDED',
      });
      await store.updateJob(b1.id, { ...faster, paused: true }, T0 + 1000, T0);
      await expect(
        store.resumeJob(b1.id, back, T0 + 2000, null, T0, undefined, refuse),
      ).rejects.toMatchObject({
        code: 'QUOTA_EXCEEDED',
      });
      expect(await store.getJob('b1')).toMatchObject({ version: 3, paused: true, trigger: { every: 1000 } });
      // An edit that does not apply (another version expected) is not judged.
      expect(await store.updateJob(b1.id, back, T0, T0, { version: 1, nextFireAt: null }, refuse)).toBeNull();
    });

    it('never lets concurrent edits and resumes past a rate the check enforces', async () => {
      const limit = 3;
      const jobs = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          store.createJob({ ...manual(`e-${i}`), paused: i % 2 === 1 }, null, T0, 'blue'),
        ),
      );
      const check = (triggers: readonly { kind: string }[]) => {
        const firing = triggers.filter((t) => t.kind === 'every').length;
        if (firing + 1 > limit) throw new QuotaExceededError('maxFiresPerSecond', limit, firing, 'full');
      };
      const outcomes = await Promise.allSettled(
        jobs.map((job) => {
          const def = compileJob({ name: job.name, handler: 'h', trigger: { kind: 'every', every: '1s' } });
          return job.paused
            ? store.resumeJob(job.id, def, T0 + 1000, null, T0, undefined, check)
            : store.updateJob(job.id, def, T0 + 1000, T0, undefined, check);
        }),
      );
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(limit);
      for (const o of outcomes) {
        if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'QUOTA_EXCEEDED' });
      }
      const stored = await store.listJobs({ namespace: 'blue', limit: 100 });
      expect(stored.filter((j) => j.trigger.kind === 'every')).toHaveLength(limit);
    });

    it('never lets concurrent triggers, batches and backfills past maxQueuedRuns; keys answer their runs', async () => {
      const limit = 6;
      const job = await store.createJob(manual('q'), null, T0, 'blue');
      const other = await store.createJob(manual('q-default'), null, T0);
      await store.enqueueRuns(other.id, [{ params: {}, priority: 0 }], T0);
      const request = { params: {}, priority: 0 };
      const outcomes = await Promise.allSettled([
        ...Array.from({ length: 6 }, () =>
          store.triggerRun('q', { params: null, priority: null }, T0, undefined, limit),
        ),
        ...Array.from({ length: 4 }, () => store.enqueueRuns(job.id, [request, request], T0, limit)),
        ...Array.from({ length: 3 }, (_, i) =>
          store.backfillRuns(
            job.id,
            [T0 - 3000 * (i + 1), T0 - 3000 * (i + 1) - 1000],
            'allow',
            T0,
            null,
            limit,
          ),
        ),
      ]);
      for (const o of outcomes) {
        if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'QUOTA_EXCEEDED', status: 429 });
      }
      const queued = await store.countQueuedRuns('blue', 100);
      expect(queued).toBeLessThanOrEqual(limit);
      // A refusal comes only when the runs would pass it: single triggers fit until it is reached.
      const trigger = (idempotencyKey?: string) =>
        store.triggerRun('q', { params: {}, priority: 0, idempotencyKey }, T0, undefined, limit);
      for (let n = queued; n < limit; n++) await trigger();
      await expect(trigger()).rejects.toMatchObject({
        code: 'QUOTA_EXCEEDED',
        status: 429,
        details: { quota: 'maxQueuedRuns', limit, current: limit },
      });
      expect(await store.countQueuedRuns('blue', 100)).toBe(limit);
      // Without the quota (an internal path) a run is queued; then a key that holds a run answers
      // it, as a repeated request, and only a new key is refused.
      const key = { params: {}, priority: 0, idempotencyKey: 'k' };
      const [held] = await store.enqueueRuns(job.id, [key], T0);
      expect(await store.enqueueRuns(job.id, [key], T0, limit)).toEqual([held]);
      expect((await trigger('k'))?.id).toBe(held);
      await expect(trigger('new')).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' });
      expect(await store.countQueuedRuns('blue', 100)).toBe(limit + 1);
      expect(await store.countQueuedRuns('default', 100)).toBe(1);
    });

    it('counts a broadcast trigger`s shards against maxQueuedRuns', async () => {
      const job = await store.createJob(
        compileJob({
          name: 'bc',
          handler: 'h',
          trigger: { kind: 'manual' },
          routing: { strategy: 'broadcast' },
        }),
        null,
        T0,
        'blue',
      );
      for (const id of ['w1', 'w2', 'w3']) await register(id, 'blue');
      await store.triggerRun('bc', { params: null, priority: null }, T0, undefined, 4);
      expect(await store.countQueuedRuns('blue', 100)).toBe(3);
      await expect(
        store.triggerRun('bc', { params: null, priority: null }, T0, undefined, 4),
      ).rejects.toMatchObject({
        code: 'QUOTA_EXCEEDED',
      });
      await expect(store.enqueueRuns(job.id, [{ params: {}, priority: 0 }], T0, 5)).rejects.toMatchObject({
        code: 'QUOTA_EXCEEDED',
      });
      expect(await store.countQueuedRuns('blue', 100)).toBe(3);
      await store.enqueueRuns(job.id, [{ params: {}, priority: 0 }], T0, 6);
      expect(await store.countQueuedRuns('blue', 100)).toBe(6);
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

    // A group is a pool of workers of one namespace; its limits are that namespace's and count only its runs.
    const etl = (name: string, namespace: string, extra: Partial<Parameters<typeof compileJob>[0]> = {}) =>
      store.createJob(
        compileJob({ name, handler: 'h', group: 'etl', trigger: { kind: 'manual' }, ...extra }),
        null,
        T0,
        namespace,
      );
    const queue = (jobId: number, n: number, availableAt?: number) =>
      store.enqueueRuns(
        jobId,
        Array.from({ length: n }, () => ({
          params: {},
          priority: 0,
          ...(availableAt ? { availableAt } : {}),
        })),
        T0,
      );
    const poll = async (workerId: string, now = T0 + 10, max = 10) =>
      (await store.dispatchForPoll(workerId, max, now, 0)).runs.map((c) => c.runId);

    it('caps a group by its own namespace`s limit, counting only that namespace`s runs', async () => {
      const blue = await queue((await etl('b', 'blue')).id, 3);
      const plain = await queue((await etl('d', 'default')).id, 5);
      await register('wb', 'blue', 'etl');
      await register('wd', undefined, 'etl');
      await store.setGroupLimit('etl', { maxConcurrency: 1, rateLimit: null }, T0, 'blue');
      expect(await store.listGroupLimits('blue')).toEqual([
        { namespace: 'blue', group: 'etl', maxConcurrency: 1, rateLimit: null, updatedAt: T0 },
      ]);
      expect(await store.listGroupLimits('default')).toEqual([]);

      // Blue's limit caps blue's runs of `etl`, and not default's.
      expect(await poll('wb')).toEqual([blue[0]]);
      expect(await poll('wb')).toEqual([]);
      expect(await poll('wd', T0 + 10, 3)).toEqual(plain.slice(0, 3));
      // Default's limit counts default's running runs (3), not blue's (1).
      await store.setGroupLimit('etl', { maxConcurrency: 4, rateLimit: null }, T0 + 1);
      expect(await poll('wd')).toEqual([plain[3]]);
      expect(await poll('wd')).toEqual([]);
      expect(await poll('wb')).toEqual([]);
      expect((await store.listGroupLimits()).map((l) => [l.namespace, l.group, l.maxConcurrency])).toEqual([
        ['blue', 'etl', 1],
        ['default', 'etl', 4],
      ]);
      // Lifting blue's limit frees blue alone.
      await store.setGroupLimit('etl', { maxConcurrency: null, rateLimit: null }, T0 + 2, 'blue');
      expect(await poll('wb')).toEqual(blue.slice(1));
      expect(await poll('wd')).toEqual([]);
    });

    it('keeps one token bucket per namespace and group', async () => {
      const blue = await queue((await etl('b', 'blue')).id, 2);
      const d = await etl('d', 'default');
      const plain = await queue(d.id, 2);
      await register('wb', 'blue', 'etl');
      await register('wd', undefined, 'etl');
      const oneIn2s = { maxConcurrency: null, rateLimit: { limit: 1, perMs: 2000 } };
      await store.setGroupLimit('etl', oneIn2s, T0, 'blue');
      expect(await poll('wb')).toEqual([blue[0]]);
      expect(await poll('wb')).toEqual([]);
      // Default's `etl` has no limit: blue's does not slow it.
      expect(await poll('wd')).toEqual(plain);
      // Default's own bucket is full though blue's is empty.
      await store.setGroupLimit('etl', oneIn2s, T0 + 20);
      const more = await queue(d.id, 2);
      expect(await poll('wd', T0 + 30)).toEqual([more[0]]);
      expect(await poll('wd', T0 + 1500)).toEqual([]);
      expect(await poll('wb', T0 + 1500)).toEqual([]);
      expect(await poll('wb', T0 + 2010)).toEqual([blue[1]]);
      expect(await poll('wd', T0 + 2040)).toEqual([more[1]]);
    });

    it('takes the limit of the run`s namespace on fire ahead and for broadcast shards', async () => {
      const b = await etl('b', 'blue');
      const d = await etl('d', 'default');
      await register('wb', 'blue', 'etl');
      await register('wd', undefined, 'etl');
      await store.setGroupLimit('etl', { maxConcurrency: 1, rateLimit: null }, T0, 'blue');
      await queue(b.id, 1, T0 + 1000);
      const [ahead] = await queue(d.id, 1, T0 + 1000);
      // Fire ahead passes over a group with limits in the worker's namespace, only there.
      expect(await store.dispatchAhead('wb', 5, T0 + 2000, T0)).toEqual([]);
      expect((await store.dispatchAhead('wd', 5, T0 + 2000, T0)).map((c) => c.runId)).toEqual([ahead]);

      // A broadcast fire becomes one shard per live worker of the namespace's group; blue's limit
      // lets one of blue's shards run, and all of default's.
      await register('wb2', 'blue', 'etl');
      await register('wd2', undefined, 'etl');
      const broadcast = { routing: { strategy: 'broadcast' as const } };
      await queue((await etl('bb', 'blue', broadcast)).id, 1);
      await queue((await etl('db', 'default', broadcast)).id, 1);
      const claimed = async (workers: string[]) => (await Promise.all(workers.map((w) => poll(w)))).flat();
      expect(await claimed(['wb', 'wb2'])).toHaveLength(1);
      expect(await claimed(['wd', 'wd2'])).toHaveLength(2);
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

    it('deletes only an empty namespace, with its grants, group limits and stopped workers', async () => {
      expect(await store.namespaces.delete('red')).toBe('not_found');
      const job = await store.createJob(manual('b'), null, T0, 'blue');
      await register('wb', 'blue');
      expect(await store.namespaces.delete('blue')).toBe('not_empty');
      expect(await store.deleteJob(job.name)).toBe(true);
      expect(await store.namespaces.delete('blue')).toBe('not_empty');
      await store.unregisterWorker('wb', T0);
      await store.setGroupLimit('etl', { maxConcurrency: 2, rateLimit: null }, T0, 'blue');
      await store.setGroupLimit('etl', { maxConcurrency: 3, rateLimit: null }, T0);
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
      // Its group limits go with it; other namespaces keep theirs.
      expect((await store.listGroupLimits()).map((l) => [l.namespace, l.group])).toEqual([
        ['default', 'etl'],
      ]);
      expect((await store.listAudit({ namespaces: ['*'], limit: 5 })).map((a) => a.action)).toEqual([
        'namespace.delete',
      ]);
    });
  });
}
