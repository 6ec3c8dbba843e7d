import { describe, expect, it } from 'vitest';
import { type WorkflowStepOptions, workflow } from './workflow-builder.ts';

describe('workflow(): what docs/workflows.md#typescript-builder promises of untyped code', () => {
  it('both `handler` and `job`, or `retry` on a `job` step, throws at the call', () => {
    const one = workflow('w').step('a', { handler: 'h' });
    expect(() =>
      one.step('both', { handler: 'h', job: 'j' } as unknown as WorkflowStepOptions<'a'>),
    ).toThrow();
    expect(() =>
      one.step('retried', { job: 'j', retry: { maxAttempts: 2 } } as unknown as WorkflowStepOptions<'a'>),
    ).toThrow();
  });
});
