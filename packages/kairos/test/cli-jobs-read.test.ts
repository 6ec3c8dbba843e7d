import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../src/cli/program.ts';
import { startTestNode } from './helpers.ts';

/** `kairos jobs preview`, `get`, `list` and `trigger` as a user reads them, against a real node. */
describe('kairos jobs: what a user reads', async () => {
  const { node, admin } = await startTestNode();
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    lines.push(...args.map(String).join(' ').split('\n'));
  });
  // --json prints through stdout.
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(...String(chunk).trimEnd().split('\n'));
    return true;
  });
  afterEach(() => {
    lines.length = 0;
  });
  const kairos = (...args: string[]) =>
    buildProgram().parseAsync(['node', 'kairos', '--url', node.url, '--token', 'admin-t', ...args]);

  await admin.putCalendar({ name: 'weekends', weekdays: [0, 6] });
  await admin.createJob({
    name: 'weekdays',
    handler: 'h',
    trigger: { kind: 'cron', cron: '0 9 * * *', timezone: 'Asia/Shanghai' },
    schedule: { calendars: ['weekends'] },
  });

  it('preview --count 8 prints 8 fires, whatever the calendar skips in between', async () => {
    await kairos('jobs', 'preview', 'weekdays', '--count', '8');
    const rows = lines.filter((line) => /^\d{4}-\d{2}-\d{2} /.test(line));
    expect(rows).toHaveLength(8);
    // The skipped fire times of the span are named, not counted as fires.
    expect(lines.join('\n')).toMatch(/skipped: calendar/);
  });

  it('preview --skipped lists the skipped fire times among the fires', async () => {
    await kairos('jobs', 'preview', 'weekdays', '--count', '8', '--skipped');
    const rows = lines.filter((line) => /^\d{4}-\d{2}-\d{2} /.test(line));
    expect(rows.filter((row) => row.includes('skipped: calendar')).length).toBeGreaterThan(0);
    expect(rows.filter((row) => !row.includes('skipped')).length).toBe(8);
  });

  it('shows times with their zone; a job in another zone shows its own', async () => {
    await kairos('jobs', 'preview', 'weekdays', '--count', '3');
    const rows = lines.filter((line) => /^\d{4}-\d{2}-\d{2} /.test(line));
    // 09:00 in Shanghai, with its offset and zone.
    for (const row of rows) expect(row).toMatch(/^\d{4}-\d{2}-\d{2} 09:00:00 \+08:00 Asia\/Shanghai/);
    lines.length = 0;
    await kairos('jobs', 'get', 'weekdays');
    const next = lines.find((line) => line.startsWith('next fire'));
    expect(next).toMatch(/09:00:00 \+08:00 Asia\/Shanghai/);
    const created = lines.find((line) => line.startsWith('created'));
    expect(created).toMatch(/\d{2}:\d{2}:\d{2} (?:[+-]\d{2}:\d{2}|Z)/);
  });

  it('trigger --delay queues the run for later; --at with --delay is a usage error', async () => {
    await admin.createJob({ name: 'once', handler: 'h', trigger: { kind: 'manual' } });
    await kairos(
      '--json',
      'jobs',
      'trigger',
      'once',
      '--delay',
      '1h',
      '--idempotency-key',
      'k',
      '--idempotency-ttl',
      '2h',
    );
    const run = JSON.parse(lines.join('\n')) as { id: number; availableAt: string; createdAt: string };
    expect(Date.parse(run.availableAt) - Date.parse(run.createdAt)).toBe(3_600_000);
    await expect(
      kairos('jobs', 'trigger', 'once', '--at', '2030-01-01T00:00:00Z', '--delay', '1h'),
    ).rejects.toThrow(/--at or --delay/);
    lines.length = 0;
    await kairos('--json', 'jobs', 'trigger', 'once', '--at', '2030-01-01T00:00:00Z');
    expect(JSON.parse(lines.join('\n'))).toMatchObject({ availableAt: '2030-01-01T00:00:00.000Z' });
  });
});
