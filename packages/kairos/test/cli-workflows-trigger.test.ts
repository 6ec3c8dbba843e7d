import type { SkippedFires, Workflow, WorkflowSpec } from '@kairos/client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../src/cli/program.ts';
import { startTestNode } from './helpers.ts';
import { waitFor } from './processes.ts';

/**
 * `kairos workflows pause-trigger | resume-trigger | skipped` and the trigger and map settings of
 * `workflows get`, against a real node whose trigger loop runs on the real clock. No worker serves
 * the steps, so an instance stays running: what `overlap: skip` judges.
 */
describe('kairos workflows: the trigger of a workflow', async () => {
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
  const json = async <T>(...args: string[]) => JSON.parse(await kairos('--json', ...args)) as T;
  const steps: WorkflowSpec['steps'] = [{ id: 'a', handler: 'never-served', group: 'nobody' }];

  it('pause-trigger and resume-trigger pause the workflow, not an instance; get shows it', async () => {
    await admin.putWorkflow({
      name: 'nightly',
      trigger: { kind: 'cron', cron: '0 3 * * *', timezone: 'Europe/Berlin' },
      schedule: { overlap: 'skip' },
      steps,
    });
    expect(await kairos('workflows', 'pause-trigger', 'nightly')).toBe('workflow nightly: trigger paused');
    expect((await admin.getWorkflow('nightly')).paused).toBe(true);
    const get = await kairos('workflows', 'get', 'nightly');
    expect(get).toMatch(/^trigger\s+cron 0 3 \* \* \* Europe\/Berlin$/m);
    expect(get).toMatch(/^overlap\s+skip$/m);
    expect(get).toMatch(/^paused\s+yes \(pause-trigger\)$/m);
    expect(get).toMatch(/^next fire\s+\S/m);
    expect((await json<Workflow>('workflows', 'resume-trigger', 'nightly')).paused).toBe(false);
    expect(await kairos('workflows', 'get', 'nightly')).toMatch(/^paused\s+no$/m);
    await expect(kairos('workflows', 'pause-trigger', 'nope')).rejects.toMatchObject({
      code: 'WORKFLOW_NOT_FOUND',
    });
    // A manual workflow: the pause is recorded, and the answer says it never fires anyway.
    await admin.putWorkflow({ name: 'by-hand', steps });
    expect(await kairos('workflows', 'pause-trigger', 'by-hand')).toBe(
      'workflow by-hand: trigger paused (it is manual: it never fires)',
    );
  });

  it('skipped lists the ledger of the trigger: fires that started no instance, with the reason', async () => {
    expect(await kairos('workflows', 'skipped', 'nightly')).toBe('no skipped fires for workflow nightly');
    await admin.putWorkflow({
      name: 'serial',
      trigger: { kind: 'every', every: '1s' },
      schedule: { overlap: 'skip' },
      steps,
    });
    await waitFor(
      async () => ((await admin.listWorkflowSkipped('serial')).items.length > 0 ? true : undefined),
      30_000,
      'an overlap row in the ledger of serial',
    );
    const rows = (await kairos('workflows', 'skipped', 'serial')).split('\n');
    expect(rows[0]).toMatch(/^REASON\s+FIRST FIRE\s+LAST FIRE\s+COUNT\s+RECORDED$/);
    expect(rows[1]).toMatch(/^overlap\s/);
    const entries = await json<SkippedFires[]>('workflows', 'skipped', 'serial', '--limit', '1');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ reason: 'overlap' });
    await admin.deleteWorkflow('serial');
    await expect(kairos('workflows', 'skipped', 'serial')).rejects.toMatchObject({
      code: 'WORKFLOW_NOT_FOUND',
    });
  });

  it('get shows the settings of a map step', async () => {
    await admin.putWorkflow({
      name: 'fan',
      steps: [
        { id: 'list', handler: 'list' },
        {
          id: 'each',
          handler: 'each',
          after: ['list'],
          map: { from: 'list', path: 'files', maxParallel: 5, tolerateFailures: 1 },
        },
      ],
    });
    const get = (await kairos('workflows', 'get', 'fan')).split('\n');
    expect(get.some((line) => /^trigger\s+manual$/.test(line))).toBe(true);
    expect(get.some((line) => line.startsWith('paused'))).toBe(false);
    const rows = get
      .slice(get.findIndex((line) => line.startsWith('STEP')))
      .map((row) => row.split(/\s{2,}/));
    expect(rows).toEqual([
      ['STEP', 'RUNS', 'AFTER', 'JOIN', 'MAP'],
      ['list', 'handler list', '-', '-', '-'],
      ['each', 'handler each', 'list', '-', 'from list.files, 5 parallel, at most 10000 items, 1 may fail'],
    ]);
  });
});
