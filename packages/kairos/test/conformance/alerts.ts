import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AlertRuleDefinition, compileAlertRule } from '../../src/core/alert-rule.ts';
import { compileJob } from '../../src/core/job.ts';
import type { ChannelDefinition, NewDelivery } from '../../src/store/alerts.ts';
import { LeaseLostError, type Store } from '../../src/store/store.ts';

/**
 * The alerts part of the store conformance suite: rules and channels by name, the outbox the store
 * writes in the transaction of a change, the fenced commit of an evaluation, and the delivery
 * history. Run by `describeStoreConformance` on every dialect, unchanged.
 */
export function describeAlertsConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, alerts: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);

    beforeEach(async () => {
      store = await open();
      await store.migrate();
    });
    afterEach(async () => {
      await store.close();
    });

    const channel = (name: string): ChannelDefinition => ({
      name,
      type: 'webhook',
      config: { urlOrigin: 'http://127.0.0.1:9', smtp: null },
      secrets: { url: 'http://127.0.0.1:9/hook', secret: 's3cret' },
    });
    const rule = (
      name: string,
      extra: Partial<Parameters<typeof compileAlertRule>[0]> = {},
    ): AlertRuleDefinition => compileAlertRule({ name, kind: 'run-failed', channels: ['ops'], ...extra });

    let runs = 0;
    /** A run of job `name` that ends `status` at `at` through a worker's report. */
    async function endRun(name: string, status: 'succeeded' | 'failed', at: number): Promise<number> {
      const job =
        (await store.getJob(name)) ??
        (await store.createJob(compileJob({ name, handler: 'h', trigger: { kind: 'manual' } }), null, T0));
      const [runId] = await store.enqueueRuns(job.id, [{ params: {}, priority: 0 }], at - 2);
      const worker = `w${runs++}`;
      await store.registerWorker(
        {
          id: worker,
          name: worker,
          group: 'default',
          handlers: ['h'],
          capacity: 1,
          labels: {},
          version: 't',
          host: 'h',
        },
        60_000,
        at - 2,
      );
      const [claimed] = await store.claimRuns(worker, 1, at - 1);
      expect(claimed?.runId).toBe(runId);
      const [applied] = await store.finishAttempts(
        [
          {
            runId: runId!,
            attempt: 1,
            group: 'default',
            attemptStatus: status,
            error: status === 'failed' ? { name: 'Error', message: 'boom' } : null,
            result: null,
            run: { status },
          },
        ],
        at,
      );
      expect(applied).toBe(true);
      return runId!;
    }

    it('keeps rules and channels by name; a rule needs its channels, a channel in use stays', async () => {
      await expect(store.alerts.putRule(rule('r1'), T0, true)).rejects.toMatchObject({
        code: 'CHANNEL_NOT_FOUND',
      });
      const made = await store.alerts.putChannel(channel('ops'), T0, true);
      expect(made).toMatchObject({ created: true, channel: { name: 'ops', secrets: { secret: 's3cret' } } });
      await expect(store.alerts.putChannel(channel('ops'), T0, true)).rejects.toMatchObject({
        code: 'CHANNEL_NAME_TAKEN',
      });
      const saved = await store.alerts.putRule(rule('r1'), T0, true);
      expect(saved.rule).toMatchObject({
        name: 'r1',
        kind: 'run-failed',
        channels: ['ops'],
        enabled: true,
        createdAt: T0,
      });
      await expect(store.alerts.putRule(rule('r1'), T0, true)).rejects.toMatchObject({
        code: 'ALERT_RULE_NAME_TAKEN',
      });
      const replaced = await store.alerts.putRule(rule('r1', { enabled: false }), T0 + 5, false);
      expect(replaced).toMatchObject({
        created: false,
        rule: { enabled: false, createdAt: T0, updatedAt: T0 + 5 },
      });
      expect((await store.alerts.listRules()).map((r) => r.name)).toEqual(['r1']);
      await expect(store.alerts.deleteChannel('ops')).rejects.toMatchObject({ code: 'CHANNEL_IN_USE' });
      expect(await store.alerts.deleteRule('r1')).toBe(true);
      expect(await store.alerts.deleteRule('r1')).toBe(false);
      expect(await store.alerts.deleteChannel('ops')).toBe(true);
      expect(await store.alerts.getChannel('ops')).toBeNull();
    });

    it('writes an outbox event with each run end only while an enabled rule reads run ends', async () => {
      await endRun('j', 'failed', T0 + 10);
      expect(await store.alerts.pendingEvents(10)).toEqual([]);
      await store.alerts.putChannel(channel('ops'), T0, true);
      await store.alerts.putRule(rule('r1'), T0, true);
      const failed = await endRun('j', 'failed', T0 + 20);
      const succeeded = await endRun('j', 'succeeded', T0 + 30);
      expect(await store.alerts.pendingEvents(10)).toMatchObject([
        {
          type: 'run-ended',
          job: 'j',
          group: 'default',
          runId: failed,
          status: 'failed',
          error: 'boom',
          at: T0 + 20,
        },
        { type: 'run-ended', job: 'j', runId: succeeded, status: 'succeeded', error: null, at: T0 + 30 },
      ]);
      await store.alerts.putRule(rule('r1', { enabled: false }), T0, false);
      await endRun('j', 'failed', T0 + 40);
      expect(await store.alerts.pendingEvents(10)).toHaveLength(2);
    });

    it('writes an outbox event for each range of fires that did not run, new or extended, and for workers lost and back', async () => {
      await store.alerts.putChannel(channel('ops'), T0, true);
      await store.alerts.putRule(
        compileAlertRule({ name: 'skips', kind: 'fire-skipped', channels: ['ops'] }),
        T0,
        true,
      );
      await store.alerts.putRule(
        compileAlertRule({ name: 'workers', kind: 'worker-lost', channels: ['ops'] }),
        T0,
        true,
      );
      const job = await store.createJob(
        compileJob({ name: 'tick', handler: 'h', trigger: { kind: 'every', every: '1s' } }),
        T0,
        T0,
      );
      await store.fire(
        [
          {
            jobId: job.id,
            expected: T0,
            next: T0 + 5000,
            fires: [T0 + 4000],
            skipped: [{ reason: 'misfire', first: T0, last: T0 + 3000, count: 4 }],
          },
        ],
        null,
        T0 + 4000,
      );
      await store.fire(
        [
          {
            jobId: job.id,
            expected: T0 + 5000,
            next: T0 + 10_000,
            fires: [],
            skipped: [{ reason: 'misfire', first: T0 + 8000, last: T0 + 9000, count: 2, after: T0 + 3000 }],
          },
        ],
        null,
        T0 + 9000,
      );
      await store.registerWorker(
        {
          id: 'wl',
          name: 'box',
          group: 'etl',
          handlers: ['h'],
          capacity: 1,
          labels: {},
          version: 't',
          host: 'h',
        },
        1000,
        T0,
      );
      expect(await store.markLostWorkers(T0 + 1000)).toEqual(['wl']);
      await store.registerWorker(
        {
          id: 'wl',
          name: 'box',
          group: 'etl',
          handlers: ['h'],
          capacity: 1,
          labels: {},
          version: 't',
          host: 'h',
        },
        1000,
        T0 + 2000,
      );
      expect(await store.alerts.pendingEvents(10)).toMatchObject([
        {
          type: 'fire-skipped',
          job: 'tick',
          reason: 'misfire',
          count: 4,
          firstFire: T0,
          lastFire: T0 + 3000,
        },
        {
          type: 'fire-skipped',
          job: 'tick',
          reason: 'misfire',
          count: 2,
          firstFire: T0 + 3000,
          lastFire: T0 + 9000,
        },
        { type: 'worker-lost', workerId: 'wl', worker: 'box', group: 'etl' },
        { type: 'worker-back', workerId: 'wl', worker: 'box', group: 'etl' },
      ]);
    });

    it('counts failed runs in a row, ending at a run', async () => {
      const a = await endRun('j', 'failed', T0 + 10);
      await endRun('j', 'succeeded', T0 + 20);
      const b = await endRun('j', 'failed', T0 + 30);
      const c = await endRun('j', 'failed', T0 + 40);
      expect(await store.alerts.failuresInRow(a, 10)).toBe(1);
      expect(await store.alerts.failuresInRow(b, 10)).toBe(1);
      expect(await store.alerts.failuresInRow(c, 10)).toBe(2);
      expect(await store.alerts.failuresInRow(c, 1)).toBe(1);
    });

    it('commits an evaluation once, under the lease: a stale holder or a second commit changes nothing', async () => {
      await store.alerts.putChannel(channel('ops'), T0, true);
      const { rule: r1 } = await store.alerts.putRule(rule('r1'), T0, true);
      await endRun('j', 'failed', T0 + 10);
      const [event] = await store.alerts.pendingEvents(10);
      const [lease] = await store.acquireLeases(['alerts'], 'node-a', 5000, T0 + 20);
      const delivery: NewDelivery = {
        namespace: 'default',
        eventId: 'e1',
        rule: 'r1',
        channel: 'ops',
        subject: 'job:j',
        state: 'firing',
        title: 't',
        text: 'x',
        details: { a: 1 },
        status: 'pending',
      };
      const commit = {
        consumed: [event!.id],
        states: [
          {
            ruleId: r1.id,
            subject: 'job:j',
            status: 'firing' as const,
            firedAt: T0 + 20,
            notifiedAt: T0 + 20,
            count: 1,
          },
        ],
        deliveries: [delivery],
      };
      // Another node took the lease over (the first one's expired): the first one's commit is refused.
      const [taken] = await store.acquireLeases(['alerts'], 'node-b', 5000, T0 + 6000);
      await expect(store.alerts.commitAlerts(lease!, commit, T0 + 6000)).rejects.toBeInstanceOf(
        LeaseLostError,
      );
      expect(await store.alerts.pendingEvents(10)).toHaveLength(1);
      await store.alerts.commitAlerts(taken!, commit, T0 + 6000);
      expect(await store.alerts.pendingEvents(10)).toEqual([]);
      expect(await store.alerts.firingAlerts()).toEqual([commit.states[0]]);
      await expect(store.alerts.commitAlerts(taken!, commit, T0 + 6001)).rejects.toBeInstanceOf(
        LeaseLostError,
      );
      expect(await store.alerts.listDeliveries({ limit: 10 })).toMatchObject([
        { eventId: 'e1', status: 'pending', attempts: 0, nextAttemptAt: T0 + 6000, details: { a: 1 } },
      ]);
      // Deleting the job takes its open alerts along (nothing could resolve them); so does deleting the rule.
      await store.alerts.commitAlerts(
        taken!,
        { consumed: [], states: [{ ...commit.states[0]!, subject: 'job:other' }], deliveries: [] },
        T0 + 6002,
      );
      expect(await store.deleteJob('j')).toBe(true);
      expect((await store.alerts.firingAlerts()).map((s) => s.subject)).toEqual(['job:other']);
      await store.alerts.deleteRule('r1');
      expect(await store.alerts.firingAlerts()).toEqual([]);
    });

    it('sends due deliveries, retries failed ones when told, keeps the history and prunes it by age', async () => {
      const base: NewDelivery = {
        namespace: 'default',
        eventId: 'e',
        rule: null,
        channel: 'ops',
        subject: 'channel:ops',
        state: 'test',
        title: 't',
        text: 'x',
        details: {},
        status: 'pending',
      };
      const [a, b, c] = await store.alerts.addDeliveries(
        [base, { ...base, eventId: 'f' }, { ...base, eventId: 'g', status: 'silenced' }],
        T0,
      );
      expect(c).toMatchObject({ status: 'silenced', nextAttemptAt: null });
      expect((await store.alerts.dueDeliveries(T0, 10)).map((d) => d.id)).toEqual([a!.id, b!.id]);
      expect(await store.alerts.recordDelivery(a!.id, { sent: true }, T0 + 1)).toMatchObject({
        status: 'sent',
        attempts: 1,
        sentAt: T0 + 1,
      });
      expect(await store.alerts.recordDelivery(a!.id, { sent: true }, T0 + 2)).toBeNull();
      expect(
        await store.alerts.recordDelivery(
          b!.id,
          { sent: false, error: 'HTTP 500', retryAt: T0 + 1000 },
          T0 + 1,
        ),
      ).toMatchObject({ status: 'pending', attempts: 1, lastError: 'HTTP 500', nextAttemptAt: T0 + 1000 });
      expect(await store.alerts.dueDeliveries(T0 + 999, 10)).toEqual([]);
      expect(
        await store.alerts.recordDelivery(
          b!.id,
          { sent: false, error: 'HTTP 500', retryAt: null },
          T0 + 1000,
        ),
      ).toMatchObject({ status: 'failed', attempts: 2 });
      expect((await store.alerts.listDeliveries({ status: 'failed', limit: 10 })).map((d) => d.id)).toEqual([
        b!.id,
      ]);
      expect((await store.alerts.listDeliveries({ before: c!.id, limit: 1 })).map((d) => d.id)).toEqual([
        b!.id,
      ]);
      expect(await store.alerts.pruneDeliveries(T0 + 1, 10)).toBe(3);
      expect(await store.alerts.listDeliveries({ limit: 10 })).toEqual([]);
    });

    it('reads the facts of jobs for state rules: last success, queued runs, the latest fire due', async () => {
      await endRun('a', 'succeeded', T0 + 10);
      await endRun('a', 'failed', T0 + 20);
      const b = await store.createJob(
        compileJob({ name: 'b', handler: 'hb', group: 'g2', trigger: { kind: 'manual' } }),
        null,
        T0,
      );
      await store.enqueueRuns(
        b.id,
        [
          { params: {}, priority: 0 },
          { params: {}, priority: 0 },
        ],
        T0 + 50,
      );
      const facts = await store.alerts.jobFacts(null, T0 + 100);
      expect(facts.sort((x, y) => x.name.localeCompare(y.name))).toMatchObject([
        {
          name: 'a',
          group: 'default',
          lastSuccessAt: T0 + 10,
          queued: 0,
          oldestQueuedAt: null,
          lastFire: null,
        },
        { name: 'b', group: 'g2', handler: 'hb', lastSuccessAt: null, queued: 2, oldestQueuedAt: T0 + 50 },
      ]);
      expect(
        (await store.alerts.jobFacts({ namespace: 'default', group: 'g2' }, T0 + 100)).map((f) => f.name),
      ).toEqual(['b']);
      expect(
        (await store.alerts.jobFacts({ namespace: 'default', job: 'a' }, T0 + 100)).map((f) => f.name),
      ).toEqual(['a']);
    });

    it('keeps silences until they end; a silence of a rule goes with it', async () => {
      await store.alerts.putChannel(channel('ops'), T0, true);
      await store.alerts.putRule(rule('r1'), T0, true);
      const s = {
        namespace: 'default',
        startsAt: T0,
        endsAt: T0 + 1000,
        comment: 'deploy',
        createdBy: 'admin',
        createdAt: T0,
      };
      await expect(store.alerts.createSilence({ ...s, rule: 'nope' })).rejects.toMatchObject({
        code: 'ALERT_RULE_NOT_FOUND',
      });
      const one = await store.alerts.createSilence({ ...s, rule: 'r1' });
      const all = await store.alerts.createSilence({ ...s, rule: null, endsAt: T0 + 2000 });
      expect(await store.alerts.listSilences(T0)).toEqual([one, all]);
      expect(await store.alerts.listSilences(T0 + 1000)).toEqual([all]);
      await store.alerts.deleteRule('r1');
      expect(await store.alerts.listSilences(T0)).toEqual([all]);
      expect(await store.alerts.deleteSilence(all.id)).toBe(true);
      expect(await store.alerts.listSilences(T0)).toEqual([]);
    });

    it('keeps silences, deliveries, firing alerts, events and job facts in their namespace', async () => {
      await store.namespaces.create({ name: 'blue', description: '' }, T0);
      await store.alerts.putChannel(channel('ops'), T0, true);
      await store.alerts.putChannel(channel('blue-ops'), T0, true, 'blue');
      await store.alerts.putRule(rule('r1'), T0, true);
      await store.alerts.putRule(rule('b1', { channels: ['blue-ops'] }), T0, true, 'blue');
      const s = { startsAt: T0, endsAt: T0 + 1000, comment: '', createdBy: 'admin', createdAt: T0 };
      // A silence names a rule of its own namespace only.
      await expect(store.alerts.createSilence({ ...s, namespace: 'blue', rule: 'r1' })).rejects.toMatchObject(
        { code: 'ALERT_RULE_NOT_FOUND' },
      );
      const blue = await store.alerts.createSilence({ ...s, namespace: 'blue', rule: 'b1' });
      const blueAll = await store.alerts.createSilence({ ...s, namespace: 'blue', rule: null });
      const plain = await store.alerts.createSilence({ ...s, namespace: 'default', rule: null });
      expect(blue).toMatchObject({ namespace: 'blue', rule: 'b1' });
      expect(await store.alerts.listSilences(T0, 'blue')).toEqual([blue, blueAll]);
      expect(await store.alerts.listSilences(T0, 'default')).toEqual([plain]);
      expect(await store.alerts.listSilences(T0)).toHaveLength(3);
      expect(await store.alerts.deleteSilence(blue.id, 'default')).toBe(false);
      expect(await store.alerts.deleteSilence(blue.id, 'blue')).toBe(true);

      const message = {
        eventId: 'e',
        subject: 's',
        state: 'test' as const,
        title: 't',
        text: 'x',
        details: {},
        status: 'sent' as const,
      };
      const [mine, theirs] = await store.alerts.addDeliveries(
        [
          { ...message, namespace: 'default', rule: 'r1', channel: 'ops' },
          { ...message, namespace: 'blue', rule: 'b1', channel: 'blue-ops' },
        ],
        T0,
      );
      expect(theirs).toMatchObject({ namespace: 'blue', rule: 'b1' });
      expect(await store.alerts.listDeliveries({ namespace: 'blue', limit: 10 })).toEqual([theirs]);
      expect(await store.alerts.listDeliveries({ namespace: 'default', limit: 10 })).toEqual([mine]);
      expect(await store.alerts.listDeliveries({ limit: 10 })).toHaveLength(2);

      // Firing alerts of one namespace are those of its rules.
      const [lease] = await store.acquireLeases(['alerts'], 'node-a', 5000, T0);
      const rules = new Map((await store.alerts.listRules()).map((r) => [r.name, r.id]));
      const firing = (ruleId: number) => ({
        ruleId,
        subject: 'job:j',
        status: 'firing' as const,
        firedAt: T0,
        notifiedAt: T0,
        count: 1,
      });
      await store.alerts.commitAlerts(
        lease!,
        { consumed: [], states: [firing(rules.get('r1')!), firing(rules.get('b1')!)], deliveries: [] },
        T0,
      );
      expect((await store.alerts.firingAlerts('blue')).map((a) => a.ruleId)).toEqual([rules.get('b1')]);
      expect((await store.alerts.firingAlerts('default')).map((a) => a.ruleId)).toEqual([rules.get('r1')]);
      expect(await store.alerts.firingAlerts()).toHaveLength(2);

      // Outbox rows and job facts carry their job's namespace; a scope reads its namespace only.
      await endRun('j', 'failed', T0 + 10);
      expect(await store.alerts.pendingEvents(10)).toMatchObject([
        { type: 'run-ended', namespace: 'default', job: 'j' },
      ]);
      await store.createJob(
        compileJob({ name: 'bj', handler: 'h', trigger: { kind: 'manual' } }),
        null,
        T0,
        'blue',
      );
      expect(await store.alerts.jobFacts({ namespace: 'blue' }, T0 + 100)).toMatchObject([
        { namespace: 'blue', name: 'bj' },
      ]);
      expect(await store.alerts.jobFacts({ namespace: 'default', job: 'bj' }, T0 + 100)).toEqual([]);
      expect((await store.alerts.jobFacts(null, T0 + 100)).map((f) => f.namespace).sort()).toEqual([
        'blue',
        'default',
      ]);
    });
  });
}
