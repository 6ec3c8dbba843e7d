import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Assignment, Report } from '@kairos/client';
import { afterEach, describe, expect, it } from 'vitest';
import { TimeoutError } from './errors.ts';
import { Worker } from './worker.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

type Send = (json: unknown, status?: number) => void;

/** A stand-in node: `route` answers each request from its path and body. */
function fakeNode(route: (path: string, body: string, send: Send) => void): Promise<Server> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () =>
      route(req.url ?? '', body, (json, status = 200) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      }),
    );
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** A node from before fire ahead: its closed poll schema refuses `ahead`. */
function olderNode(polls: Array<Record<string, unknown>>): Promise<Server> {
  let handed = false;
  return fakeNode((path, body, send) => {
    if (path.endsWith('/register'))
      return send({ workerId: 'w', heartbeatMs: 60_000, leaseMs: 120_000, pollWaitMs: 200 });
    if (path.endsWith('/poll')) {
      const poll = JSON.parse(body) as Record<string, unknown>;
      polls.push(poll);
      if ('ahead' in poll)
        return send(
          { error: { code: 'VALIDATION_FAILED', message: "body must NOT have property 'ahead'" } },
          400,
        );
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
      return send({ runs });
    }
    if (path.endsWith('/report')) return send({ results: [{ runId: 1, attempt: 1, ok: true }] });
    return send({});
  });
}

/** A node that hands out `runs` in its first poll answer, and records the reports and when it answered. */
function burstNode(runs: Assignment[], reports: Report[], answered: { at: number }): Promise<Server> {
  let handed = false;
  return fakeNode((path, body, send) => {
    if (path.endsWith('/register'))
      return send({ workerId: 'w', heartbeatMs: 60_000, leaseMs: 120_000, pollWaitMs: 100 });
    if (path.endsWith('/poll')) {
      if (handed) return setTimeout(() => send({ runs: [] }), 100);
      handed = true;
      answered.at = Date.now();
      return send({ runs });
    }
    if (path.endsWith('/report')) {
      const batch = (JSON.parse(body) as { reports: Report[] }).reports;
      reports.push(...batch);
      return send({ results: batch.map(({ runId, attempt }) => ({ runId, attempt, ok: true })) });
    }
    return send({});
  });
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

  it('starts a burst of held runs in order, none before its instant, and times out those that overrun', async () => {
    const startInMs = 150;
    const runs: Assignment[] = Array.from({ length: 300 }, (_, i) => ({
      runId: i + 1,
      attempt: 1,
      jobName: 'j',
      handler: 'h',
      params: {},
      fireTime: null,
      // Every 50th run waits for its signal: it ends at its time limit, holding its slot until then.
      timeout: (i + 1) % 50 === 0 ? 80 : 60_000,
      maxAttempts: 1,
      startInMs,
    }));
    const reports: Report[] = [];
    const answered = { at: 0 };
    server = await burstNode(runs, reports, answered);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const starts: Array<{ runId: number; at: number }> = [];
    const reasons: unknown[] = [];
    const worker = new Worker({ url, concurrency: 40, handleSignals: false, logger: quiet }).handle(
      'h',
      (ctx) => {
        starts.push({ runId: ctx.runId, at: Date.now() });
        if (ctx.runId % 50 === 0) {
          return new Promise((_, reject) =>
            ctx.signal.addEventListener('abort', () => {
              reasons.push(ctx.signal.reason);
              reject(ctx.signal.reason);
            }),
          );
        }
        // A synchronous throw ends its attempt later, not inside the loop that starts the others.
        if (ctx.runId % 7 === 0) throw new Error('thrown at once');
        return ctx.runId;
      },
    );
    await worker.start();
    const deadline = Date.now() + 5000;
    while (reports.length < runs.length && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    await worker.stop();
    expect(starts.map((start) => start.runId)).toEqual(runs.map((run) => run.runId));
    // The worker counts the delay from when the answer arrived, after the node sent it.
    expect(starts.filter((start) => start.at < answered.at + startInMs)).toEqual([]);
    expect(reports).toHaveLength(runs.length);
    const timedOut = reports.filter((report) => report.outcome === 'timed_out');
    expect(timedOut.map((report) => report.runId).sort((a, b) => a - b)).toEqual([
      50, 100, 150, 200, 250, 300,
    ]);
    expect(timedOut[0]).toMatchObject({ error: { name: 'Timeout' } });
    expect(reasons).toHaveLength(6);
    expect(reasons.every((reason) => reason instanceof TimeoutError)).toBe(true);
    expect(reports.filter((report) => report.outcome === 'failed')).toHaveLength(42);
    expect(reports.filter((report) => report.outcome === 'succeeded')).toHaveLength(252);
  });
});
