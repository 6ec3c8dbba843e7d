import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from './errors.ts';

describe('error codes', () => {
  it('each one is documented in docs/errors.md with its HTTP status', () => {
    const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
    const documented = new Map(
      [...doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])] as const),
    );
    const wrong = Object.entries(ERROR_CODES)
      .filter(([code, status]) => documented.get(code) !== status)
      .map(([code, status]) => `${code} ${status} (docs: ${documented.get(code) ?? 'missing'})`);
    expect(wrong).toEqual([]);
  });
});
