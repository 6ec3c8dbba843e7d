import { defineTask, type Run, TaskParamsError, type TaskRun } from '@kairos/client';
import { afterAll, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { startTestNode, testWorker } from './helpers.ts';

// One module that producers and workers both import.
const ReportParams = z.object({ to: z.string().min(1), copies: z.number().int().positive() });
const sendReport = defineTask<z.infer<typeof ReportParams>, { sent: number; to: string }>('send-report', {
  params: ReportParams,
});
const ping = defineTask<{ n: number }, number>('ping', { handler: 'pinger' });
// A schema that changes its input: producers send a string, the handler gets a number.
const Counted = z.object({ n: z.string().transform(Number) });
const count = defineTask<z.output<typeof Counted>, number>('count', { params: Counted as never });

describe('typed tasks, producer to worker through a node', async () => {
  const { node, admin } = await startTestNode();
  await admin.createJob({ name: 'send-report', handler: 'send-report', trigger: { kind: 'manual' } });
  await admin.createJob({
    name: 'ping',
    handler: 'pinger',
    trigger: { kind: 'manual' },
    retry: { maxAttempts: 3 },
  });
  await admin.createJob({ name: 'count', handler: 'count', trigger: { kind: 'manual' } });
  const worker = testWorker(node, 'default')
    .handle(sendReport, (ctx) => {
      expectTypeOf(ctx.params).toEqualTypeOf<{ to: string; copies: number }>();
      return { sent: ctx.params.copies, to: ctx.params.to };
    })
    .handle(ping, (ctx) => ctx.params.n + 1)
    .handle(count, (ctx) => ctx.params.n * 2);
  await worker.start();
  afterAll(() => worker.stop());

  async function finished<T extends { id: number; status: string }>(get: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const run = await get();
      if (['succeeded', 'failed', 'timed_out', 'cancelled'].includes(run.status)) return run;
      if (Date.now() > deadline)
        throw new Error(`run ${run.id} still ${run.status} after 20 s: ${JSON.stringify(run)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it('a typed trigger reaches the typed handler; the run’s result has the task’s type', async () => {
    const queued = await admin.trigger(sendReport, { to: 'ops', copies: 2 }, { priority: 5 });
    expectTypeOf(queued).toEqualTypeOf<TaskRun<{ sent: number; to: string }>>();
    const run = await finished(() => admin.getTaskRun(sendReport, queued.id));
    expect(run).toMatchObject({ status: 'succeeded', priority: 5, result: { sent: 2, to: 'ops' } });
    expectTypeOf(run.result).toEqualTypeOf<{ sent: number; to: string } | null>();

    const { id } = await admin.trigger(ping, { n: 41 });
    const pinged = await finished(() => admin.getTaskRun(ping, id));
    expect(pinged.result).toBe(42);
    expectTypeOf(pinged.result).toEqualTypeOf<number | null>();
  });

  it('a schema that transforms: the producer sends the params as given, the handler gets its output', async () => {
    const { id } = await admin.triggerJob('count', { params: { n: '21' } });
    const run = await finished(() => admin.getTaskRun(count, id));
    expect(run).toMatchObject({ status: 'succeeded', params: { n: '21' }, result: 42 });
    const viaTask = await admin.trigger(count, { n: '5' } as never);
    expect((await finished(() => admin.getTaskRun(count, viaTask.id))).result).toBe(10);
  });

  it('params the schema refuses never leave the producer', async () => {
    const before = (await admin.listRuns({ job: 'send-report' })).items.length;
    const error = await admin.trigger(sendReport, { to: '', copies: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskParamsError);
    expect((error as TaskParamsError).issues.map((i) => i.path?.join('.'))).toEqual(['to', 'copies']);
    expect((await admin.listRuns({ job: 'send-report' })).items).toHaveLength(before);

    // Compile-time checks of the same call.
    // @ts-expect-error copies is a number
    await admin.trigger(sendReport, { to: 'ops', copies: '2' }).catch(() => undefined);
    // @ts-expect-error to is required
    await admin.trigger(sendReport, { copies: 2 }).catch(() => undefined);
  });

  it('a run whose params skipped the producer’s check fails on the worker at once, without a retry', async () => {
    const queued: Run = await admin.triggerJob('send-report', { params: { to: 'ops', copies: -1 } });
    const run = await finished(() => admin.getRun(queued.id));
    expect(run).toMatchObject({ status: 'failed', attempt: 1, error: { name: 'NonRetryableError' } });
    expect(run.error?.message).toMatch(/params of send-report refused by its schema: copies: /);
  });
});
