import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Worker } from './worker.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** A node from before fire ahead: its closed poll schema refuses `ahead`. */
function olderNode(polls: Array<Record<string, unknown>>): Promise<Server> {
  let handed = false;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      const send = (status: number, json: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      const path = req.url ?? '';
      if (path.endsWith('/register'))
        return send(200, { workerId: 'w', heartbeatMs: 60_000, leaseMs: 120_000, pollWaitMs: 200 });
      if (path.endsWith('/poll')) {
        const poll = JSON.parse(body) as Record<string, unknown>;
        polls.push(poll);
        if ('ahead' in poll)
          return send(400, {
            error: { code: 'VALIDATION_FAILED', message: "body must NOT have property 'ahead'" },
          });
        const runs = handed
          ? []
          : [
              {
                runId: 1,
                attempt: 1,
                jobName: 'j',
                handler: 'h',
                params: {},
                fireTime: null,
                timeout: 60_000,
                maxAttempts: 1,
              },
            ];
        handed = true;
        return send(200, { runs });
      }
      if (path.endsWith('/report')) return send(200, { results: [{ runId: 1, attempt: 1, ok: true }] });
      return send(200, {});
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('Worker prefetch', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  it('turns prefetch off when the node refuses polls for runs ahead, and keeps taking runs', async () => {
    const polls: Array<Record<string, unknown>> = [];
    server = await olderNode(polls);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    let ran!: () => void;
    const handled = new Promise<void>((resolve) => {
      ran = resolve;
    });
    const worker = new Worker({ url, concurrency: 2, handleSignals: false, logger: quiet }).handle(
      'h',
      () => {
        ran();
        return null;
      },
    );
    await worker.start();
    await handled;
    await worker.stop();
    expect(polls[0]).toMatchObject({ max: 2, ahead: 10 });
    expect(polls.slice(1).every((poll) => !('ahead' in poll))).toBe(true);
  });
});
