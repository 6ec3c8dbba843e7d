// A benchmark worker: a no-op handler that records how long each run waited from enqueue to start.
import { performance } from 'node:perf_hooks';
import { Worker } from '@kairos/worker';

const now = () => performance.timeOrigin + performance.now();
const latencies: number[] = [];
let started = 0;

const worker = new Worker({
  url: process.env.KAIROS_URL!,
  token: process.env.KAIROS_WORKER_TOKEN,
  group: process.env.BENCH_GROUP ?? 'default',
  concurrency: Number(process.env.BENCH_CONCURRENCY ?? 200),
  handleSignals: false,
}).handle('noop', (ctx) => {
  started++;
  if (typeof ctx.params.t === 'number') latencies.push(now() - ctx.params.t);
  return null;
});

process.on('message', async (message: { type: string }) => {
  if (message.type === 'report') process.send!({ type: 'report', started, latencies });
  if (message.type === 'stop') {
    await worker.stop();
    process.exit(0);
  }
});

await worker.start();
process.send!({ type: 'ready' });
