import { describe, expect, it } from 'vitest';
import { KairosError } from '../errors.ts';
import { compileWorkflow } from './workflow.ts';
import { CONTEXT_LIMIT_BYTES, writeContext } from './workflow-context.ts';
import { compileMap, mapItems, mapOutcome } from './workflow-map.ts';

describe('map steps', () => {
  it('fills in the defaults and refuses numbers out of range', () => {
    expect(compileMap({ from: 'list' }, 'steps[1].map')).toEqual({
      from: 'list',
      path: null,
      maxParallel: 10,
      maxItems: 10_000,
      tolerateFailures: 0,
    });
    expect(() => compileMap({ from: 'list', maxItems: 10_001 }, 'steps[1].map')).toThrow(
      'steps[1].map.maxItems: expected a whole number from 1 to 10000',
    );
    expect(() => compileMap({ from: 'list', maxParallel: 0 }, 'm')).toThrow(KairosError);
  });

  it('takes its list from one of its parents or the context, nothing else (WORKFLOW_INVALID)', () => {
    const steps = [
      { id: 'a', handler: 'h' },
      { id: 'b', handler: 'h' },
      { id: 'm', handler: 'h', after: ['a'], map: { from: 'b' } },
    ];
    try {
      compileWorkflow({ name: 'w', steps });
      expect.unreachable();
    } catch (error) {
      expect((error as KairosError).code).toBe('WORKFLOW_INVALID');
      expect((error as KairosError).details).toEqual({
        problems: [
          {
            kind: 'map-source',
            message: "map step 'm' takes its list from 'b', which is neither one of its parents nor $context",
            steps: ['m', 'b'],
          },
        ],
      });
    }
    const ok = compileWorkflow({
      name: 'w',
      steps: [{ id: 'm', handler: 'h', map: { from: '$context', path: 'ids' } }],
    });
    expect(ok.steps[0]!.map).toMatchObject({ from: '$context', path: 'ids' });
  });

  it('reads the list at its path; anything but an array, or a longer one than maxItems, is a failure', () => {
    const map = compileMap({ from: 'p', path: 'a.b', maxItems: 2 }, 'm');
    expect(mapItems(map, { a: { b: [1, 2] } })).toEqual({ items: [1, 2] });
    expect(mapItems(map, { a: { b: { 0: 1 } } })).toEqual({
      error: { code: 'MAP_NOT_A_LIST', message: "the result of 'p' at 'a.b' is an object, not a list" },
    });
    expect(mapItems(map, null)).toMatchObject({ error: { code: 'MAP_NOT_A_LIST' } });
    expect(mapItems(map, { a: { b: [1, 2, 3] } })).toMatchObject({ error: { code: 'MAP_TOO_WIDE' } });
  });

  it('succeeds with the results in index order while failures stay within tolerateFailures', () => {
    const map = compileMap({ from: 'p', tolerateFailures: 1 }, 'm');
    const items = [
      { state: 'succeeded', result: 1 },
      { state: 'failed', result: null },
      { state: 'succeeded', result: 3 },
    ];
    expect(mapOutcome(map, items)).toEqual({ ok: true, result: [1, null, 3] });
    expect(mapOutcome(map, [...items, { state: 'skipped', result: null }])).toMatchObject({
      ok: false,
      error: { code: 'MAP_ITEMS_FAILED' },
    });
  });
});

describe('context writes', () => {
  it('merges $context entries over the context; writes nothing without it', () => {
    expect(writeContext({ a: 1, b: 2 }, { rows: 3, $context: { b: 3, c: [1] } })).toEqual({
      context: { a: 1, b: 3, c: [1] },
    });
    expect(writeContext({ a: 1 }, [1])).toEqual({ unchanged: true });
    expect(writeContext({ a: 1 }, { rows: 1 })).toEqual({ unchanged: true });
    expect(writeContext({}, { $context: 'x' })).toMatchObject({ error: { code: 'CONTEXT_INVALID' } });
    expect(writeContext({}, { $context: { big: 'x'.repeat(CONTEXT_LIMIT_BYTES) } })).toMatchObject({
      error: { code: 'CONTEXT_TOO_LARGE' },
    });
  });
});
