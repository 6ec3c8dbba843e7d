// A strict TypeScript project against the packages' shipped declarations (tsc --noEmit --strict).
import { defineTask, KairosApiError, KairosClient, type Run } from '@kairos/client';
import { nodeTransport } from '@kairos/client/node';
import { type KairosNode, resolveConfig, startNode } from '@kairos/server';
import { NonRetryableError, type RunContext, Worker } from '@kairos/worker';
import { runHandler } from '@kairos/worker/testing';

export const worker = new Worker({ url: 'http://127.0.0.1:7070', token: 'token', group: 'billing' }).handle(
  'invoice',
  async (ctx: RunContext) => {
    if (typeof ctx.params.customer !== 'string') throw new NonRetryableError('params.customer is required');
    ctx.log.info('invoicing', { customer: ctx.params.customer, attempt: ctx.attempt });
    return { customer: ctx.params.customer, deadline: ctx.deadline.toISOString() };
  },
);

// The declarations are real types, not `any`: these lines must not compile.
// @ts-expect-error concurrency is a number
new Worker({ url: 'http://127.0.0.1:7070', concurrency: 'many' });
const client = new KairosClient({ url: 'http://127.0.0.1:7070' });
// @ts-expect-error a trigger has a kind
void client.putJob({ name: 'x', handler: 'y', trigger: { every: '1s' } });

export async function invoiceNow(customer: string): Promise<Run['status']> {
  const client = new KairosClient({
    url: 'http://127.0.0.1:7070',
    token: 'token',
    transport: nodeTransport(),
  });
  try {
    const run = await client.triggerJob('invoice', { params: { customer } });
    return (await client.getRun(run.id)).status;
  } catch (error) {
    if (error instanceof KairosApiError && error.code === 'JOB_NOT_FOUND') return 'failed';
    throw error;
  }
}

export async function embedded(): Promise<KairosNode> {
  return startNode(resolveConfig({ port: 0, dataDir: '.kairos' }, {}));
}

// A typed task shared by producer and worker, and its handler tested without a node.
const total = defineTask<{ customer: string }, { total: number }>('total');
export const typedWorker = new Worker({ url: 'http://127.0.0.1:7070', token: 'token' }).handle(
  total,
  (ctx) => ({
    total: ctx.params.customer.length,
  }),
);
// @ts-expect-error customer is a string
void client.trigger(total, { customer: 1 });
export async function testTotal(): Promise<number | undefined> {
  const outcome = await runHandler(total, (ctx) => ({ total: ctx.params.customer.length }), {
    params: { customer: 'acme' },
  });
  return outcome.result?.total;
}
