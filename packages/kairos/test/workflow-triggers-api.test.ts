import type { JsonObject, SkippedFires, Workflow, WorkflowInstance } from '@kairos/client';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../src/store/postgres/postgres-store.ts';
import { apiError, startTestNode } from './helpers.ts';
import { waitFor } from './processes.ts';
import { testDatabaseUrl, testSchema } from './test-database.ts';

/**
 * Workflow triggers through the API of a real node (docs/workflows.md#triggers): its trigger loop
 * fires a workflow's job on the real clock and each fire starts an instance. No worker serves the
 * steps, so every instance stays running: what `overlap: skip` judges.
 */
describe.each(['sqlite', 'postgres'] as const)(
  'workflow triggers through the API, on %s',
  async (dialect) => {
    const store =
      dialect === 'postgres'
        ? new PostgresStore({ connectionString: testDatabaseUrl(), schema: testSchema() })
        : undefined;
    const { admin } = await startTestNode(store ? { store } : {});
    afterAll(async () => {
      await store?.close();
    });
    const put = (name: string, body: JsonObject) =>
      admin.request<Workflow>('PUT', `/v1/workflows/${name}`, body);
    const instances = async (name: string) =>
      (await admin.request<{ items: WorkflowInstance[] }>('GET', `/v1/workflows/${name}/instances?limit=500`))
        .items;
    const skipped = async (name: string) =>
      (await admin.request<{ items: SkippedFires[] }>('GET', `/v1/workflows/${name}/skipped`)).items;
    const steps = [{ id: 'a', handler: 'never-served', group: 'nobody' }];

    it('an `every: 1s` workflow starts instances by itself (cause schedule, its fire time)', async () => {
      const created = await put('ticking', { steps, trigger: { kind: 'every', every: '1s' } });
      expect(created).toMatchObject({
        trigger: { kind: 'every', every: 1000 },
        schedule: { overlap: 'allow', misfire: { policy: 'skip' } },
        paused: false,
      });
      expect(created.nextFireAt).not.toBeNull();
      const started = await waitFor(
        async () => {
          const items = await instances('ticking');
          return items.length >= 2 ? items : undefined;
        },
        30_000,
        'two instances of the every-1s workflow',
      );
      for (const instance of started) {
        expect(instance).toMatchObject({ cause: 'schedule', state: 'running' });
        expect(Date.parse(instance.scheduledFor!) % 1000).toBe(0);
        expect(instance.context).toEqual({ scheduledFor: instance.scheduledFor });
      }
      const fires = started.map((i) => i.scheduledFor);
      expect(new Set(fires).size).toBe(fires.length);
      // A start through the API stays possible, and says so.
      const manual = await admin.request<WorkflowInstance>('POST', '/v1/workflows/ticking/instances', {});
      expect(manual).toMatchObject({ cause: 'manual', scheduledFor: null });
      await admin.request('DELETE', '/v1/workflows/ticking');
    });

    it('overlap skip: fires while an instance runs are written to the ledger, not started', async () => {
      await put('serial', { steps, trigger: { kind: 'every', every: '1s' }, schedule: { overlap: 'skip' } });
      const ledger = await waitFor(
        async () => {
          const rows = await skipped('serial');
          const count = rows.filter((r) => r.reason === 'overlap').reduce((n, r) => n + (r.count ?? 0), 0);
          return count >= 2 ? rows : undefined;
        },
        30_000,
        'overlap rows in the ledger',
      );
      expect(ledger[0]).toMatchObject({ reason: 'overlap', jobName: 'workflow/default/serial' });
      expect(await instances('serial')).toHaveLength(1);
      await admin.request('DELETE', '/v1/workflows/serial');
    });

    it('overlap buffer-one: a fire is held behind the running instance; its cancel starts the held one at once', async () => {
      await put('held', {
        steps,
        trigger: { kind: 'every', every: '1s' },
        schedule: { overlap: 'buffer-one' },
      });
      // One instance runs (no worker serves it); one fire is held, the next ones go to the ledger.
      await waitFor(
        async () => {
          const rows = await skipped('held');
          return rows.some((r) => r.reason === 'overlap') ? rows : undefined;
        },
        30_000,
        'overlap rows in the ledger',
      );
      const [first, ...more] = await instances('held');
      expect(more).toEqual([]);
      const cancelled = await admin.request<WorkflowInstance>(
        'POST',
        `/v1/workflow-instances/${first!.id}/cancel`,
      );
      expect(cancelled.state).toBe('cancelled');
      // Started in the cancel's transaction: there as soon as the cancel answered.
      const [held] = await instances('held');
      expect(held).toMatchObject({ cause: 'schedule', state: 'running' });
      expect(Date.parse(held!.scheduledFor!)).toBeGreaterThan(Date.parse(first!.scheduledFor!));
      await admin.request('DELETE', '/v1/workflows/held');
    });

    it('pause and resume: no instance while paused; the resume writes the missed fires (paused); both audited', async () => {
      await put('pausable', { steps, trigger: { kind: 'every', every: '1s' } });
      const paused = await admin.request<Workflow>('POST', '/v1/workflows/pausable/pause');
      expect(paused.paused).toBe(true);
      const before = (await instances('pausable')).length;
      // Fires go by while paused: the ledger row at resume names them.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      expect(await instances('pausable')).toHaveLength(before);
      const resumed = await admin.request<Workflow>('POST', '/v1/workflows/pausable/resume');
      expect(resumed).toMatchObject({ paused: false });
      expect(resumed.nextFireAt).not.toBeNull();
      const rows = await skipped('pausable');
      expect(rows.filter((r) => r.reason === 'paused').length).toBe(1);
      const { items } = await admin.listAudit({ limit: 100 });
      const actions = items.filter((e) => e.target === 'workflows:pausable').map((e) => e.action);
      expect(actions).toEqual(
        expect.arrayContaining(['workflows.pause', 'workflows.resume', 'workflows.put']),
      );
      await admin.request('DELETE', '/v1/workflows/pausable');
      expect(await apiError(admin.request('POST', '/v1/workflows/pausable/pause'))).toMatchObject({
        status: 404,
        code: 'WORKFLOW_NOT_FOUND',
      });
    });

    it('refuses an `after` or `delay` trigger and an unknown overlap with a 400, writing nothing', async () => {
      expect(await apiError(put('refused', { steps, trigger: { kind: 'after', job: 'x' } }))).toMatchObject({
        status: 400,
        code: 'INVALID_TRIGGER',
      });
      expect(
        await apiError(put('refused', { steps, trigger: { kind: 'delay', delay: '1m' } })),
      ).toMatchObject({
        status: 400,
        code: 'INVALID_TRIGGER',
      });
      expect(
        await apiError(
          put('refused', {
            steps,
            trigger: { kind: 'every', every: '1m' },
            schedule: { overlap: 'sometimes' },
          }),
        ),
      ).toMatchObject({ status: 400 });
      expect(
        await apiError(
          put('refused', {
            steps,
            trigger: { kind: 'cron', cron: '0 3 * * *' },
            schedule: { calendars: ['none'] },
          }),
        ),
      ).toMatchObject({ status: 404, code: 'CALENDAR_NOT_FOUND' });
      expect(await apiError(admin.request('GET', '/v1/workflows/refused'))).toMatchObject({
        code: 'WORKFLOW_NOT_FOUND',
      });
      // A cron workflow in a zone: its next fire is answered, and a replace that keeps it keeps it.
      const cron = await put('refused', {
        steps,
        trigger: { kind: 'cron', cron: '0 3 * * *', timezone: 'Asia/Tokyo' },
      });
      expect(new Date(cron.nextFireAt!).getUTCHours()).toBe(18);
      expect((await put('refused', { steps, trigger: cron.trigger as JsonObject })).nextFireAt).toBe(
        cron.nextFireAt,
      );
      await admin.request('DELETE', '/v1/workflows/refused');
    });
  },
);
