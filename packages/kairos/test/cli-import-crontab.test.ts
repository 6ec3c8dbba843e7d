import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Run } from '@kairos/client';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../src/cli/program.ts';
import { startTestNode, tempDir, testWorker } from './helpers.ts';

/** `kairos import crontab` as a user runs it, against a real node and a worker that runs shell tasks. */
describe('kairos import crontab', async () => {
  const { node, admin } = await startTestNode();
  const worker = testWorker(node, 'default', { tasks: { shell: true } });
  await worker.start();
  afterAll(() => worker.stop());
  const printed: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((line: string) => printed.push(line));
  const kairos = (...args: string[]) =>
    buildProgram().parseAsync(['node', 'kairos', '--url', node.url, '--token', 'admin-t', ...args]);

  async function finished(id: number): Promise<Run> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const run = await admin.getRun(id);
      if (['succeeded', 'failed', 'timed_out', 'cancelled'].includes(run.status)) return run;
      if (Date.now() > deadline) throw new Error(`run ${id} still ${run.status} after 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  const dir = tempDir();
  mkdirSync(join(dir, 'cron.d'));
  const fixture = (name: string) =>
    readFileSync(new URL(`./fixtures/crontab/${name}`, import.meta.url), 'utf8');

  it('--dry-run reports every line of a real cron.d file and creates nothing', async () => {
    const file = join(dir, 'cron.d', 'sysstat');
    writeFileSync(file, fixture('sysstat'));
    printed.length = 0;
    await kairos('import', 'crontab', '--dry-run', '--timezone', 'UTC', file);
    expect(printed.join('\n')).toMatch(/would create sysstat-6/);
    expect(printed.at(-1)).toBe(
      '2 jobs to create, 0 existed, 0 lines not mapped, 0 refused; schedules without CRON_TZ in UTC',
    );
    expect((await admin.listJobs()).items).toEqual([]);
  });

  it('two files of one name, or a file that may or may not have a user field: the reader must say', async () => {
    mkdirSync(join(dir, 'other'));
    const a = join(dir, 'cron.d', 'twin');
    const b = join(dir, 'other', 'twin');
    writeFileSync(a, '0 0 * * * root true\n');
    writeFileSync(b, '0 0 * * * echo hi\n');
    await expect(kairos('import', 'crontab', '--dry-run', a, b)).rejects.toThrow(
      /have the same name, and so would their jobs/,
    );
    const ambiguous = join(dir, 'ambiguous');
    writeFileSync(ambiguous, '0 3 * * * root /usr/local/bin/backup\n');
    await expect(kairos('import', 'crontab', '--dry-run', ambiguous)).rejects.toThrow(
      /every line's sixth word is a user of this machine \(root\): say whether .*--system.*--no-system/,
    );
    printed.length = 0;
    await kairos('import', 'crontab', '--dry-run', '--system', ambiguous);
    expect(printed.join('\n')).toMatch(/would create ambiguous-1 — cron ran it as root/);
  });

  it('creates the jobs of a user crontab; a run gets its environment and its % input; a second import leaves them', async () => {
    const file = join(dir, 'alice.crontab');
    writeFileSync(
      file,
      [
        '# a user crontab: no user field',
        'GREETING=hello',
        'CRON_TZ=Asia/Tokyo',
        '*/5 9-17 * * mon-fri echo "$GREETING from cron"; cat%first line%second 100\\% line',
        '@reboot /usr/local/bin/never',
      ].join('\n'),
    );
    printed.length = 0;
    await kairos('import', 'crontab', '--prefix', 'team-', file);
    expect(printed.join('\n')).toMatch(/created team-alice\.crontab-4/);
    expect(printed.join('\n')).toMatch(/not mapped — @reboot runs once when the host starts/);
    const job = await admin.getJob('team-alice.crontab-4');
    expect(job.trigger).toEqual({
      kind: 'cron',
      cron: '*/5 9-17 * * mon-fri',
      timezone: 'Asia/Tokyo',
    });
    expect(job.nextFireAt).not.toBeNull();

    const run = await finished((await admin.triggerJob('team-alice.crontab-4')).id);
    expect(run.status).toBe('succeeded');
    const lines = (await admin.runLogs(run.id)).items.map((l) => l.message);
    expect(lines).toEqual(['hello from cron', 'first line', 'second 100% line']);

    printed.length = 0;
    await kairos('import', 'crontab', '--prefix', 'team-', file);
    expect(printed.join('\n')).toMatch(
      /exists team-alice\.crontab-4 — a job of this name exists; left as it is/,
    );
    expect((await admin.listJobs()).items.map((j) => j.name)).toEqual(['team-alice.crontab-4']);
  });
});
