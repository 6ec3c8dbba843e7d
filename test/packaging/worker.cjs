// The same worker in CommonJS: require() of the packages' ES modules (Node.js >= 20.19).
const { Worker } = require('@kairos/worker');

const worker = new Worker({
  url: process.env.KAIROS_URL,
  token: process.env.KAIROS_WORKER_TOKEN,
  group: 'cjs',
  name: 'cjs-worker',
}).handle('double', async (ctx) => ({ doubled: ctx.params.n * 2, by: 'cjs', pid: process.pid }));

worker.start().then(
  () => console.log(`ready ${process.pid}`),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
