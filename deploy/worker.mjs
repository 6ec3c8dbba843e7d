// An example worker for the deploy files (compose.yaml, kubernetes/workers.yaml, systemd): your
// own workers are an application of yours with @kairos/worker, shaped like this one.
// KAIROS_URL: one node URL or several, comma-separated (the worker fails over between them).
import { hostname } from 'node:os';
import { Worker } from '@kairos/worker';

const worker = new Worker({
  url: (process.env.KAIROS_URL ?? 'http://127.0.0.1:7070').split(',').map((url) => url.trim()),
  token: process.env.KAIROS_WORKER_TOKEN,
  group: process.env.KAIROS_GROUP ?? 'default',
  name: process.env.KAIROS_WORKER_NAME ?? hostname(),
  concurrency: Number(process.env.KAIROS_CONCURRENCY ?? 4),
}).handle('hello', async (ctx) => {
  ctx.log.info('hello', { params: ctx.params });
  return { hello: ctx.params.name ?? 'world', worker: hostname() };
});

// SIGTERM (a stop, a rollout) lets running handlers finish, then hands the rest back.
await worker.start();
console.log(`worker ${worker.id} ready`);
