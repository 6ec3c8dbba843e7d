// A user's worker in plain JavaScript (ES modules), against the packages as installed from the
// registry: `node worker.mjs`. One handler in the worker's process, one isolated in a child
// process per attempt (double.mjs).
import { Worker } from '@kairos/worker';

const worker = new Worker({
  url: process.env.KAIROS_URL,
  token: process.env.KAIROS_WORKER_TOKEN,
  group: 'esm',
  name: 'esm-worker',
})
  .handle('double', async (ctx) => {
    ctx.log.info('doubling', { n: ctx.params.n });
    return { doubled: ctx.params.n * 2, by: 'esm', pid: process.pid };
  })
  .handle('isolated-double', { module: './double.mjs', isolated: true });

await worker.start();
console.log(`ready ${process.pid}`);
