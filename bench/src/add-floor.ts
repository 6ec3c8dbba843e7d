// `npm run bench:add-floor`: what one job enqueued one by one must cost at least, apart from Kairos's
// own choices: the bound under the steady scenario's "enqueued one by one" figure.
//   1. HTTP: sequential POSTs of a small JSON body to a bare Fastify route (the node's web framework,
//      nothing else) in a child process, each awaited before the next, through the client transports
//      of `@kairos/client` (`nodeTransport()`, kept-alive `node:http`, which the benchmark's producer
//      uses, and `fetch`), and a bare `node:http` request (no time limit, the URL parsed once): the
//      transport's own share. Requests per second, and CPU per request of each side.
//   2. The SQLite store's own work for one add and its run, in this process, no HTTP: read the job
//      (the trigger route's namespace check reads it), write the run (`triggerRun`), claim it alone
//      (`dispatchRuns` of 1) and end it (`AttemptEnder.report` of 1): CPU per operation.
// Result: bench/results/add-floor-<timestamp>.json.
//   node --import tsx --conditions=@kairos/source src/add-floor.ts [--requests 5000] [--adds 5000]
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fetchTransport, type Transport } from '@kairos/client';
import { nodeTransport } from '@kairos/client/node';
import { AttemptEnder, compileJob, openStore } from '@kairos/server';
import { saveResult } from './results.ts';
import { round } from './stats.ts';
import { now } from './util.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '5000' },
    adds: { type: 'string', default: '5000' },
  },
});
const requests = Number(values.requests);
const adds = Number(values.adds);

const SERVER = `
import Fastify from 'fastify';
const app = Fastify({ logger: false });
app.post('/v1/jobs/:name/trigger', async (request, reply) => {
  reply.status(201);
  return { id: 1, job: request.params.name, params: request.body.params, status: 'queued' };
});
await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(String(app.server.address().port) + '\\n');
`;

/** CPU time (user + system, all threads) of process `pid` so far, in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function startServer(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', SERVER], {
    cwd: import.meta.dirname,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
    child.once('exit', (code) => reject(new Error(`the server exited (${code})`)));
  });
  return { child, url: `http://127.0.0.1:${port}` };
}

interface HttpFloor {
  requestsPerSecond: number;
  clientCpuUsPerRequest: number;
  serverCpuUsPerRequest: number;
}

async function httpFloor(transport: Transport, url: string, server: number): Promise<HttpFloor> {
  const send = (i: number) =>
    transport({
      method: 'POST',
      url: `${url}/v1/jobs/steady/trigger`,
      headers: { 'content-type': 'application/json', authorization: 'Bearer x' },
      body: JSON.stringify({ params: { i, t: now() } }),
      signal: undefined,
      timeoutMs: 10_000,
    });
  for (let i = 0; i < 500; i++) await send(i); // warm-up
  const client = process.cpuUsage();
  const serverBefore = cpuMs(server);
  const start = now();
  for (let i = 0; i < requests; i++) {
    const answer = await send(i);
    if (answer.status !== 201) throw new Error(`answer ${answer.status}: ${answer.text}`);
  }
  const ms = now() - start;
  const spent = process.cpuUsage(client);
  return {
    requestsPerSecond: Math.round(requests / (ms / 1000)),
    clientCpuUsPerRequest: round((spent.user + spent.system) / requests),
    serverCpuUsPerRequest: round(((cpuMs(server) - serverBefore) * 1000) / requests),
  };
}

/** The least a request over kept-alive `node:http` can do: no time limit, the URL parsed once. */
function bareTransport(url: string): Transport {
  const agent = new Agent({ keepAlive: true });
  const { hostname, port } = new URL(url);
  return ({ method, url: target, headers, body }) =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          hostname,
          port,
          path: target.slice(url.length),
          method,
          agent,
          headers: { ...headers, 'content-length': Buffer.byteLength(body ?? '') },
        },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            text += chunk;
          });
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 0, statusText: response.statusMessage ?? '', text }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
}

/** CPU µs per operation of the SQLite store's work for one add and its run. */
async function storeFloor(): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'kairos-add-floor-'));
  const store = openStore(`sqlite:${join(dir, 'kairos.db')}`);
  try {
    await store.migrate();
    const job = await store.createJob(
      compileJob({ name: 'steady', handler: 'noop', trigger: { kind: 'manual' } }),
      null,
      Date.now(),
    );
    await store.registerWorker(
      {
        id: 'w',
        name: 'w',
        group: job.group,
        handlers: ['noop'],
        capacity: 200,
        labels: {},
        version: '',
        host: '',
      },
      600_000,
      Date.now(),
    );
    const ender = new AttemptEnder(store);
    const spent = { readJob: 0, trigger: 0, claim: 0, end: 0 };
    const timed = async <T>(key: keyof typeof spent, body: () => Promise<T>): Promise<T> => {
      const mark = process.cpuUsage();
      const value = await body();
      const used = process.cpuUsage(mark);
      spent[key] += used.user + used.system;
      return value;
    };
    for (let i = 0; i < adds + 500; i++) {
      if (i === 500) for (const key of Object.keys(spent) as Array<keyof typeof spent>) spent[key] = 0;
      await timed('readJob', () => store.getJob('steady'));
      await timed('trigger', () => store.triggerRun('steady', { params: { i }, priority: null }, Date.now()));
      const claimed = await timed('claim', () => store.dispatchRuns('w', 1, Date.now(), 0.5));
      if (claimed.length !== 1) throw new Error(`claimed ${claimed.length} runs, not 1`);
      await timed('end', () =>
        ender.report(
          [{ runId: claimed[0]!.runId, attempt: claimed[0]!.attempt, outcome: 'succeeded' }],
          Date.now(),
        ),
      );
    }
    const perOp = Object.fromEntries(Object.entries(spent).map(([key, us]) => [key, round(us / adds)]));
    return { ...perOp, all: round(Object.values(spent).reduce((a, b) => a + b, 0) / adds) };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const { child, url } = await startServer();
let http: Record<string, HttpFloor>;
try {
  http = {
    nodeTransport: await httpFloor(nodeTransport(), url, child.pid!),
    fetch: await httpFloor(fetchTransport, url, child.pid!),
    bareNodeHttp: await httpFloor(bareTransport(url), url, child.pid!),
  };
} finally {
  child.kill();
}
const store = await storeFloor();
console.log('HTTP, sequential requests to a bare Fastify route:');
for (const [name, floor] of Object.entries(http))
  console.log(
    `  ${name}: ${floor.requestsPerSecond} requests/s, CPU per request ${floor.clientCpuUsPerRequest} µs (client), ${floor.serverCpuUsPerRequest} µs (server)`,
  );
console.log(
  `SQLite store, CPU µs per add and its run: read the job ${store.readJob}, trigger ${store.trigger}, claim ${store.claim}, end ${store.end}; all ${store.all}`,
);
saveResult('add-floor', { requests, adds, http, sqliteStoreCpuUs: store });
