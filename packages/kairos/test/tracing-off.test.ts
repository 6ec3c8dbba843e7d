import type { KairosClient, Run } from '@kairos/client';
import { trace } from '@opentelemetry/api';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestNode, testWorker } from './helpers.ts';

// No tracing SDK in this process: the API's no-op tracer everywhere (tracing.test.ts has one).

async function finished(client: KairosClient, id: number): Promise<Run> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const run = await client.getRun(id);
    if (['succeeded', 'failed', 'timed_out', 'cancelled'].includes(run.status)) return run;
    if (Date.now() > deadline) throw new Error(`run ${id} still ${run.status} after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('tracing with no SDK registered', async () => {
  const { node, admin } = await startTestNode();
  await admin.createJob({ name: 'plain', handler: 'plain', trigger: { kind: 'manual' } });
  await admin.createJob({ name: 'ticking', handler: 'plain', trigger: { kind: 'every', every: '1s' } });
  const worker = testWorker(node, 'default').handle('plain', (ctx) => {
    // A handler's own spans are harmless, and the attempt has no trace to pass on.
    trace.getTracer('app').startActiveSpan('work', (span) => span.end());
    return { traced: ctx.trace !== null };
  });
  await worker.start();
  afterAll(() => worker.stop());

  it('trigger, fire, dispatch and report work as before, with no trace context anywhere', async () => {
    const queued = await admin.triggerJob('plain', { params: { n: 1 } });
    expect(await finished(admin, queued.id)).toMatchObject({
      status: 'succeeded',
      result: { traced: false },
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const { items } = await admin.listRuns({ job: 'ticking', status: 'succeeded' });
      if (items.length > 0) {
        expect((await admin.getRun(items[0]!.id)).result).toEqual({ traced: false });
        break;
      }
      if (Date.now() > deadline) throw new Error('no fire of ticking succeeded in 30 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
});
