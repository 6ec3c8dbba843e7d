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
