import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Assignment, Report } from '@kairos/client';
import { afterEach, describe, expect, it } from 'vitest';
import { TimeoutError } from './errors.ts';
import type { WorkerLogger } from './logger.ts';
import { monotonicNow } from './timing.ts';
import { Worker } from './worker.ts';

const quiet: WorkerLogger = { debug() {}, info() {}, warn() {}, error() {} };

type Send = (json: unknown, status?: number) => void;

/** The run the stand-in nodes below hand out. */
const assignment: Assignment = {
  runId: 1,
  attempt: 1,
  jobName: 'j',
  handler: 'h',
  params: {},
  fireTime: null,
  timeout: 60_000,
  maxAttempts: 1,
};

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

/**
 * A node from before fire ahead and poll numbers: its closed poll schema refuses `seq` and `ahead`,
 * the first it meets, as Kairos nodes since 0.1.0 refuse a field they do not know.
 */
function olderNode(polls: Array<Record<string, unknown>>): Promise<Server> {
  let handed = false;
  return fakeNode((path, body, send) => {
    if (path.endsWith('/register'))
      return send({ workerId: 'w', heartbeatMs: 60_000, leaseMs: 120_000, pollWaitMs: 200 });
    if (path.endsWith('/poll')) {
      const poll = JSON.parse(body) as Record<string, unknown>;
      polls.push(poll);
      const unknown = ['seq', 'ahead'].find((field) => field in poll);
      if (unknown)
        return send(
          {
            error: {
              code: 'VALIDATION_FAILED',
              message: `body/${unknown}: unknown field`,
              details: [{ path: `/${unknown}`, message: 'unknown field' }],
            },
          },
          400,
        );
      const runs = handed ? [] : [assignment];
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
    expect(polls[0]).toMatchObject({ max: 2, ahead: 10, seq: 1 });
    const aheadOff = polls.findIndex((poll) => !('ahead' in poll));
    expect(aheadOff).toBeGreaterThan(0);
    expect(polls.slice(aheadOff).every((poll) => !('ahead' in poll) && !('seq' in poll))).toBe(true);
  });

  it('keeps poll numbers and prefetch when the node refuses a poll for a bad value, not an unknown field', async () => {
    const polls: Array<Record<string, unknown>> = [];
    let handed = false;
    server = await fakeNode((path, body, send) => {
      if (path.endsWith('/register'))
        return send({ workerId: 'w', heartbeatMs: 60_000, leaseMs: 120_000, pollWaitMs: 200 });
      if (path.endsWith('/poll')) {
        polls.push(JSON.parse(body) as Record<string, unknown>);
        if (polls.length <= 2)
          return send(
            {
              error: {
                code: 'VALIDATION_FAILED',
                message: 'body/waitMs: must be integer',
                details: [{ path: '/waitMs', message: 'must be integer' }],
              },
            },
            400,
          );
        const runs = handed ? [] : [assignment];
        handed = true;
        return setTimeout(() => send({ runs }), runs.length > 0 ? 0 : 50);
      }
      if (path.endsWith('/report')) return send({ results: [{ runId: 1, attempt: 1, ok: true }] });
      return send({ cancel: [] });
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const complaints: string[] = [];
    let ran!: () => void;
    const handled = new Promise<void>((resolve) => {
      ran = resolve;
    });
    const worker = new Worker({
      url,
      concurrency: 2,
      handleSignals: false,
      logger: { ...quiet, warn: (m) => void complaints.push(m), error: (m) => void complaints.push(m) },
    }).handle('h', () => {
      ran();
      return null;
    });
    await worker.start();
    await handled;
    await worker.stop();
    expect(polls.length).toBeGreaterThan(2);
    expect(polls.every((poll) => typeof poll.seq === 'number' && typeof poll.ahead === 'number')).toBe(true);
    expect(complaints).toContain('poll refused by the node; retrying');
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

  it("starts a held run at its instant on the node's clock, not the slow way back of its answer later", async () => {
    // The node's clock runs an hour ahead of the worker's; heartbeats carry it. The poll that
    // hands out the run reads the node's clock, then takes 200 ms to reach the worker.
    const ahead = 3_600_000;
    const startInMs = 1000;
    const slowWayBack = 200;
    const nodeClock = () => ({ id: 'node', time: monotonicNow() + ahead });
    let heartbeats = 0;
    let instant = 0;
    const polls: Array<Record<string, unknown>> = [];
    server = await fakeNode((path, body, send) => {
      if (path.endsWith('/register'))
        return send({ workerId: 'w', heartbeatMs: 20, leaseMs: 120_000, pollWaitMs: 50 });
      if (path.endsWith('/heartbeat')) {
        heartbeats++;
        return send({ cancel: [], nodeClock: nodeClock() });
      }
      if (path.endsWith('/poll')) {
        polls.push(JSON.parse(body) as Record<string, unknown>);
        if (heartbeats < 3 || instant !== 0)
          return setTimeout(() => send({ runs: [], nodeClock: nodeClock() }), 20);
        const read = nodeClock();
        instant = read.time - ahead + startInMs;
        return setTimeout(() => send({ runs: [{ ...assignment, startInMs }], nodeClock: read }), slowWayBack);
      }
      return send({ results: [{ runId: 1, attempt: 1, ok: true }] });
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    let started!: (at: number) => void;
    const start = new Promise<number>((resolve) => {
      started = resolve;
    });
    const worker = new Worker({ url, concurrency: 2, handleSignals: false, logger: quiet }).handle(
      'h',
      () => {
        started(monotonicNow());
        return null;
      },
    );
    await worker.start();
    const at = await start;
    await worker.stop();
    // Never before its instant; counted from the answer's arrival it would start 200 ms later.
    expect(at).toBeGreaterThanOrEqual(instant);
    expect(at - instant).toBeLessThan(slowWayBack - 100);
    // A poll sized by a held run's instant still asks to wait whole milliseconds, as nodes take them.
    expect(polls.filter((poll) => !Number.isInteger(poll.waitMs))).toEqual([]);
  });
});

/** A node that hands out one run at the first poll, then answers polls after `waitMs`; records requests. */
function oneRunNode(
  seen: { polls: Array<Record<string, unknown>>; reports: Report[][] },
  poll: (body: Record<string, unknown>, send: Send) => boolean = () => false,
): Promise<Server> {
  let handed = false;
  return fakeNode((path, body, send) => {
    if (path.endsWith('/register'))
      return send({ workerId: 'w', heartbeatMs: 60_000, leaseMs: 120_000, pollWaitMs: 100 });
    if (path.endsWith('/poll')) {
      const request = JSON.parse(body) as Record<string, unknown> & { reports?: Report[] };
      seen.polls.push(request);
      if (poll(request, send)) return;
      const results = request.reports?.map(({ runId, attempt }) => ({ runId, attempt, ok: true }));
      if (!handed) {
        handed = true;
        return send({ runs: [{ ...assignment, runId: 1 }], ...(results ? { results } : {}) });
      }
      return setTimeout(() => send({ runs: [], ...(results ? { results } : {}) }), 50);
    }
    if (path.endsWith('/report')) {
      const batch = (JSON.parse(body) as { reports: Report[] }).reports;
      seen.reports.push(batch);
      return send({ results: batch.map(({ runId, attempt }) => ({ runId, attempt, ok: true })) });
    }
    return send({});
  });
}

/** Runs a worker with a handler that ends at once until `done` holds, then stops it. */
async function runUntil(url: string, done: () => boolean, logger = quiet): Promise<void> {
  const worker = new Worker({ url, concurrency: 4, prefetch: 0, handleSignals: false, logger }).handle(
    'h',
    () => 'ok',
  );
  await worker.start();
  const deadline = Date.now() + 5000;
  while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  await worker.stop();
}

describe('Worker reports with polls', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  const url = () => `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
  const carried = (polls: Array<Record<string, unknown>>) =>
    polls.flatMap((poll) => (poll.reports as Report[] | undefined) ?? []);

  it('sends the report of a run that ended at once with the next poll: one request, not two', async () => {
    const seen = { polls: [] as Array<Record<string, unknown>>, reports: [] as Report[][] };
    server = await oneRunNode(seen);
    // Until the poll that carried it was answered (a third poll follows).
    await runUntil(url(), () => seen.polls.length > 2);
    expect(carried(seen.polls)).toEqual([{ runId: 1, attempt: 1, outcome: 'succeeded', result: 'ok' }]);
    // The poll after the answer carried it, and nothing else sent it.
    expect(seen.polls[1]?.reports).toHaveLength(1);
    expect(seen.reports).toEqual([]);
  });

  it('reports alone to a node that refuses reports in polls, and stops attaching them', async () => {
    const seen = { polls: [] as Array<Record<string, unknown>>, reports: [] as Report[][] };
    const warnings: string[] = [];
    // A node from before reports rode with polls: its closed schema names the field it does not know.
    server = await oneRunNode(seen, (request, send) => {
      if (!('reports' in request)) return false;
      send(
        {
          error: {
            code: 'VALIDATION_FAILED',
            message: 'body/reports: unknown field',
            details: [{ path: '/reports', message: 'unknown field' }],
          },
        },
        400,
      );
      return true;
    });
    await runUntil(url(), () => seen.reports.length > 0 && seen.polls.length > 3, {
      ...quiet,
      warn: (message: string) => void warnings.push(message),
    });
    expect(seen.reports.flat()).toMatchObject([{ runId: 1, attempt: 1, outcome: 'succeeded' }]);
    const refusedAt = seen.polls.findIndex((poll) => 'reports' in poll);
    expect(refusedAt).toBeGreaterThan(0);
    expect(seen.polls.slice(refusedAt + 1).some((poll) => 'reports' in poll)).toBe(false);
    expect(warnings).toEqual(['the node does not take reports with polls; they go in requests of their own']);
  });

  it.each([
    ['too large', 413, { code: 'PAYLOAD_TOO_LARGE', message: 'request body too large' }],
    [
      'invalid',
      400,
      {
        code: 'VALIDATION_FAILED',
        message: 'body/reports/0/result: must not be a function',
        details: [{ path: '/reports/0/result', message: 'must not be a function' }],
      },
    ],
  ])(
    'sends on their own the reports of a poll refused for them (%s), and polls on as before',
    async (_, status, error) => {
      const seen = { polls: [] as Array<Record<string, unknown>>, reports: [] as Report[][] };
      server = await oneRunNode(seen, (request, send) => {
        if (!('reports' in request)) return false;
        send({ error }, status);
        return true;
      });
      const complaints: string[] = [];
      const logger = {
        ...quiet,
        warn: (m: string) => void complaints.push(m),
        error: (m: string) => void complaints.push(m),
      };
      await runUntil(url(), () => seen.reports.length > 0 && seen.polls.length > 3, logger);
      expect(seen.reports).toMatchObject([[{ runId: 1, attempt: 1, outcome: 'succeeded' }]]);
      // Refused for its reports, the poll went again without them, its number kept (the refusal is
      // not the node's not knowing `seq`), and nothing was logged as a refused poll.
      const refusedAt = seen.polls.findIndex((poll) => 'reports' in poll);
      expect(seen.polls[refusedAt + 1]).not.toHaveProperty('reports');
      expect(seen.polls.slice(refusedAt).every((poll) => typeof poll.seq === 'number')).toBe(true);
      expect(complaints).toEqual([]);
    },
  );
});

describe('Worker stop', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  it('with no grace, still sends the report of a handler it abandons', async () => {
    const seen = { polls: [] as Array<Record<string, unknown>>, reports: [] as Report[][] };
    server = await oneRunNode(seen);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const worker = new Worker({
      url,
      concurrency: 1,
      prefetch: 0,
      handleSignals: false,
      logger: quiet,
      shutdownGraceMs: 0,
    }).handle('h', (ctx) => {
      started();
      return new Promise((_, reject) =>
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
      );
    });
    await worker.start();
    await running;
    await worker.stop();
    // The request left before the reporter closed; its answer may come after stop.
    const deadline = Date.now() + 5000;
    while (seen.reports.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(seen.reports.flat()).toMatchObject([{ runId: 1, attempt: 1, outcome: 'failed' }]);
  });
});
