import { createServer, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KairosClient } from '@kairos/client';
import { Worker } from '@kairos/worker';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.ts';
import { type Child, freePort, spawnKairos, waitFor } from './processes.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

// A node dies (kill -9) after a poll's claim committed and before its answer reached the worker.
// The worker keeps its registration across the restart and keeps heartbeating: the node must give
// the run back from the worker's own list of what it holds, not wait for the run's timeout.

const TOKENS = { KAIROS_ADMIN_TOKEN: 'lost-admin', KAIROS_WORKER_TOKEN: 'lost-worker' };
/** The default worker lease and reaper sweep: the run is back within these (the node's lease is longer). */
const WORKER_LEASE_MS = 5000;
const SWEEP_MS = 1000;
const SLACK_MS = 3000;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

afterAll(dropTestSchemas);

/**
 * An HTTP proxy in front of the node. `dropNextClaim()` makes it keep the answer of the next poll
 * that hands out runs from the worker: the claim committed, the answer is never delivered.
 */
async function answerDroppingProxy(): Promise<{
  url: string;
  target: { url: string };
  dropNextClaim(): Promise<{ runIds: number[]; hangUp(): void }>;
  close(): void;
}> {
  const target = { url: '' };
  let drop: ((held: { runIds: number[]; hangUp(): void }) => void) | null = null;
  const held: ServerResponse[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const upstream = request(
        `${target.url}${req.url}`,
        { method: req.method, headers: req.headers },
        (answer) => {
          const body: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => body.push(chunk));
          answer.on('end', () => {
            const text = Buffer.concat(body).toString('utf8');
            if (drop && req.url?.endsWith('/poll') && answer.statusCode === 200) {
              const runs = (JSON.parse(text) as { runs: Array<{ runId: number }> }).runs;
              if (runs.length > 0) {
                const dropped = drop;
                drop = null;
                held.push(res);
                dropped({ runIds: runs.map((r) => r.runId), hangUp: () => res.destroy() });
                return;
              }
            }
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            res.end(text);
          });
        },
      );
      upstream.on('error', () => res.destroy());
      upstream.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    target,
    dropNextClaim: () =>
      new Promise((resolve) => {
        drop = resolve;
      }),
    close: () => {
      for (const res of held) res.destroy();
      server.close();
    },
  };
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`a claim whose answer never reached the worker (${dialect})`, () => {
    const dataDir = tempDir();
    const store: Record<string, string> =
      dialect === 'sqlite'
        ? { KAIROS_DATA_DIR: dataDir }
        : { KAIROS_DATABASE_URL: `${testDatabaseUrl()}?schema=${testSchema('kairos_lost_answer')}` };
    let node: Child | undefined;
    let worker: Worker | undefined;
    let proxy: Awaited<ReturnType<typeof answerDroppingProxy>> | undefined;
    afterAll(async () => {
      await worker?.stop();
      proxy?.close();
      node?.process.kill('SIGTERM');
      await node?.exited;
    });

    async function startNode(): Promise<KairosClient> {
      const port = await freePort();
      node = spawnKairos(['server', '--port', String(port)], {
        ...TOKENS,
        ...store,
        KAIROS_LOG_LEVEL: 'warn',
        // Longer than the whole test: only the worker's list can free the run, not its lease ending.
        KAIROS_WORKER_LEASE: '2m',
      });
      const url = `http://127.0.0.1:${port}`;
      const admin = new KairosClient({ url, token: TOKENS.KAIROS_ADMIN_TOKEN, timeoutMs: 10_000 });
      const started = node;
      await waitFor(() => admin.health(), 120_000, `the node to answer\n${started.output()}`);
      proxy!.target.url = url;
      return admin;
    }

    it('after kill -9 and a restart, the run is given back and retried within lease + sweep, not at its timeout', async () => {
      proxy = await answerDroppingProxy();
      let admin = await startNode();
      await admin.createJob({ name: 'once', handler: 'work', trigger: { kind: 'manual' }, timeout: '5m' });
      const executions: Array<{ runId: number; attempt: number }> = [];
      worker = new Worker({
        url: proxy.url,
        token: TOKENS.KAIROS_WORKER_TOKEN,
        concurrency: 1,
        handleSignals: false,
        logger: quiet,
      }).handle('work', (ctx) => {
        executions.push({ runId: ctx.runId, attempt: ctx.attempt });
        return null;
      });
      await worker.start();
      const workerId = worker.id;
      const dropped = proxy.dropNextClaim();
      const run = await admin.triggerJob('once');
      const { runIds, hangUp } = await dropped;
      expect(runIds).toEqual([run.id]);
      expect((await admin.getRun(run.id)).status).toBe('running');

      const crashed = node!;
      crashed.process.kill('SIGKILL');
      await crashed.exited;
      admin = await startNode();
      const restartedAt = Date.now();
      // The answer never arrives: the worker's poll ends in a broken connection.
      hangUp();

      const ended = await waitFor(
        async () => {
          const now = await admin.getRun(run.id);
          return now.status === 'succeeded' ? now : undefined;
        },
        60_000,
        `run ${run.id} to be retried and succeed`,
      );
      const [lost, retry] = ended.attempts ?? [];
      expect(lost).toMatchObject({ attempt: 1, status: 'lost', error: { name: 'WorkerLost' } });
      expect(retry).toMatchObject({ attempt: 2, status: 'succeeded' });
      expect(Date.parse(retry!.startedAt) - restartedAt).toBeLessThanOrEqual(
        WORKER_LEASE_MS + SWEEP_MS + SLACK_MS,
      );
      // Executed once, by the attempt that reached the worker; the worker kept its registration.
      expect(executions).toEqual([{ runId: run.id, attempt: 2 }]);
      expect(worker.id).toBe(workerId);
    }, 120_000);
  });
}
