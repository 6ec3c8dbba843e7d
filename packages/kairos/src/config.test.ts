import { describe, expect, it } from 'vitest';
import { tempDir } from '../test/helpers.ts';
import { resolveConfig } from './config.ts';

const dataDir = tempDir();
const base = { dataDir, adminToken: 'a', workerToken: 'w' };

describe('resolveConfig: fire ahead', () => {
  it('defaults to 500 ms; 0 (a bare number of ms in the environment) turns it off', () => {
    expect(resolveConfig(base, {}).fireAheadMs).toBe(500);
    expect(resolveConfig(base, { KAIROS_FIRE_AHEAD: '0' }).fireAheadMs).toBe(0);
    expect(resolveConfig(base, { KAIROS_FIRE_AHEAD: '2s' }).fireAheadMs).toBe(2000);
    expect(resolveConfig({ ...base, fireAhead: 250 }, { KAIROS_FIRE_AHEAD: '2s' }).fireAheadMs).toBe(250);
  });

  it('refuses what is not a duration from 0 to 60 s', () => {
    for (const bad of ['-1', 'soon', '61s'])
      expect(() => resolveConfig(base, { KAIROS_FIRE_AHEAD: bad })).toThrow(
        expect.objectContaining({ code: 'INVALID_DURATION' }),
      );
  });
});

describe('resolveConfig: retention', () => {
  it('has defaults, and takes durations and the batch from the environment', () => {
    expect(resolveConfig(base, {}).retention).toEqual({
      finishedMs: 30 * 86_400_000,
      failedMs: 90 * 86_400_000,
      skippedFiresMs: 30 * 86_400_000,
      auditMs: 365 * 86_400_000,
      logsMs: 7 * 86_400_000,
      workersMs: 86_400_000,
      intervalMs: 60_000,
      batch: 1000,
    });
    const retention = resolveConfig(base, {
      KAIROS_RETENTION_FINISHED: '2h',
      KAIROS_RETENTION_FAILED: '3650d',
      KAIROS_RETENTION_INTERVAL: '0',
      KAIROS_RETENTION_BATCH: '200',
    }).retention;
    expect(retention).toMatchObject({
      finishedMs: 7_200_000,
      failedMs: 3650 * 86_400_000,
      intervalMs: 0,
      batch: 200,
    });
  });

  it('refuses ages under a minute, an interval under a second, and a batch out of range', () => {
    for (const env of [
      { KAIROS_RETENTION_FINISHED: '30s' },
      { KAIROS_RETENTION_AUDIT: 'forever' },
      { KAIROS_RETENTION_INTERVAL: '500ms' },
      { KAIROS_RETENTION_BATCH: '0' },
      { KAIROS_RETENTION_BATCH: 'many' },
    ])
      expect(() => resolveConfig(base, env)).toThrow(
        expect.objectContaining({ code: expect.stringMatching(/INVALID_DURATION|VALIDATION_FAILED/) }),
      );
  });
});
