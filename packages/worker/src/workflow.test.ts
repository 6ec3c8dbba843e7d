import { describe, expect, it } from 'vitest';
import { withContext, workflowOf } from './workflow.ts';

describe('workflow helpers', () => {
  it('reads $workflow from a step run`s params, null for another run', () => {
    const params = {
      $workflow: { instanceId: 1, step: 'one', context: { bucket: 'b' }, parents: {}, item: 'x', index: 2 },
    };
    expect(workflowOf<{ bucket: string }, string>({ params })).toMatchObject({ item: 'x', index: 2 });
    expect(workflowOf({ params: {} })).toBeNull();
    expect(workflowOf({ params: { $workflow: [1] } })).toBeNull();
  });

  it('adds a context write to a result', () => {
    expect(withContext({ rows: 1 }, { day: 'd' })).toEqual({ rows: 1, $context: { day: 'd' } });
  });
});
