import { defineTask } from '@kairos/client';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { NonRetryableError, TimeoutError } from './errors.ts';
import { createTestContext, runHandler } from './testing.ts';

describe('@kairos/worker/testing', () => {
  it('runs a handler with the context a worker gives, recording its logs, progress and result', async () => {
    const outcome = await runHandler(
      async (ctx) => {
        ctx.log.info('sending', { to: ctx.params.to as string });
        ctx.progress(0.5, 'half');
        return { attempt: ctx.attempt, job: ctx.jobName, fired: ctx.fireTime?.toISOString() ?? null };
      },
      { params: { to: 'ops' }, attempt: 2, jobName: 'report', fireTime: new Date('2026-12-05T09:00:00Z') },
    );
    expect(outcome).toEqual({
      status: 'succeeded',
      result: { attempt: 2, job: 'report', fired: '2026-12-05T09:00:00.000Z' },
      logs: [{ level: 'info', message: 'sending', fields: { to: 'ops' } }],
      progress: [{ value: 0.5, message: 'half' }],
    });
  });

  it('a handler that throws fails; the signal aborts at the time limit and on cancel', async () => {
    const failed = await runHandler(() => {
      throw new NonRetryableError('bad input');
    });
    expect(failed.status).toBe('failed');
    expect(failed.error).toBeInstanceOf(NonRetryableError);

    const timedOut = await runHandler(
      (ctx) =>
        new Promise<void>((_resolve, reject) =>
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
        ),
      { timeoutMs: 20 },
    );
    expect(timedOut.error).toBeInstanceOf(TimeoutError);

    const test = createTestContext();
    test.cancel();
    expect(test.ctx.signal.reason).toMatchObject({ name: 'CancelledError' });
    test.dispose();
  });

  it('a typed task: params checked by its schema, typed in the handler', async () => {
    const task = defineTask<z.infer<typeof Params>, { sent: number }>('send-report', { params: Params });
    const ok = await runHandler(
      task,
      (ctx) => {
        expectTypeOf(ctx.params).toEqualTypeOf<{ to: string; copies: number }>();
        return { sent: ctx.params.copies };
      },
      { params: { to: 'ops', copies: 2 } },
    );
    expect(ok).toMatchObject({ status: 'succeeded', result: { sent: 2 } });
    expectTypeOf(ok.result).toEqualTypeOf<{ sent: number } | undefined>();

    const refused = await runHandler(task, (ctx) => ({ sent: ctx.params.copies }), {
      // @ts-expect-error copies must be a number
      params: { to: 'ops', copies: 'x' },
    });
    expect(refused.status).toBe('failed');
    expect(String(refused.error)).toMatch(/params of send-report refused by its schema: copies: /);
  });
});

const Params = z.object({ to: z.string(), copies: z.number().int() });
