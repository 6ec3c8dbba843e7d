import { workflow } from '@kairos/client';
import { describe, expect, it } from 'vitest';
import { apiError, startTestNode } from './helpers.ts';

/** The workflow methods of `KairosClient`, each against a real node (docs/workflows.md#api). */
describe('KairosClient: workflows', async () => {
  const { admin } = await startTestNode();
  const etl = workflow('etl', { description: 'nightly' })
    .step('extract', { handler: 'extract', group: 'etl', retry: { maxAttempts: 3 } })
    .step('load', { handler: 'load', after: ['extract'], timeout: '30s' })
    .step('page', { handler: 'page', after: [{ step: 'load', on: 'failure' }] })
    .build();

  it('putWorkflow creates then replaces; getWorkflow and listWorkflows read it; deleteWorkflow removes it', async () => {
    const created = await admin.putWorkflow(etl);
    expect(created).toMatchObject({ name: 'etl', description: 'nightly', version: 1, namespace: 'default' });
    expect(created.steps.map((s) => [s.id, s.after])).toEqual([
      ['extract', []],
      ['load', [{ step: 'extract', on: 'success' }]],
      ['page', [{ step: 'load', on: 'failure' }]],
    ]);
    expect(created.steps[1]).toMatchObject({ timeout: 30_000, group: 'default' });
    expect((await admin.putWorkflow({ ...etl, description: 'again' })).version).toBe(2);
    expect(await admin.getWorkflow('etl')).toMatchObject({ version: 2, description: 'again' });

    await admin.putWorkflow(workflow('a-first').step('x', { handler: 'x' }).build());
    const first = await admin.listWorkflows({ limit: 1 });
    expect(first.items.map((w) => w.name)).toEqual(['a-first']);
    const second = await admin.listWorkflows({ limit: 1, cursor: first.nextCursor! });
    expect(second.items.map((w) => w.name)).toEqual(['etl']);

    await admin.deleteWorkflow('a-first');
    expect((await apiError(admin.getWorkflow('a-first'))).code).toBe('WORKFLOW_NOT_FOUND');
    expect((await apiError(admin.deleteWorkflow('a-first'))).code).toBe('WORKFLOW_NOT_FOUND');
  });

  it('a broken graph is 422 WORKFLOW_INVALID with its problems', async () => {
    const error = await apiError(
      admin.putWorkflow({ name: 'loop', steps: [{ id: 'a', handler: 'h', after: ['a'] }] }),
    );
    expect(error.status).toBe(422);
    expect(error.code).toBe('WORKFLOW_INVALID');
  });

  it('startWorkflow, listWorkflowInstances, getWorkflowInstance and cancelWorkflowInstance', async () => {
    await admin.putWorkflow(etl);
    const started = await admin.startWorkflow('etl', {
      context: { day: '2026-12-05' },
      idempotencyKey: 'k1',
    });
    expect(started).toMatchObject({ workflow: 'etl', state: 'running', context: { day: '2026-12-05' } });
    expect(started.steps.map((s) => [s.id, s.state])).toEqual([
      ['extract', 'ready'],
      ['load', 'waiting'],
      ['page', 'waiting'],
    ]);
    // The same key answers the same instance.
    expect((await admin.startWorkflow('etl', { idempotencyKey: 'k1' })).id).toBe(started.id);
    const other = await admin.startWorkflow('etl');
    expect(other.context).toEqual({});

    const page = await admin.listWorkflowInstances('etl', { limit: 1 });
    expect(page.items.map((i) => i.id)).toEqual([other.id]);
    const next = await admin.listWorkflowInstances('etl', { cursor: page.nextCursor! });
    expect(next.items.map((i) => i.id)).toEqual([started.id]);
    expect(await admin.getWorkflowInstance(started.id)).toEqual(started);

    const cancelled = await admin.cancelWorkflowInstance(started.id);
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.steps.every((s) => s.state === 'cancelled')).toBe(true);
    const again = await apiError(admin.cancelWorkflowInstance(started.id));
    expect([again.status, again.code]).toEqual([409, 'WORKFLOW_INSTANCE_FINISHED']);
    expect((await apiError(admin.getWorkflowInstance(999_999))).code).toBe('WORKFLOW_INSTANCE_NOT_FOUND');
    expect((await apiError(admin.startWorkflow('nope'))).code).toBe('WORKFLOW_NOT_FOUND');
  });
});
