import { describe, expect, it } from 'vitest';
import { jsonDepth } from './input-guards.ts';

describe('jsonDepth', () => {
  it('counts objects and arrays, not brackets inside strings', () => {
    expect(jsonDepth('1')).toBe(0);
    expect(jsonDepth('{"a":[1,{"b":2}]}')).toBe(3);
    expect(jsonDepth('{"a":"[[[[{{{{"}')).toBe(1);
    expect(jsonDepth('{"a":"\\"[[[["}')).toBe(1);
    expect(jsonDepth('[[],[[]],[]]')).toBe(3);
  });

  it('stops once past the limit', () => {
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    expect(jsonDepth(deep)).toBe(10_000);
    expect(jsonDepth(deep, 64)).toBe(65);
  });
});
