import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  durationFlagMs,
  jobPatchFromFlags,
  jobSpecFromFlags,
  parseIntFlag,
  parseJsonObject,
  parseRunStatus,
  resolveToken,
  UsageError,
} from './options.ts';

describe('jobSpecFromFlags', () => {
  const base = { handler: 'send-report' };

  it('builds a cron trigger, with or without a zone', () => {
    expect(jobSpecFromFlags('r', { ...base, cron: '0 9 * * 1-5' }).trigger).toEqual({
      kind: 'cron',
      cron: '0 9 * * 1-5',
    });
    expect(jobSpecFromFlags('r', { ...base, cron: '0 9 * * *', tz: 'Europe/Berlin' }).trigger).toEqual({
      kind: 'cron',
      cron: '0 9 * * *',
      timezone: 'Europe/Berlin',
    });
  });

  it('builds every, delay, at and manual triggers', () => {
    expect(jobSpecFromFlags('r', { ...base, every: '30s' }).trigger).toEqual({ kind: 'every', every: '30s' });
    expect(jobSpecFromFlags('r', { ...base, delay: '5m' }).trigger).toEqual({ kind: 'delay', delay: '5m' });
    expect(jobSpecFromFlags('r', { ...base, at: '2030-06-01T09:00:00Z' }).trigger).toEqual({
      kind: 'at',
      at: '2030-06-01T09:00:00.000Z',
    });
    expect(jobSpecFromFlags('r', { ...base, manual: true }).trigger).toEqual({ kind: 'manual' });
  });

  it('builds the whole spec', () => {
    const spec = jobSpecFromFlags('report', {
      handler: 'send-report',
      group: 'mail',
      every: '1h',
      params: '{"to":"ops","n":2}',
      timeout: '30s',
      retries: '4',
      backoff: 'fixed',
      retryDelay: '10s',
      priority: '-5',
      paused: true,
      description: 'daily mail',
    });
    expect(spec).toEqual({
      name: 'report',
      handler: 'send-report',
      group: 'mail',
      description: 'daily mail',
      trigger: { kind: 'every', every: '1h' },
      params: { to: 'ops', n: 2 },
      timeout: '30s',
      retry: { maxAttempts: 5, backoff: 'fixed', delay: '10s' },
      priority: -5,
      paused: true,
    });
  });

  it('passes durations through as strings; bare numbers are milliseconds', () => {
    const spec = jobSpecFromFlags('r', { ...base, delay: '1.5h', timeout: '250ms', retryDelay: '2s' });
    expect(spec.trigger).toEqual({ kind: 'delay', delay: '1.5h' });
    expect(spec.timeout).toBe('250ms');
    expect(spec.retry?.delay).toBe('2s');
    expect(jobSpecFromFlags('r', { ...base, every: '5000' }).trigger).toEqual({ kind: 'every', every: 5000 });
  });

  it('builds a job’s retention from --keep-finished, --keep-failed and --keep-last', () => {
    expect(
      jobSpecFromFlags('r', { ...base, manual: true, keepFinished: '2d', keepFailed: '30d', keepLast: '100' })
        .retention,
    ).toEqual({ finished: '2d', failed: '30d', keepLast: 100 });
    expect(jobSpecFromFlags('r', { ...base, manual: true }).retention).toBeUndefined();
    expect(jobPatchFromFlags({ keepLast: '5' })).toEqual({ retention: { keepLast: 5 } });
    expect(() => jobSpecFromFlags('r', { ...base, manual: true, keepLast: '0' })).toThrow(UsageError);
    expect(() => jobSpecFromFlags('r', { ...base, manual: true, keepFinished: 'a while' })).toThrow(
      UsageError,
    );
  });

  it('maps --retries N to retry.maxAttempts N + 1', () => {
    expect(jobSpecFromFlags('r', { ...base, manual: true, retries: '2' }).retry).toEqual({ maxAttempts: 3 });
    expect(jobSpecFromFlags('r', { ...base, manual: true, retries: '0' }).retry).toEqual({ maxAttempts: 1 });
    expect(jobSpecFromFlags('r', { ...base, manual: true }).retry).toBeUndefined();
  });

  it('requires exactly one trigger and a handler', () => {
    expect(() => jobSpecFromFlags('r', { ...base, cron: '* * * * *', every: '1m' })).toThrow(
      /--cron and --every/,
    );
    expect(() => jobSpecFromFlags('r', { ...base, at: '2030-01-01T00:00:00Z', manual: true })).toThrow(
      UsageError,
    );
    expect(() => jobSpecFromFlags('r', base)).toThrow(/missing trigger/);
    expect(() => jobSpecFromFlags('r', { manual: true })).toThrow(/--handler/);
    expect(() => jobSpecFromFlags('r', { ...base, every: '1m', tz: 'UTC' })).toThrow(/--tz goes with --cron/);
  });

  it('rejects bad values', () => {
    expect(() => jobSpecFromFlags('r', { ...base, manual: true, params: '{to: ops}' })).toThrow(
      /--params: invalid JSON/,
    );
    expect(() => jobSpecFromFlags('r', { ...base, manual: true, params: '[1,2]' })).toThrow(/JSON object/);
    expect(() => jobSpecFromFlags('r', { ...base, manual: true, retries: 'three' })).toThrow(/--retries/);
    expect(() => jobSpecFromFlags('r', { ...base, manual: true, priority: '1.5' })).toThrow(/--priority/);
    expect(() => jobSpecFromFlags('r', { ...base, manual: true, backoff: 'linear' })).toThrow(/--backoff/);
    expect(() => jobSpecFromFlags('r', { ...base, every: 'soon' })).toThrow(/--every: expected a duration/);
    expect(() => jobSpecFromFlags('r', { ...base, at: 'tomorrow' })).toThrow(/--at/);
  });
});

