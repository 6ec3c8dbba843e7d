import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowInstance, WorkflowSpec } from '@kairos/client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parse, stringify } from 'yaml';
import { buildProgram } from '../src/cli/program.ts';
import { startTestNode, tempDir } from './helpers.ts';

/** `kairos workflows …` and workflows in `kairos apply` files, as a user reads them, against a real node. */
describe('kairos workflows', async () => {
  const { node, admin } = await startTestNode();
  const dir = tempDir();
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    lines.push(...args.map(String).join(' ').split('\n'));
  });
  // --json and `kairos export` print through stdout.
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
  const file = (name: string, value: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, name.endsWith('.json') ? JSON.stringify(value) : stringify(value));
    return path;
  };

  const ETL: WorkflowSpec = {
    name: 'etl',
    description: 'nightly load',
    steps: [
      { id: 'extract', handler: 'extract', group: 'etl', retry: { maxAttempts: 3 } },
      { id: 'clean', handler: 'clean', after: ['extract'] },
      { id: 'stats', handler: 'stats', after: ['extract'] },
      { id: 'load', job: 'warehouse-load', after: ['clean', 'stats'] },
      { id: 'page', handler: 'page', after: [{ step: 'load', on: 'failure' }] },
      { id: 'big', handler: 'big', after: [{ step: 'stats', on: { path: 'kind', equals: 'big' } }] },
    ],
  };

  it('apply -f: a diff first (--dry-run changes nothing), then the put; applied again, unchanged', async () => {
    const yaml = file('etl.yaml', ETL);
    expect(await kairos('workflows', 'apply', '-f', yaml, '--dry-run')).toBe(
      'would create workflow etl\n1 to create, 0 to update, 0 to delete, 0 unchanged (dry run: nothing changed)',
    );
    expect((await admin.listWorkflows()).items).toEqual([]);
    expect(await kairos('workflows', 'apply', '-f', yaml)).toMatch(/^created workflow etl\n1 to create/);
    expect(await kairos('workflows', 'apply', '-f', file('etl.json', ETL))).toMatch(
      /^unchanged workflow etl\n/,
    );
    expect((await admin.getWorkflow('etl')).version).toBe(1);

    // A duration equals its milliseconds; a changed field, an added and a removed step are named.
    const changed = {
      ...ETL,
      steps: [
        ...ETL.steps.filter((s) => s.id !== 'big'),
        { id: 'audit', handler: 'audit', after: ['load'] },
      ].map((s) => (s.id === 'clean' ? { ...s, timeout: '30s' } : s)),
    };
    const out = await kairos('workflows', 'apply', '-f', file('changed.yaml', changed), '--dry-run');
    expect(out.split('\n')).toEqual([
      'would update workflow etl',
      '    steps.clean.timeout: 300000 → 30000',
      '    steps.audit: added',
      '    steps.big: removed',
      '0 to create, 1 to update, 0 to delete, 0 unchanged (dry run: nothing changed)',
    ]);
    await admin.putWorkflow({
      ...ETL,
      steps: ETL.steps.map((s) => (s.id === 'clean' ? { ...s, timeout: 30_000 } : s)),
    });
    expect(await kairos('workflows', 'apply', '-f', yaml)).toMatch(
      /^updated workflow etl\n {4}steps.clean.timeout/,
    );
    expect((await admin.getWorkflow('etl')).version).toBe(3);
  });

  it('apply -f: a broken workflow or one listed twice is a usage error naming it, and nothing is sent', async () => {
    const broken = file('broken.yaml', [
      { name: 'ok', steps: [{ id: 'a', handler: 'h' }] },
      { name: 'loop', steps: [{ id: 'a', handler: 'h', after: ['a'] }] },
    ]);
    await expect(kairos('workflows', 'apply', '-f', broken)).rejects.toThrow(
      /broken.yaml: workflow loop: WORKFLOW_INVALID: .*a/,
    );
    const twice = file('twice.json', [ETL, ETL]);
    await expect(kairos('workflows', 'apply', '-f', twice)).rejects.toThrow(/workflow etl is listed twice/);
    const unknown = file('unknown.yaml', { name: 'ok', steps: [{ id: 'a', handler: 'h', retries: 3 }] });
    await expect(kairos('workflows', 'apply', '-f', unknown)).rejects.toThrow(
      /unknown.yaml: workflow ok: unknown key steps\[0\].retries/,
    );
    await expect(admin.getWorkflow('ok')).rejects.toThrow(/no workflow named "ok"/);
  });

  it('list and get: a table, the steps with what they run and their edges; --json the API answer', async () => {
    await admin.putWorkflow(ETL);
    const list = await kairos('workflows', 'list');
    expect(list.split('\n')[0]).toMatch(/^NAME\s+VERSION\s+STEPS\s+UPDATED\s+DESCRIPTION$/);
    expect(list).toMatch(/^etl\s+\d+\s+6\s+\d{4}-.*nightly load$/m);
    expect((await json<Array<{ name: string }>>('workflows', 'list')).map((w) => w.name)).toEqual(['etl']);

    const get = (await kairos('workflows', 'get', 'etl')).split('\n');
    expect(get).toContain('description  nightly load');
    const rows = get
      .slice(get.findIndex((line) => line.startsWith('STEP')))
      .map((row) => row.split(/\s{2,}/));
    expect(rows).toEqual([
      ['STEP', 'RUNS', 'AFTER', 'JOIN'],
      ['extract', 'handler extract (group etl)', '-', '-'],
      ['clean', 'handler clean', 'extract', '-'],
      ['stats', 'handler stats', 'extract', '-'],
      ['load', 'job warehouse-load', 'clean, stats', 'all'],
      ['page', 'handler page', 'load on failure', '-'],
      ['big', 'handler big', 'stats if kind = "big"', '-'],
    ]);
    expect(await json('workflows', 'get', 'etl')).toEqual(await admin.getWorkflow('etl'));
    await expect(kairos('workflows', 'get', 'nope')).rejects.toMatchObject({ code: 'WORKFLOW_NOT_FOUND' });
  });

  it('start prints the instance id; a key used before answers that instance; instances and instance show them', async () => {
    await admin.putWorkflow(ETL);
    const id = Number(await kairos('workflows', 'start', 'etl', '--context', '{"day":"2026-12-05"}'));
    expect(id).toBeGreaterThan(0);
    const keyed = await json<WorkflowInstance>('workflows', 'start', 'etl', '--idempotency-key', 'day-1');
    expect(await json<WorkflowInstance>('workflows', 'start', 'etl', '--idempotency-key', 'day-1')).toEqual(
      keyed,
    );
    await expect(kairos('workflows', 'start', 'etl', '--context', '[1]')).rejects.toThrow(
      /--context: expected a JSON object/,
    );

    const instances = (await kairos('workflows', 'instances', 'etl')).split('\n');
    expect(instances[0]).toMatch(/^ID\s+STATE\s+VERSION\s+STEPS ENDED\s+STARTED\s+DURATION$/);
    expect(instances.slice(1).map((row) => row.split(/\s{2,}/).slice(0, 4))).toEqual([
      [String(keyed.id), 'running', String(keyed.version), '0/6'],
      [String(id), 'running', String(keyed.version), '0/6'],
    ]);
    const paged = await kairos('workflows', 'instances', 'etl', '--limit', '1');
    expect(paged).toContain(`more: kairos workflows instances etl --cursor ${keyed.id}`);

    const shown = (await kairos('workflows', 'instance', String(id))).split('\n');
    expect(shown).toContain('state     running');
    expect(shown).toContain('context   {"day":"2026-12-05"}');
    const steps = shown
      .slice(shown.findIndex((line) => line.startsWith('STEP')))
      .map((row) => row.split(/\s{2,}/));
    const instance = await admin.getWorkflowInstance(id);
    expect(steps).toEqual([
      ['STEP', 'STATE', 'RUN'],
      ['extract', 'ready', String(instance.steps[0]!.runId)],
      ...['clean', 'stats', 'load', 'page', 'big'].map((step) => [step, 'waiting', '-']),
    ]);
    expect(await json('workflows', 'instance', String(id))).toEqual(instance);
    await expect(kairos('workflows', 'instance', 'x')).rejects.toThrow(
      /instance id: expected a whole number/,
    );
  });

  it('cancel ends a running instance; a second cancel is WORKFLOW_INSTANCE_FINISHED; delete removes the workflow', async () => {
    await admin.putWorkflow(ETL);
    const { id } = await admin.startWorkflow('etl');
    expect(await kairos('workflows', 'cancel', String(id))).toBe(`instance ${id} of etl: cancelled`);
    await expect(kairos('workflows', 'cancel', String(id))).rejects.toMatchObject({
      code: 'WORKFLOW_INSTANCE_FINISHED',
    });
    await admin.putWorkflow({ name: 'gone', steps: [{ id: 'a', handler: 'h' }] });
    expect(await kairos('workflows', 'delete', 'gone')).toBe('deleted workflow gone');
    await expect(admin.getWorkflow('gone')).rejects.toMatchObject({ code: 'WORKFLOW_NOT_FOUND' });
  });

  it('kairos apply takes workflows beside jobs; export writes them back, defaults left out', async () => {
    const definitions = {
      jobs: [{ name: 'warehouse-load', handler: 'load', trigger: { kind: 'manual' } }],
      workflows: [
        {
          name: 'from-file',
          steps: [
            { id: 'extract', handler: 'extract', timeout: '5m', group: 'default' },
            { id: 'load', job: 'warehouse-load', after: [{ step: 'extract', on: 'success' }] },
            { id: 'page', handler: 'page', after: [{ step: 'load', on: 'always' }], params: { to: 'ops' } },
          ],
        },
      ],
    };
    const path = file('all.yaml', definitions);
    expect(await kairos('apply', '-f', path, '--dry-run')).toMatch(
      /^would create job warehouse-load\nwould create workflow from-file\n2 to create/,
    );
    await expect(admin.getWorkflow('from-file')).rejects.toMatchObject({ code: 'WORKFLOW_NOT_FOUND' });
    expect(await kairos('apply', '-f', path)).toMatch(
      /^created job warehouse-load\ncreated workflow from-file\n/,
    );
    expect(await kairos('apply', '-f', path)).toMatch(
      /unchanged job warehouse-load\nunchanged workflow from-file\n/,
    );

    const exported = join(dir, 'exported.yaml');
    await kairos('export', '-o', exported);
    const back = parse(readFileSync(exported, 'utf8'));
    expect(back.workflows.find((w: { name: string }) => w.name === 'from-file')).toEqual({
      name: 'from-file',
      steps: [
        { id: 'extract', handler: 'extract' },
        { id: 'load', job: 'warehouse-load', after: ['extract'] },
        { id: 'page', handler: 'page', params: { to: 'ops' }, after: [{ step: 'load', on: 'always' }] },
      ],
    });
    // The exported file goes back unchanged.
    expect(await kairos('apply', '-f', exported)).not.toMatch(/^(created|updated)/m);

    const bad = file('bad.yaml', { ...definitions, workflows: [{ name: 'x', steps: [{ id: 'a' }] }] });
    await expect(kairos('apply', '-f', bad)).rejects.toThrow(/bad.yaml: workflow x: VALIDATION_FAILED/);
  });

  it('task steps: get names their kind; apply, export and apply again change nothing; a changed task is named', async () => {
    const backup: WorkflowSpec = {
      name: 'backup',
      steps: [
        {
          id: 'dump',
          task: { kind: 'shell', command: '/usr/local/bin/dump', args: ['--all'] },
          group: 'ops',
          timeout: '1h',
        },
        {
          id: 'notify',
          task: { kind: 'http', method: 'POST', url: 'https://hooks.example.com/x' },
          after: ['dump'],
        },
      ],
    };
    expect(await kairos('workflows', 'apply', '-f', file('backup.yaml', backup))).toMatch(
      /^created workflow backup/,
    );
    const get = (await kairos('workflows', 'get', 'backup')).split('\n');
    const rows = get
      .slice(get.findIndex((line) => line.startsWith('STEP')))
      .map((row) => row.split(/\s{2,}/));
    expect(rows).toEqual([
      ['STEP', 'RUNS', 'AFTER', 'JOIN'],
      ['dump', 'shell /usr/local/bin/dump (group ops)', '-', '-'],
      ['notify', 'http POST https://hooks.example.com/x', 'dump', '-'],
    ]);
    const exported = join(dir, 'backup-exported.yaml');
    await kairos('export', '-o', exported);
    const back = parse(readFileSync(exported, 'utf8'));
    const step = back.workflows.find((w: { name: string }) => w.name === 'backup').steps[0];
    expect(step).toMatchObject({
      id: 'dump',
      group: 'ops',
      timeout: 3_600_000,
      task: { command: '/usr/local/bin/dump' },
    });
    expect(step).not.toHaveProperty('handler');
    expect(await kairos('apply', '-f', exported)).not.toMatch(/^(created|updated)/m);
    const changed = {
      ...backup,
      steps: backup.steps.map((s) =>
        s.id === 'dump' ? { ...s, task: { kind: 'shell', command: '/usr/local/bin/dump' } } : s,
      ),
    };
    const out = await kairos('workflows', 'apply', '-f', file('backup-changed.yaml', changed), '--dry-run');
    expect(out).toMatch(/^would update workflow backup\n {4}steps\.dump\.task/);
  });
});
