import type { WorkflowInstance } from '@kairos/client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../src/cli/program.ts';
import { startTestNode } from './helpers.ts';

/**
 * The repairs of `kairos workflows` (pause, resume, retry, rerun-step, skip-step) against a real
 * node, without a worker: a step fails when its run is cancelled (docs/workflows.md).
 */
describe('kairos workflows: repairs', async () => {
  const { node, admin } = await startTestNode();
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    lines.push(...args.map(String).join(' ').split('\n'));
  });
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(...String(chunk).trimEnd().split('\n'));
    return true;
  });
  afterEach(() => {
    lines.length = 0;
  });
  const kairos = async (...args: string[]) => {
    lines.length = 0;
    await buildProgram().parseAsync(['node', 'kairos', '--url', node.url, '--token', 'admin-t', ...args]);
    return lines.join('\n');
  };
  const json = async (...args: string[]) => JSON.parse(await kairos('--json', ...args)) as WorkflowInstance;
  const stateOf = (instance: WorkflowInstance, step: string) => instance.steps.find((s) => s.id === step)!;

  await admin.putWorkflow({
    name: 'fix',
    steps: [
      { id: 'a', handler: 'h' },
      { id: 'b', handler: 'h', after: ['a'] },
    ],
  });
  /** An instance whose step a failed (its run cancelled): b skipped, the instance failed. */
  const failed = async () => {
    const started = await admin.startWorkflow('fix');
    await admin.cancelRun(stateOf(started, 'a').runId!);
    const instance = await admin.getWorkflowInstance(started.id);
    expect(instance.state).toBe('failed');
    return instance;
  };

  it('pause and resume print the instance state; the instance shows it', async () => {
    const { id } = await admin.startWorkflow('fix');
    expect(await kairos('workflows', 'pause', String(id))).toBe(`instance ${id} of fix: paused`);
    expect((await kairos('workflows', 'instance', String(id))).split('\n')).toContain('state     paused');
    expect(await kairos('workflows', 'resume', String(id))).toBe(`instance ${id} of fix: running`);
    await admin.cancelWorkflowInstance(id);
    await expect(kairos('workflows', 'pause', String(id))).rejects.toMatchObject({
      code: 'WORKFLOW_INSTANCE_FINISHED',
    });
  });

  it('retry runs the failed step again, with a new run; a running instance is not retried', async () => {
    const instance = await failed();
    expect(await kairos('workflows', 'retry', String(instance.id))).toBe(
      `instance ${instance.id} of fix: running`,
    );
    const retried = await admin.getWorkflowInstance(instance.id);
    expect(stateOf(retried, 'a').state).toBe('ready');
    expect(stateOf(retried, 'a').runId).not.toBe(stateOf(instance, 'a').runId);
    expect(stateOf(retried, 'b').state).toBe('waiting');
    await expect(kairos('workflows', 'retry', String(instance.id))).rejects.toMatchObject({
      code: 'WORKFLOW_INSTANCE_NOT_RETRYABLE',
    });
  });

  it('skip-step ends a step by hand and its child is queued; rerun-step runs an ended step again', async () => {
    const { id } = await admin.startWorkflow('fix');
    await expect(kairos('workflows', 'rerun-step', String(id), 'a')).rejects.toMatchObject({
      code: 'WORKFLOW_STEP_NOT_ENDED',
    });
    expect(await kairos('workflows', 'skip-step', String(id), 'a')).toMatch(
      new RegExp(`^step a of instance ${id}: skipped by hand(, run \\d+)?; instance running$`),
    );
    const skipped = await json('workflows', 'instance', String(id));
    expect(stateOf(skipped, 'a')).toMatchObject({ state: 'succeeded', skipped: true });
    expect(stateOf(skipped, 'b').state).toBe('ready');
    const shown = (await kairos('workflows', 'instance', String(id))).split('\n');
    expect(shown.some((line) => /^a\s+skipped by hand/.test(line))).toBe(true);

    const rerun = await json('workflows', 'rerun-step', String(id), 'a');
    expect(stateOf(rerun, 'a').state).toBe('ready');
    expect(stateOf(rerun, 'a').runId).not.toBeNull();
    expect(stateOf(rerun, 'a').skipped).not.toBe(true);
    await expect(kairos('workflows', 'skip-step', String(id), 'nope')).rejects.toMatchObject({
      code: 'WORKFLOW_STEP_NOT_FOUND',
    });
  });
});
