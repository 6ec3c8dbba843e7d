import { describe, expect, expectTypeOf, it } from 'vitest';
import type { WorkflowSpec } from './wire.ts';
import { type WorkflowBuilder, workflow } from './workflow-builder.ts';

describe('workflow(): a typed builder of a WorkflowSpec', () => {
  it('builds the spec the API takes, steps in the order declared', () => {
    const spec = workflow('nightly-etl', { description: 'every night' })
      .step('extract', { handler: 'extract', group: 'etl', retry: { maxAttempts: 3 } })
      .step('clean', { handler: 'clean', after: ['extract'], timeout: '30s' })
      .step('stats', { handler: 'stats', after: [{ step: 'extract', on: 'success' }] })
      .step('load', { job: 'warehouse-load', params: { full: true }, after: ['clean', 'stats'] })
      .step('big', { handler: 'big', after: [{ step: 'stats', on: { path: 'kind', equals: 'big' } }] })
      .step('page', { handler: 'page-on-call', after: [{ step: 'load', on: 'failure' }], join: 'any' })
      .build();
    expectTypeOf(spec).toEqualTypeOf<WorkflowSpec>();
    expect(spec).toEqual({
      name: 'nightly-etl',
      description: 'every night',
      steps: [
        { id: 'extract', handler: 'extract', group: 'etl', retry: { maxAttempts: 3 } },
        { id: 'clean', handler: 'clean', after: ['extract'], timeout: '30s' },
        { id: 'stats', handler: 'stats', after: [{ step: 'extract', on: 'success' }] },
        { id: 'load', job: 'warehouse-load', params: { full: true }, after: ['clean', 'stats'] },
        { id: 'big', handler: 'big', after: [{ step: 'stats', on: { path: 'kind', equals: 'big' } }] },
        { id: 'page', handler: 'page-on-call', after: [{ step: 'load', on: 'failure' }], join: 'any' },
      ],
    });
  });

  it("takes task steps: a shell command or an HTTP call with the step's own group, retry and timeout", () => {
    const spec = workflow('w')
      .step('dump', {
        task: { kind: 'shell', command: 'pg_dump', args: ['-Fc', 'app'], env: { PGHOST: 'db' } },
        group: 'ops',
        retry: { maxAttempts: 2 },
        timeout: '1h',
      })
      .step('notify', {
        task: { kind: 'http', method: 'POST', url: 'https://hooks.example.com/etl', body: '{}' },
        after: ['dump'],
      })
      .build();
    expect(spec.steps).toEqual([
      {
        id: 'dump',
        task: { kind: 'shell', command: 'pg_dump', args: ['-Fc', 'app'], env: { PGHOST: 'db' } },
        group: 'ops',
        retry: { maxAttempts: 2 },
        timeout: '1h',
      },
      {
        id: 'notify',
        task: { kind: 'http', method: 'POST', url: 'https://hooks.example.com/etl', body: '{}' },
        after: ['dump'],
      },
    ]);
  });

  it('knows the ids declared so far: after takes only those', () => {
    const two = workflow('w')
      .step('a', { handler: 'h' })
      .step('b', { handler: 'h', after: ['a'] });
    expectTypeOf(two).toEqualTypeOf<WorkflowBuilder<'a' | 'b'>>();
    expectTypeOf(workflow('w')).toEqualTypeOf<WorkflowBuilder<never>>();
  });

  it('a typo, a later parent, a repeated id, handler with job, or retry on a job step is a type error; the untyped call throws', () => {
    const one = workflow('w').step('extract', { handler: 'extract' });
    // @ts-expect-error: 'extrakt' is no step of this workflow.
    expect(() => one.step('load', { handler: 'load', after: ['extrakt'] })).toThrow(
      'workflow w: step load runs after extrakt, which is not declared before it',
    );
    // @ts-expect-error: an edge's step too.
    expect(() => one.step('load', { handler: 'load', after: [{ step: 'nope', on: 'always' }] })).toThrow(
      /runs after nope/,
    );
    // @ts-expect-error: a step cannot run after itself (nor after one declared later).
    expect(() => one.step('load', { handler: 'load', after: ['load'] })).toThrow(/runs after load/);
    // @ts-expect-error: 'extract' is declared already.
    expect(() => one.step('extract', { handler: 'again' })).toThrow(
      'workflow w: step extract is declared twice',
    );
    // @ts-expect-error: handler or job, not both.
    expect(() => one.step('both', { handler: 'h', job: 'j' })).toThrow(
      'workflow w: step both takes one of handler, task and job, not handler and job',
    );
    // @ts-expect-error: a task step runs its task, not a handler.
    expect(() => one.step('both', { handler: 'h', task: { kind: 'shell', command: 'true' } })).toThrow(
      /not handler and task/,
    );
    // @ts-expect-error: nor a job.
    expect(() => one.step('both', { job: 'j', task: { kind: 'shell', command: 'true' } })).toThrow(
      /not task and job/,
    );
    // @ts-expect-error: a step runs something.
    expect(() => one.step('none', { after: ['extract'] })).toThrow(/not none/);
    expect(() =>
      one.step('each', {
        task: { kind: 'shell', command: 'true' },
        after: ['extract'],
        // @ts-expect-error: a task step is no map step (its command would be the same for every item).
        map: { from: 'extract' },
      }),
    ).toThrow(/no map step/);
    // @ts-expect-error: a job step runs with its job's retry.
    expect(() => one.step('job', { job: 'j', retry: { maxAttempts: 2 } })).toThrow(/has its own retry/);
    // @ts-expect-error: and with its own resources.
    expect(() => one.step('job', { job: 'j', resources: { cpu: 1 } })).toThrow(/has its own resources/);
    // @ts-expect-error: an edge condition is success, failure, always or { path, equals }.
    one.step('odd', { handler: 'h', after: [{ step: 'extract', on: 'sometimes' }] });
  });

  it('each call answers a new builder; a built spec shares nothing with the builder', () => {
    const base = workflow('w').step('a', { handler: 'h' });
    const after = ['a'] as const;
    const left = base.step('b', { handler: 'h', after });
    const right = base.step('c', { handler: 'h' });
    expect(base.build().steps.map((s) => s.id)).toEqual(['a']);
    expect(left.build().steps.map((s) => s.id)).toEqual(['a', 'b']);
    expect(right.build().steps.map((s) => s.id)).toEqual(['a', 'c']);
    const spec = left.build();
    spec.steps[1]!.after!.push('x');
    expect(left.build().steps[1]!.after).toEqual(['a']);
    expect(after).toEqual(['a']);
  });

  it('takes a trigger, a schedule policy, resources and map steps; map.from names a parent or $context', () => {
    const spec = workflow('fan-out', {
      trigger: { kind: 'cron', cron: '0 3 * * *', timezone: 'Europe/Berlin' },
      schedule: { overlap: 'skip' },
    })
      .step('list', { handler: 'list-files', resources: { cpu: 0.5, memory: '256Mi' } })
      .step('each', {
        handler: 'process-file',
        after: ['list'],
        map: { from: 'list', path: 'files', maxParallel: 5, tolerateFailures: 1 },
      })
      .step('ctx', { handler: 'h', map: { from: '$context', path: 'items' } })
      .build();
    expect(spec).toEqual({
      name: 'fan-out',
      trigger: { kind: 'cron', cron: '0 3 * * *', timezone: 'Europe/Berlin' },
      schedule: { overlap: 'skip' },
      steps: [
        { id: 'list', handler: 'list-files', resources: { cpu: 0.5, memory: '256Mi' } },
        {
          id: 'each',
          handler: 'process-file',
          after: ['list'],
          map: { from: 'list', path: 'files', maxParallel: 5, tolerateFailures: 1 },
        },
        { id: 'ctx', handler: 'h', map: { from: '$context', path: 'items' } },
      ],
    });
    const one = workflow('w').step('a', { handler: 'h' });
    // @ts-expect-error: map.from is a declared step or $context.
    expect(() => one.step('m', { handler: 'h', after: ['a'], map: { from: 'nope' } })).toThrow(/map step m/);
    // Declared, but not one of its parents: the API refuses it, so does the call.
    expect(() => one.step('m', { handler: 'h', map: { from: 'a' } })).toThrow(/neither one of its parents/);
  });
});
