import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type CrontabLine, readCrontab, splitPercent } from '../src/core/crontab.ts';

const fixture = (name: string) =>
  readFileSync(new URL(`./fixtures/crontab/${name}`, import.meta.url), 'utf8');
const system = { userField: true, timezone: 'Europe/Berlin' };
const jobs = (lines: CrontabLine[]) => lines.flatMap((l) => (l.kind === 'job' ? [l] : []));
const shellOf = (l: CrontabLine) => {
  if (l.kind !== 'job' || l.job.task?.kind !== 'shell') throw new Error(`line ${l.line} is not a shell job`);
  return l.job.task;
};

describe('crontab import, over real Debian files', () => {
  it('/etc/crontab: SHELL and PATH, tabs between fields, the user field, braces and ||', () => {
    const lines = readCrontab(fixture('crontab'), { ...system, source: 'crontab' });
    expect(lines.map((l) => [l.line, l.kind])).toEqual([
      [7, 'env'],
      [8, 'env'],
      [18, 'job'],
      [19, 'job'],
      [20, 'job'],
      [21, 'job'],
    ]);
    const weekly = lines.find((l) => l.line === 20)!;
    expect(weekly.kind === 'job' && weekly.job).toMatchObject({
      name: 'crontab-20',
      trigger: { kind: 'cron', cron: '47 6 * * 7', timezone: 'Europe/Berlin' },
      schedule: { overlap: 'allow' },
      retry: { maxAttempts: 1 },
    });
    expect(shellOf(weekly)).toEqual({
      kind: 'shell',
      command: '/bin/sh',
      args: ['-c', 'test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.weekly; }'],
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin' },
    });
    expect(weekly.kind === 'job' && weekly.notes).toEqual([
      'cron ran it as root; it runs as the worker’s user',
    ]);
  });

  it('sysstat: a range with a step; mdadm: \\% is a literal percent sign', () => {
    const sysstat = jobs(readCrontab(fixture('sysstat'), { ...system, source: 'sysstat' }));
    expect(sysstat.map((l) => l.job.trigger)).toEqual([
      { kind: 'cron', cron: '5-55/10 * * * *', timezone: 'Europe/Berlin' },
      { kind: 'cron', cron: '59 23 * * *', timezone: 'Europe/Berlin' },
    ]);
    expect(shellOf(sysstat[0]!).env).toEqual({
      PATH: '/usr/lib/sysstat:/usr/sbin:/usr/sbin:/usr/bin:/sbin:/bin',
    });
    const [mdadm] = jobs(readCrontab(fixture('mdadm'), { ...system, source: 'mdadm' }));
    expect(shellOf(mdadm!).args![1]).toContain('[ $(date +%d) -le 7 ]');
    expect(shellOf(mdadm!).args![1]).not.toContain('\\%');
  });

  it('munin and awstats: MAILTO is reported, not mapped; every other line of every file is a job', () => {
    const munin = readCrontab(fixture('munin'), { ...system, source: 'munin' });
    const mailto = munin.find((l) => l.text.startsWith('MAILTO'))!;
    expect(mailto.kind === 'env' && mailto.notes[0]).toMatch(/not mapped: .*no mail/);
    expect(jobs(munin)).toHaveLength(4);
    expect(jobs(munin)[0]!.notes).toContain('output went by mail to root; it is in the run’s log');
    for (const name of ['anacron', 'awstats', 'certbot', 'e2scrub_all', 'php']) {
      const lines = readCrontab(fixture(name), { ...system, source: name });
      expect(lines.filter((l) => l.kind === 'unmapped')).toEqual([]);
      expect(jobs(lines).length).toBeGreaterThan(0);
    }
  });

  it('--user-label routes each job to workers labelled with its user', () => {
    const [first] = jobs(
      readCrontab(fixture('awstats'), { ...system, source: 'awstats', userLabel: 'unix-user' }),
    );
    expect(first!.job.routing).toEqual({ strategy: 'any', selector: { 'unix-user': 'www-data' } });
  });
});

describe('crontab import, the rules of crontab(5)', () => {
  const user = { userField: false, timezone: 'UTC', source: 'alice' };

  it('% ends the command; the rest is its standard input, further % are newlines', () => {
    expect(splitPercent('mail -s "It\'s 10pm" joe%Joe,%%Where are your kids?%')).toEqual({
      command: 'mail -s "It\'s 10pm" joe',
      input: 'Joe,\n\nWhere are your kids?\n',
    });
    expect(splitPercent('date +\\%F')).toEqual({ command: 'date +%F', input: null });
    const [line] = readCrontab('0 22 * * 1-5 cat > /tmp/out%hello\\%%world\n', user);
    expect(shellOf(line!).args![1]).toBe(
      "{ cat > /tmp/out\n} <<'KAIROS_CRON_INPUT'\nhello%\nworld\nKAIROS_CRON_INPUT",
    );
  });

  it('macros, names, CRON_TZ, SHELL, quoted values and the lines each setting applies to', () => {
    const lines = readCrontab(
      [
        '@hourly echo a',
        'CRON_TZ=America/New_York',
        'SHELL = /bin/bash',
        'GREETING="  hi  "',
        '5 4 * jan sun echo b',
        '@daily echo c',
      ].join('\n'),
      user,
    );
    const [a, b, c] = jobs(lines);
    expect(a!.job.trigger).toEqual({ kind: 'cron', cron: '0 * * * *', timezone: 'UTC' });
    expect(shellOf(a!)).toEqual({ kind: 'shell', command: '/bin/sh', args: ['-c', 'echo a'] });
    expect(b!.job.trigger).toEqual({ kind: 'cron', cron: '5 4 * jan sun', timezone: 'America/New_York' });
    expect(shellOf(b!)).toMatchObject({ command: '/bin/bash', env: { GREETING: '  hi  ' } });
    expect(c!.job).toMatchObject({
      name: 'alice-6',
      trigger: { cron: '0 0 * * *', timezone: 'America/New_York' },
    });
  });

  it('says why a line cannot be mapped, and maps the others', () => {
    const lines = readCrontab(
      [
        '@reboot /usr/local/bin/start',
        '@fortnightly echo x',
        '0 0 */2 * 1-5 echo both-days',
        '61 * * * * echo bad-minute',
        '* * * *',
        '0 0 * * * %only-input',
        '0 0 * * * echo fine',
        'CRON_TZ=Mars/Olympus',
        '0 0 * * * echo where',
        'CRON_TZ=Asia/Tokyo',
        '0 0 * * * echo tokyo',
      ].join('\n'),
      user,
    );
    expect(lines.map((l) => (l.kind === 'unmapped' ? [l.line, l.reason] : [l.line, l.kind]))).toEqual([
      [1, expect.stringMatching(/^@reboot runs once when the host starts/)],
      [2, '@fortnightly: not a cron macro'],
      [3, expect.stringMatching(/cron matches only the restricted one/)],
      [4, expect.stringMatching(/^invalid cron expression "61 \* \* \* \*"/)],
      [5, 'neither an environment setting nor five time fields and a command'],
      [6, 'no command before %'],
      [7, 'job'],
      [8, 'CRON_TZ: unknown time zone Mars/Olympus'],
      // Not in some other zone: not at all, until a good CRON_TZ.
      [9, 'the CRON_TZ above it (Mars/Olympus) is no time zone: its schedule’s zone is unknown'],
      [10, 'env'],
      [11, 'job'],
    ]);
  });
});
