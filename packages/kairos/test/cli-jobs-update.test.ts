import { describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../src/cli/program.ts';
import { startTestNode } from './helpers.ts';

/** `kairos jobs update` as a user types it, against a real node. */
describe('kairos jobs update', async () => {
  const { node, admin } = await startTestNode();
  vi.spyOn(console, 'log').mockImplementation(() => {});
  const kairos = (...args: string[]) =>
    buildProgram().parseAsync(['node', 'kairos', '--url', node.url, '--token', 'admin-t', '--json', ...args]);

  await admin.putCalendar({ name: 'weekends', weekdays: [0, 6] });
  await admin.createJob({
    name: 'nightly',
    handler: 'h',
    trigger: { kind: 'cron', cron: '30 2 * * *', timezone: 'Europe/Berlin' },
    schedule: { overlap: 'skip' },
  });

  it('--calendar alone attaches a calendar and keeps the other policies', async () => {
    await kairos('jobs', 'update', 'nightly', '--calendar', 'weekends');
    const job = await admin.getJob('nightly');
    expect(job.schedule.calendars).toEqual(['weekends']);
    expect(job.schedule.overlap).toBe('skip');
  });

  it("--dst alone changes the DST rule of the job's cron trigger", async () => {
    await kairos('jobs', 'update', 'nightly', '--dst', 'literal');
    expect((await admin.getJob('nightly')).trigger).toMatchObject({
      kind: 'cron',
      cron: '30 2 * * *',
      timezone: 'Europe/Berlin',
      dst: 'literal',
    });
  });

  it('a schedule flag with a job flag sets both', async () => {
    await kairos(
      'jobs',
      'update',
      'nightly',
      '--overlap',
      'allow',
      '--routing',
      'round-robin',
      '--priority',
      '3',
    );
    const job = await admin.getJob('nightly');
    expect(job.schedule.overlap).toBe('allow');
    expect(job.priority).toBe(3);
    expect(job.routing.strategy).toBe('round-robin');
  });

  it('--dst on a job without a cron trigger, and no flag at all, are usage errors', async () => {
    await admin.createJob({ name: 'rate', handler: 'h', trigger: { kind: 'every', every: '1m' } });
    await expect(kairos('jobs', 'update', 'rate', '--dst', 'literal')).rejects.toThrow(
      /--dst goes with a cron/,
    );
    await expect(kairos('jobs', 'update', 'rate')).rejects.toThrow(/nothing to update/);
  });

  it('--if-match applies only to that version of the job', async () => {
    const job = await admin.createJob({ name: 'versioned', handler: 'h', trigger: { kind: 'manual' } });
    await kairos('jobs', 'update', 'versioned', '--priority', '4', '--if-match', String(job.version));
    await expect(
      kairos('jobs', 'update', 'versioned', '--priority', '5', '--if-match', String(job.version)),
    ).rejects.toMatchObject({ code: 'VERSION_CONFLICT' });
    await expect(
      kairos('jobs', 'pause', 'versioned', '--if-match', String(job.version)),
    ).rejects.toMatchObject({
      code: 'VERSION_CONFLICT',
    });
    await kairos('jobs', 'pause', 'versioned', '--if-match', String(job.version + 1));
    expect(await admin.getJob('versioned')).toMatchObject({
      priority: 4,
      paused: true,
      version: job.version + 2,
    });
    await expect(kairos('jobs', 'resume', 'versioned', '--if-match', 'two')).rejects.toThrow(/--if-match/);
  });
});