describe('jobPatchFromFlags', () => {
  it('keeps only the flags given', () => {
    expect(jobPatchFromFlags({ every: '10s' })).toEqual({ trigger: { kind: 'every', every: '10s' } });
    expect(jobPatchFromFlags({ retryDelay: '3s', priority: '7' })).toEqual({
      retry: { delay: '3s' },
      priority: 7,
    });
  });

  it('rejects an empty patch and two triggers', () => {
    expect(() => jobPatchFromFlags({})).toThrow(/nothing to update/);
    expect(() => jobPatchFromFlags({ delay: '1s', manual: true })).toThrow(/choose one trigger/);
  });
});

describe('flag parsers', () => {
  it('parses numbers, JSON, durations and statuses', () => {
    expect(parseIntFlag('42', '--limit', { min: 1 })).toBe(42);
    expect(() => parseIntFlag('0', '--limit', { min: 1 })).toThrow(/at least 1/);
    expect(() => parseIntFlag('12abc', '--limit')).toThrow(UsageError);
    expect(parseJsonObject('{"a":[1]}', '--params')).toEqual({ a: [1] });
    expect(durationFlagMs('1.5s', '--timeout')).toBe(1500);
    expect(durationFlagMs('2m', '--timeout')).toBe(120_000);
    expect(durationFlagMs('300', '--timeout')).toBe(300);
    expect(parseRunStatus('timed_out')).toBe('timed_out');
    expect(() => parseRunStatus('done')).toThrow(/--status/);
  });
});

describe('resolveToken', () => {
  it('prefers the flag, then the environment, then credentials.json', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kairos-cli-'));
    expect(resolveToken({ dataDir }, 'admin', {})).toBeUndefined();
    writeFileSync(join(dataDir, 'credentials.json'), JSON.stringify({ adminToken: 'a', workerToken: 'w' }));
    expect(resolveToken({ dataDir }, 'admin', {})).toBe('a');
    expect(resolveToken({ dataDir }, 'worker', {})).toBe('w');
    expect(resolveToken({ dataDir }, 'admin', { KAIROS_TOKEN: 'env' })).toBe('env');
    expect(resolveToken({ dataDir }, 'worker', { KAIROS_WORKER_TOKEN: 'wenv' })).toBe('wenv');
    expect(resolveToken({ dataDir, token: 'flag' }, 'admin', { KAIROS_TOKEN: 'env' })).toBe('flag');
  });
});
