import { describe, expect, it } from 'vitest';
import { jobPatchFromFlags, jobSpecFromFlags, UsageError } from './options.ts';

describe('job flags of workers at scale', () => {
  it('build routing, limits and a schedule-to-start timeout', () => {
    expect(
      jobSpecFromFlags('j', {
        handler: 'h',
        manual: true,
        routing: 'consistent-hash',
        routingKey: 'customer',
        selector: 'region=eu, disk=ssd',
        maxConcurrency: '4',
        rate: '10/1m',
        scheduleToStart: '5m',
        resources: 'cpu=0.5, memory=512Mi,gpu=1',
      }),
    ).toEqual({
      name: 'j',
      handler: 'h',
      trigger: { kind: 'manual' },
      routing: { strategy: 'consistent-hash', key: 'customer', selector: { region: 'eu', disk: 'ssd' } },
      maxConcurrency: 4,
      rateLimit: { limit: 10, per: '1m' },
      scheduleToStartTimeout: '5m',
      resources: { cpu: 0.5, memory: '512Mi', gpu: 1 },
    });
  });

  it('refuse a --resources list that is not name=amount pairs', () => {
    expect(() => jobSpecFromFlags('j', { handler: 'h', manual: true, resources: 'cpu' })).toThrow(UsageError);
  });

  it('build a shell or http task without --handler', () => {
    expect(jobSpecFromFlags('s', { manual: true, shell: '/usr/bin/backup', arg: ['--all', '-v'] })).toEqual({
      name: 's',
      trigger: { kind: 'manual' },
      task: { kind: 'shell', command: '/usr/bin/backup', args: ['--all', '-v'] },
    });
    expect(
      jobSpecFromFlags('h', { every: '1m', http: 'https://x.example/hook', method: 'post', body: '{}' }),
    ).toMatchObject({
      task: { kind: 'http', url: 'https://x.example/hook', method: 'POST', body: '{}' },
    });
    expect(jobPatchFromFlags({ routing: 'round-robin' })).toEqual({ routing: { strategy: 'round-robin' } });
  });

  it.each([
    [{ manual: true }, /--handler/],
    [{ manual: true, shell: 'a', http: 'https://x/' }, /--shell or --http/],
    [{ manual: true, handler: 'h', arg: ['x'] }, /--arg goes with --shell/],
    [{ manual: true, handler: 'h', selector: 'region' }, /--selector/],
    [{ manual: true, handler: 'h', rate: '10 per minute' }, /--rate/],
    [{ manual: true, handler: 'h', maxConcurrency: '0' }, /--max-concurrency/],
  ])('refuse %j', (flags, message) => {
    expect(() => jobSpecFromFlags('j', flags)).toThrow(UsageError);
    expect(() => jobSpecFromFlags('j', flags)).toThrow(message);
  });
});
