// A worker process of the chaos suite: every handler appends `exec` to the history when it starts
// and `end` when it returns, and returns its run id and attempt (the checker compares the result
// the store accepted with the attempt that wrote it).
import { type RunContext, Worker } from '@kairos/worker';
import { appendEvent } from './history-log.ts';

const name = process.env.WORKER_NAME ?? 'chaos';
const history = process.env.CHAOS_HISTORY ?? '';
if (!history) throw new Error('CHAOS_HISTORY names the history file');

function started(ctx: RunContext, workflow?: { instanceId: number; step: string }): void {
  appendEvent(history, {
    t: 'exec',
    runId: ctx.runId,
    attempt: ctx.attempt,
    job: ctx.jobName,
    fireTime: ctx.fireTime?.getTime() ?? null,
    worker: name,
    at: Date.now(),
    ...(workflow ? { workflow } : {}),
  });
}

function ended(ctx: RunContext, ok: boolean) {
  appendEvent(history, {
    t: 'end',
    runId: ctx.runId,
    attempt: ctx.attempt,
    worker: name,
    at: Date.now(),
    ok,
  });
  return { runId: ctx.runId, attempt: ctx.attempt, worker: name };
}

/** Waits `ms`, or until the attempt's signal aborts (a cancel, or the node fenced it out). */
async function work(ctx: RunContext, ms: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(true), ms);
    ctx.signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/** Ends an attempt: its result on success; an error when its signal aborted it. */
function finish(ctx: RunContext, ok: boolean) {
  const result = ended(ctx, ok);
  if (!ok) throw new Error('aborted');
  return result;
}

const between = (min: number, max: number) => min + Math.floor(Math.random() * (max - min));

const worker = new Worker({
  url: JSON.parse(process.env.KAIROS_URLS ?? '["http://127.0.0.1:7070"]'),
  token: process.env.KAIROS_WORKER_TOKEN,
  name,
  concurrency: 32,
  logger: {
    debug() {},
    info() {},
    warn: (m: string) => console.error(`warn ${m}`),
    error: (m: string) => console.error(`error ${m}`),
  },
})
  .handle('tick', async (ctx) => {
    started(ctx);
    const ok = await work(ctx, between(10, 200));
    return finish(ctx, ok);
  })
  .handle('slow', async (ctx) => {
    started(ctx);
    const ok = await work(ctx, between(1000, 6000));
    return finish(ctx, ok);
  })
  .handle('block', async (ctx) => {
    // Blocks the worker's event loop, as a CPU-bound handler does: heartbeats must still hold the lease.
    started(ctx);
    const until = Date.now() + Number(ctx.params.ms ?? 2000);
    while (Date.now() < until) {
      // busy
    }
    return ended(ctx, true);
  })
  .handle('wf-step', async (ctx) => {
    // A workflow step (workflows-chaos.test.ts): fails when its params say so (`always`, or `odd`
    // for an instance of an odd `variant`); otherwise returns the instance's parity, which
    // predicate edges test.
    const { instanceId, step, context } = ctx.params.$workflow as {
      instanceId: number;
      step: string;
      context: { variant: number };
    };
    started(ctx, { instanceId, step });
    const ok = await work(ctx, between(20, 150));
    const result = finish(ctx, ok);
    const odd = context.variant % 2 === 1;
    if (ctx.params.fail === 'always' || (ctx.params.fail === 'odd' && odd))
      throw new Error(`step ${step} fails as planned`);
    return { ...result, kind: odd ? 'odd' : 'even' };
  })
  .handle('poison', async (ctx) => {
    // A poison run: takes its worker down every time it runs.
    started(ctx);
    process.kill(process.pid, 'SIGKILL');
    await new Promise(() => {});
  });

await worker.start();
console.log(`worker ${name} ${worker.id} ready`);
