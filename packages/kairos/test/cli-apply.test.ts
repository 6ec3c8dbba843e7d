import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type JobSpec, KairosClient } from '@kairos/client';
import { describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { carryOut, planApply } from '../src/cli/apply.ts';
import { buildProgram } from '../src/cli/program.ts';
import type { KairosNode } from '../src/node.ts';
import { startTestNode, tempDir } from './helpers.ts';

/** Jobs that between them use every field a job has. */
const JOBS: JobSpec[] = [
  {
    name: 'nightly',
    description: 'the nightly report',
    group: 'reports',
    handler: 'send-report',
    params: { to: 'ops', copies: 2, nested: { a: [1, 2] } },
    trigger: { kind: 'cron', cron: '30 2 * * *', timezone: 'Europe/Berlin', dst: 'literal' },
    retry: {
      maxAttempts: 5,
      backoff: 'fixed',
      delay: '10s',
      maxDelay: '1m',
      jitter: false,
      nonRetryable: ['BadInput'],
    },
    timeout: '15m',
    priority: 7,
    schedule: {
      misfire: { policy: 'catch-up', maxCatchUp: 3, catchUpWindow: '2h' },
      overlap: 'buffer-one',
      startAt: '2026-01-01T00:00:00.000Z',
      endAt: '2030-01-01T00:00:00.000Z',
      jitter: '5s',
      maxRuns: 1000,
      calendars: ['holidays'],
    },
    routing: { strategy: 'consistent-hash', key: 'to', selector: { region: 'eu' } },
    maxConcurrency: 2,
    rateLimit: { limit: 10, per: '1m' },
    scheduleToStartTimeout: '30s',
    resources: { cpu: 2, memory: '4Gi', gpu: 1 },
  },
  { name: 'rate', handler: 'tick', trigger: { kind: 'every', every: '90s' }, paused: true },
  { name: 'gap', handler: 'tick', trigger: { kind: 'delay', delay: '10s' } },
  { name: 'once', handler: 'tick', trigger: { kind: 'at', at: '2031-05-01T09:00:00.000Z' } },
  { name: 'after-nightly', handler: 'tick', trigger: { kind: 'after', job: 'nightly', on: 'always' } },
  {
    name: 'backup',
    trigger: { kind: 'manual' },
    task: {
      kind: 'shell',
      command: '/usr/local/bin/backup',
      args: ['--all'],
      env: { MODE: 'full' },
      cwd: '/tmp',
    },
  },
  {
    name: 'ping',
    trigger: { kind: 'every', every: '5m' },
    task: {
      kind: 'http',
      method: 'POST',
      url: 'https://hooks.example.com/ping',
      headers: { 'x-team': 'ops' },
      body: '{}',
      timeout: '10s',
      expectStatus: [200, 204],
    },
  },
];

describe('kairos apply and kairos export', async () => {
  const source = await startTestNode();
  const target = await startTestNode();
  const dir = tempDir();
  const output: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((line: string) => output.push(line));
  const kairos = async (node: KairosNode, ...args: string[]) => {
    output.length = 0;
    await buildProgram().parseAsync(['node', 'kairos', '--url', node.url, '--token', 'admin-t', ...args]);
    return output.join('\n');
  };
  const state = async (client: KairosClient) => {
    const jobs = (await client.listJobs({ limit: 100 })).items.map(
      ({ id: _id, createdAt: _c, updatedAt: _u, nextFireAt: _n, ...job }) => job,
    );
    return {
      jobs,
      calendars: (await client.listCalendars()).items.map(({ createdAt: _c, updatedAt: _u, ...c }) => c),
    };
  };

  await source.admin.putCalendar({
    name: 'holidays',
    timezone: 'Europe/Berlin',
    dates: ['2026-12-25'],
    weekdays: [0],
  });
  await source.admin.setGroupLimits('reports', { maxConcurrency: 4, rateLimit: { limit: 100, per: '1m' } });
  for (const job of JOBS) await source.admin.createJob(job);

  it('export → apply on another node → export again: the same file; applied again, nothing changes', async () => {
    const file = join(dir, 'jobs.yaml');
    await kairos(source.node, 'export', '-o', file);
    const exported = parse(readFileSync(file, 'utf8'));
    expect(exported.jobs.map((j: JobSpec) => j.name)).toEqual(JOBS.map((j) => j.name).sort());
    // Defaults are left out: a file shows what its author chose.
    expect(exported.jobs.find((j: JobSpec) => j.name === 'gap')).toEqual({
      name: 'gap',
      handler: 'tick',
      trigger: { kind: 'delay', delay: 10_000 },
    });

    expect(await kairos(target.node, 'apply', '-f', file, '--dry-run')).toMatch(
      /^would create calendar holidays\nwould create group reports\nwould create job after-nightly/,
    );
    expect((await target.admin.listJobs()).items).toEqual([]);
    expect(await kairos(target.node, 'apply', '-f', file)).toMatch(
      /9 to create, 0 to update, 0 to delete, 0 unchanged$/,
    );
    expect(await state(target.admin)).toEqual(await state(source.admin));
    expect((await target.admin.listGroups()).items.find((g) => g.group === 'reports')).toMatchObject({
      maxConcurrency: 4,
      rateLimit: { limit: 100, per: 60_000 },
    });

    const again = join(dir, 'again.yaml');
    await kairos(target.node, 'export', '-o', again);
    expect(readFileSync(again, 'utf8')).toBe(readFileSync(file, 'utf8'));
    expect(await kairos(target.node, 'apply', '-f', again)).toMatch(
      /0 to create, 0 to update, 0 to delete, 9 unchanged$/,
    );
  });

  it('a dry run shows the diff and changes nothing; apply makes it; a pause the file does not mention stays', async () => {
    const before = await target.admin.getJob('nightly');
    await target.admin.pauseJob('gap');
    const file = join(dir, 'changed.json');
    writeFileSync(
      file,
      JSON.stringify({
        jobs: [
          { ...JOBS[0], trigger: { kind: 'cron', cron: '45 3 * * *', timezone: 'Europe/Berlin' } },
          { name: 'gap', handler: 'tick', trigger: { kind: 'delay', delay: '10s' } },
          { name: 'new-one', handler: 'tick', trigger: { kind: 'manual' } },
        ],
      }),
    );
    const diff = await kairos(target.node, 'apply', '-f', file, '--dry-run');
    expect(diff).toContain('would update job nightly');
    expect(diff).toContain(
      '    trigger: {"kind":"cron","cron":"30 2 * * *","timezone":"Europe/Berlin","dst":"literal"} → {"kind":"cron","cron":"45 3 * * *","timezone":"Europe/Berlin"}',
    );
    expect(diff).toContain('unchanged job gap');
    expect(diff).toMatch(/1 to create, 1 to update, 0 to delete, 1 unchanged \(dry run: nothing changed\)$/);
    expect(await target.admin.getJob('nightly')).toEqual(before);

    await kairos(target.node, 'apply', '-f', file);
    expect((await target.admin.getJob('nightly')).trigger).toMatchObject({ cron: '45 3 * * *' });
    expect((await target.admin.getJob('gap')).paused).toBe(true);
    expect((await target.admin.getJob('new-one')).trigger).toEqual({ kind: 'manual' });
  });

  it('a file with one invalid entry changes nothing at all', async () => {
    const before = await state(target.admin);
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      [
        'jobs:',
        '  - { name: fine, handler: tick, trigger: { kind: manual } }',
        "  - { name: broken, handler: tick, trigger: { kind: cron, cron: '61 * * * *' } }",
        'calendars:',
        '  - { name: new-calendar, weekdays: [6] }',
      ].join('\n'),
    );
    await expect(kairos(target.node, 'apply', '-f', file)).rejects.toThrow(
      /bad\.yaml: job broken: INVALID_CRON: .*61/,
    );
    writeFileSync(
      file,
      'jobs:\n  - { name: orphan, handler: tick, trigger: { kind: after, job: nobody } }\n',
    );
    await expect(kairos(target.node, 'apply', '-f', file)).rejects.toThrow(
      /job orphan: its parent nobody is neither in the file nor on the node/,
    );
    writeFileSync(file, 'jobs: []\nteams: []\n');
    await expect(kairos(target.node, 'apply', '-f', file)).rejects.toThrow(/unknown key teams/);
    expect(await state(target.admin)).toEqual(before);
  });

  it('an edit made between the diff and the apply is refused, never overwritten', async () => {
    const definitions = {
      jobs: [{ name: 'rate', handler: 'tick', trigger: { kind: 'every' as const, every: '3m' } }],
    };
    const plan = await planApply(target.admin, definitions);
    expect(plan).toMatchObject([{ kind: 'job', name: 'rate', action: 'update' }]);
    await target.admin.updateJob('rate', { priority: 9 });
    await expect(carryOut(target.admin, definitions, plan)).rejects.toMatchObject({
      code: 'VERSION_CONFLICT',
    });
    expect(await target.admin.getJob('rate')).toMatchObject({ priority: 9, trigger: { every: 90_000 } });
  });

  it('an owner: prune deletes its jobs the file no longer lists, never jobs made by hand or of another owner', async () => {
    const file = join(dir, 'team-a.yaml');
    const write = (jobs: string[]) =>
      writeFileSync(
        file,
        [
          'owner: team-a',
          'jobs:',
          ...jobs.map((name) => `  - { name: ${name}, handler: tick, trigger: { kind: manual } }`),
        ].join('\n'),
      );
    write(['a-1', 'a-2', 'a-3']);
    await kairos(target.node, 'apply', '-f', file);
    expect((await target.admin.getJob('a-2')).owner).toBe('team-a');
    await target.admin.createJob({ name: 'by-hand', handler: 'tick', trigger: { kind: 'manual' } });
    writeFileSync(
      join(dir, 'team-b.yaml'),
      'jobs:\n  - { name: b-1, handler: tick, trigger: { kind: manual } }\n',
    );
    await kairos(target.node, 'apply', '--owner', 'team-b', '-f', join(dir, 'team-b.yaml'));

    write(['a-1']);
    const plan = await kairos(target.node, 'apply', '-f', file, '--prune', '--dry-run');
    expect(plan).toContain('would delete job a-2\nwould delete job a-3');
    expect(plan).toMatch(/0 to create, 0 to update, 2 to delete, 1 unchanged \(dry run: nothing changed\)$/);
    expect((await target.admin.getJob('a-3')).name).toBe('a-3');
    await kairos(target.node, 'apply', '-f', file, '--prune');
    const names = (await target.admin.listJobs({ limit: 100 })).items.map((j) => j.name);
    expect(names).toEqual(expect.arrayContaining(['a-1', 'by-hand', 'b-1']));
    expect(names).not.toContain('a-2');
    expect(names).not.toContain('a-3');

    // Another owner's job is not taken silently; a prune needs an owner.
    writeFileSync(
      join(dir, 'grab.yaml'),
      'owner: team-a\njobs:\n  - { name: b-1, handler: tick, trigger: { kind: manual } }\n',
    );
    await expect(kairos(target.node, 'apply', '-f', join(dir, 'grab.yaml'))).rejects.toThrow(
      /job b-1 is managed by team-b; pass --take-over/,
    );
    await kairos(target.node, 'apply', '-f', join(dir, 'grab.yaml'), '--take-over');
    expect((await target.admin.getJob('b-1')).owner).toBe('team-a');
    writeFileSync(join(dir, 'anon.yaml'), 'jobs: []\n');
    await expect(kairos(target.node, 'apply', '-f', join(dir, 'anon.yaml'), '--prune')).rejects.toThrow(
      /--prune needs an owner/,
    );

    // An owner's export is its file again.
    await kairos(target.node, 'export', '--owner', 'team-a', '-o', join(dir, 'export-a.yaml'));
    expect(parse(readFileSync(join(dir, 'export-a.yaml'), 'utf8'))).toEqual({
      owner: 'team-a',
      jobs: [
        { name: 'a-1', handler: 'tick', trigger: { kind: 'manual' } },
        { name: 'b-1', handler: 'tick', trigger: { kind: 'manual' } },
      ],
    });
  });

  it('guards: a prune or create planned before someone else’s change is refused; a parent is not pruned from under a child; revisions and owners are kept', async () => {
    const manual = (name: string, extra: object = {}) => ({
      name,
      handler: 'tick',
      trigger: { kind: 'manual' as const },
      ...extra,
    });
    // A job deleted by the plan but edited in between: not deleted.
    await target.admin.putJob({ ...manual('c-1'), owner: 'team-c' });
    await target.admin.putJob({ ...manual('c-2'), owner: 'team-c' });
    const keepOne = { owner: 'team-c', jobs: [manual('c-1')] };
    const prunePlan = await planApply(target.admin, keepOne, { prune: true });
    expect(prunePlan.filter((c) => c.action === 'delete').map((c) => c.name)).toEqual(['c-2']);
    await target.admin.updateJob('c-2', { priority: 3 });
    await expect(carryOut(target.admin, keepOne, prunePlan)).rejects.toMatchObject({
      code: 'VERSION_CONFLICT',
    });
    expect((await target.admin.getJob('c-2')).priority).toBe(3);

    // A job planned as new but made meanwhile: not taken over.
    const fresh = { owner: 'team-c', jobs: [manual('c-1'), manual('c-new')] };
    const createPlan = await planApply(target.admin, fresh);
    await target.admin.createJob({ ...manual('c-new'), description: 'by hand' });
    await expect(carryOut(target.admin, fresh, createPlan)).rejects.toMatchObject({ code: 'JOB_NAME_TAKEN' });
    expect(await target.admin.getJob('c-new')).toMatchObject({ owner: null, description: 'by hand' });

    // Pruning a parent that a kept job runs after: refused before anything changes.
    await target.admin.putJob({
      name: 'c-child',
      handler: 'tick',
      trigger: { kind: 'after', job: 'c-2' },
      owner: 'team-c',
    });
    const orphaning = {
      owner: 'team-c',
      jobs: [
        manual('c-1'),
        { name: 'c-child', handler: 'tick', trigger: { kind: 'after' as const, job: 'c-2' } },
      ],
    };
    await expect(planApply(target.admin, orphaning, { prune: true })).rejects.toThrow(
      /c-child runs after c-2, which --prune would delete/,
    );

    // A revision written by the job's declaring code survives an apply that does not give one.
    await target.admin.putJob({ ...manual('c-1'), owner: 'team-c', revision: 5 });
    const c1 = { owner: 'team-c', jobs: [{ ...manual('c-1'), priority: 2 }] };
    await carryOut(target.admin, c1, await planApply(target.admin, c1));
    expect(await target.admin.getJob('c-1')).toMatchObject({ priority: 2, revision: 5, owner: 'team-c' });

    // Jobs of several owners are not exported as one file.
    await expect(kairos(target.node, 'export', '-o', join(dir, 'mixed.yaml'))).rejects.toThrow(
      /the jobs have several owners \(.*\): export one file per owner with --owner/,
    );
  });

  it('group limits are applied to and exported from the namespace named, never another', async () => {
    await target.admin.createNamespace({ name: 'apply-blue', description: '' });
    const inBlue = new KairosClient({ url: target.node.url, token: 'admin-t', namespace: 'apply-blue' });
    const file = join(dir, 'blue-groups.json');
    writeFileSync(file, JSON.stringify({ groups: [{ name: 'blue-etl', maxConcurrency: 1 }] }));
    expect(await kairos(target.node, '--namespace', 'apply-blue', 'apply', '-f', file)).toMatch(
      /1 to create, 0 to update, 0 to delete, 0 unchanged$/,
    );
    expect((await inBlue.listGroups()).items).toMatchObject([
      { namespace: 'apply-blue', group: 'blue-etl', maxConcurrency: 1 },
    ]);
    expect((await target.admin.listGroups()).items.map((g) => g.group)).not.toContain('blue-etl');
    const exported = join(dir, 'blue-export.yaml');
    await kairos(target.node, '--namespace', 'apply-blue', 'export', '-o', exported);
    expect(parse(readFileSync(exported, 'utf8')).groups).toEqual([{ name: 'blue-etl', maxConcurrency: 1 }]);
  });

  it('a TypeScript module that exports the definitions', async () => {
    const file = join(dir, 'jobs.ts');
    writeFileSync(
      file,
      [
        "import type { JobSpec } from '@kairos/client';",
        "const every = (name: string, every: string): JobSpec => ({ name, handler: 'tick', trigger: { kind: 'every', every } });",
        "export default { jobs: [every('ts-1', '1m'), every('ts-2', '2m')] };",
      ].join('\n'),
    );
    expect(await kairos(target.node, 'apply', '-f', file)).toMatch(/2 to create/);
    expect((await target.admin.getJob('ts-2')).trigger).toEqual({ kind: 'every', every: 120_000 });
  });
});
