import type { WorkflowStepSpec } from '@kairos/client';
import { describe, expect, it } from 'vitest';
import { KairosError } from '../errors.ts';
import { compileWorkflow, workflowSpecOf } from './workflow.ts';

/** The error compiling one workflow of these steps throws (code, field, message). */
function refusal(steps: unknown[]): { code: string; field: unknown; message: string } {
  try {
    compileWorkflow({ name: 'w', steps: steps as WorkflowStepSpec[] });
  } catch (error) {
    if (!(error instanceof KairosError)) throw error;
    return {
      code: error.code,
      field: (error.details as { field?: unknown } | undefined)?.field,
      message: error.message,
    };
  }
  throw new Error('compiled');
}

describe('task steps: a shell command or an HTTP call as a workflow step (docs/workflows.md#steps)', () => {
  it('compile with their own group, params, retry, timeout, priority and resources, and read back as specified', () => {
    const spec = {
      name: 'w',
      steps: [
        {
          id: 'dump',
          task: { kind: 'shell' as const, command: 'pg_dump', args: ['-Fc'], env: { PGHOST: 'db' } },
          group: 'ops',
          params: { note: 'nightly' },
          retry: { maxAttempts: 3 },
          timeout: '1h',
          priority: 5,
          resources: { cpu: 2 },
        },
        {
          id: 'notify',
          task: {
            kind: 'http' as const,
            method: 'POST' as const,
            url: 'https://hooks.example.com/x',
            body: '{}',
          },
          after: ['dump'],
        },
      ],
    };
    const compiled = compileWorkflow(spec);
    expect(compiled.steps[0]!.run).toMatchObject({
      kind: 'task',
      task: { kind: 'shell', command: 'pg_dump', args: ['-Fc'], env: { PGHOST: 'db' }, cwd: null },
      group: 'ops',
      params: { note: 'nightly' },
      retry: { maxAttempts: 3 },
      timeoutMs: 3_600_000,
      priority: 5,
      resources: { cpu: 2000 },
    });
    expect(compiled.steps[1]!.run).toMatchObject({
      kind: 'task',
      task: { kind: 'http', method: 'POST', url: 'https://hooks.example.com/x', timeoutMs: 30_000 },
      group: 'default',
      timeoutMs: 300_000,
    });
    const answered = workflowSpecOf(compiled);
    expect(answered.steps[0]).toMatchObject({
      id: 'dump',
      task: { kind: 'shell', command: 'pg_dump', args: ['-Fc'], env: { PGHOST: 'db' } },
      group: 'ops',
      timeout: 3_600_000,
    });
    expect(answered.steps[0]).not.toHaveProperty('handler');
    expect(answered.steps[1]!.task).toEqual({
      kind: 'http',
      method: 'POST',
      url: 'https://hooks.example.com/x',
      headers: {},
      body: '{}',
      timeout: 30_000,
      expectStatus: [],
    });
    // What the API answers compiles back into the same definition (an apply of an export changes nothing).
    expect(compileWorkflow(answered)).toEqual(compiled);
  });

  it('refuses a task beside a handler or a job, and on a map step, with INVALID_TASK naming the field', () => {
    const shell = { kind: 'shell', command: 'true' };
    expect(refusal([{ id: 'a', task: shell, handler: 'h' }])).toMatchObject({
      code: 'INVALID_TASK',
      field: 'steps[0].handler',
    });
    expect(
      refusal([
        { id: 'a', handler: 'h' },
        { id: 'b', task: shell, job: 'j' },
      ]),
    ).toMatchObject({
      code: 'INVALID_TASK',
      field: 'steps[1].job',
    });
    expect(
      refusal([
        { id: 'list', handler: 'list' },
        { id: 'each', task: shell, after: ['list'], map: { from: 'list' } },
      ]),
    ).toMatchObject({ code: 'INVALID_TASK', field: 'steps[1].map', message: /same for every item/ });
  });

  it('validates the task as a job’s, naming the field inside the step', () => {
    const cases: Array<[unknown, string]> = [
      [{ kind: 'shell', command: '' }, 'steps[0].task.command'],
      [{ kind: 'shell', command: 'ls', url: 'x' }, 'steps[0].task.url'],
      [{ kind: 'shell', command: 'ls', env: { 'BAD-NAME': 'x' } }, 'steps[0].task.env.BAD-NAME'],
      [{ kind: 'http', url: 'ftp://example.com/' }, 'steps[0].task.url'],
      [{ kind: 'http', url: 'https://example.com/\nx' }, 'steps[0].task.url'],
      [{ kind: 'http', url: 'https://example.com/', body: '{}' }, 'steps[0].task.body'],
      [{ kind: 'http', url: 'https://example.com/', method: 'TRACE' }, 'steps[0].task.method'],
      [{ kind: 'http', url: 'https://example.com/', timeout: '1ms' }, 'steps[0].task.timeout'],
      [{ kind: 'http', url: 'https://example.com/', expectStatus: [700] }, 'steps[0].task.expectStatus'],
      [{ kind: 'ssh', command: 'ls' }, 'steps[0].task.kind'],
      [null, 'steps[0].task'],
    ];
    for (const [task, field] of cases) {
      const got = refusal([{ id: 'a', task }]);
      expect(got.field, JSON.stringify(task)).toBe(field);
      // A duration is checked where every duration is (its own code); the rest is the task's.
      if (field !== 'steps[0].task.timeout') expect(got.code, JSON.stringify(task)).toBe('INVALID_TASK');
    }
  });

  it('keeps the step rules of handler steps: the step timeout, group and priority are checked alike', () => {
    const shell = { kind: 'shell', command: 'true' };
    expect(refusal([{ id: 'a', task: shell, timeout: '10ms' }]).field).toBe('steps[0].timeout');
    expect(refusal([{ id: 'a', task: shell, group: 'no group' }])).toMatchObject({
      code: 'VALIDATION_FAILED',
      field: 'steps[0].group',
    });
    expect(refusal([{ id: 'a', task: shell, priority: 1.5 }]).field).toBe('steps[0].priority');
  });

  it('a step runs exactly one thing: none, or handler with job, is VALIDATION_FAILED; a kairos: handler needs its task', () => {
    expect(refusal([{ id: 'a' }])).toMatchObject({ code: 'VALIDATION_FAILED', field: 'steps[0]' });
    expect(refusal([{ id: 'a', handler: 'h', job: 'j' }])).toMatchObject({
      code: 'VALIDATION_FAILED',
      field: 'steps[0]',
    });
    expect(refusal([{ id: 'a', handler: 'kairos:shell' }])).toMatchObject({
      code: 'VALIDATION_FAILED',
      field: 'steps[0].handler',
      message: /a built-in kind is a `task`/,
    });
  });
});
