import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { STEP_FAILURE_CODES } from '../src/core/workflow-failures.ts';

describe('workflow step failure codes', () => {
  it('each one is documented in docs/errors.md, in the same order', () => {
    const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## Why a workflow step failed'));
    const documented = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented).toEqual([...STEP_FAILURE_CODES]);
  });
});
