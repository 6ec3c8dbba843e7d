import type { KairosClient, WorkflowSpec } from '@kairos/client';
import { describe, expect, it } from 'vitest';
import { compileWorkflow } from '../core/workflow.ts';
import { workflowView } from '../server/routes/workflows.ts';
import { exportWorkflow, planWorkflows } from './workflow-plan.ts';

const spec = (cron: string): WorkflowSpec => ({
  name: 'nightly',
  trigger: { kind: 'cron', cron, timezone: 'Europe/Berlin' },
  schedule: { overlap: 'skip' },
  steps: [{ id: 'a', handler: 'h' }],
});

/** What the node answers for a workflow put with `spec`. */
const stored = (s: WorkflowSpec) =>
  workflowView({
    ...compileWorkflow(s),
    id: 1,
    namespace: 'default',
    version: 1,
    jobId: 1,
    paused: false,
    nextFireAt: null,
    createdAt: 0,
    updatedAt: 0,
  });

describe('workflows as code: trigger and schedule', () => {
  it('`workflows apply` sees a changed trigger as a change (it is put), not `unchanged`', async () => {
    const client = { getWorkflow: async () => stored(spec('0 3 * * *')) } as unknown as KairosClient;
    const [change] = await planWorkflows(client, [spec('0 4 * * *')]);
    expect(change).toMatchObject({ kind: 'workflow', name: 'nightly', action: 'update' });
  });

  it('`kairos export` writes a workflow`s trigger and schedule, so that `apply` takes it back unchanged', () => {
    const exported = exportWorkflow(stored(spec('0 3 * * *')));
    expect(exported.trigger).toMatchObject({ kind: 'cron', cron: '0 3 * * *' });
    expect(exported.schedule).toMatchObject({ overlap: 'skip' });
  });

  it('an exported workflow plans as unchanged against what the node holds; defaults are left out', async () => {
    const held = stored(spec('0 3 * * *'));
    const client = { getWorkflow: async () => held } as unknown as KairosClient;
    const [change] = await planWorkflows(client, [exportWorkflow(held)]);
    expect(change).toMatchObject({ action: 'unchanged', fields: [] });
    const manual = exportWorkflow(stored({ name: 'plain', steps: [{ id: 'a', handler: 'h' }] }));
    expect(manual).toEqual({ name: 'plain', steps: [{ id: 'a', handler: 'h' }] });
  });

  it('a changed schedule is a change', async () => {
    const client = { getWorkflow: async () => stored(spec('0 3 * * *')) } as unknown as KairosClient;
    const [change] = await planWorkflows(client, [{ ...spec('0 3 * * *'), schedule: { overlap: 'allow' } }]);
    expect(change?.action).toBe('update');
    expect(change?.fields.some((f) => f.startsWith('schedule:'))).toBe(true);
  });
});

describe('the typed builder', () => {
  it('builds a spec with trigger, schedule, resources and map that the node compiles', async () => {
    const { workflow } = await import('@kairos/client');
    const built = workflow('per-file', {
      trigger: { kind: 'cron', cron: '0 3 * * *' },
      schedule: { overlap: 'skip' },
    })
      .step('list', { handler: 'list-files' })
      .step('each', {
        handler: 'process-file',
        resources: { cpu: 1, memory: '512Mi' },
        after: ['list'],
        map: { from: 'list', path: 'files', maxParallel: 5 },
      })
      .build();
    const compiled = compileWorkflow(built);
    expect(compiled.trigger.kind).toBe('cron');
    expect(compiled.steps[1]?.map?.maxParallel).toBe(5);
  });
});
