import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Assignment } from '@kairos/client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Worker } from './worker.ts';

// The worker against stand-in nodes that stop answering (a frozen node: SIGSTOP, a VM pause, a
// long GC) while they keep the connection open.

type Send = (json: unknown, status?: number) => void;
type Route = (path: string, body: string, send: Send, res: ServerResponse) => void;

const servers: Server[] = [];
const hanging: ServerResponse[] = [];
afterEach(() => {
  for (const res of hanging.splice(0)) res.destroy();
  for (const server of servers.splice(0)) server.close();
});

async function fakeNode(route: Route): Promise<string> {
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () =>
      route(
        req.url ?? '',
        body,
        (json, status = 200) => {
          if (res.destroyed) return;
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(json));
        },
        res,
      ),
    );
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function run(runId: number, startInMs: number): Assignment {
  return {
    runId,
    attempt: 1,
    jobName: 'j',
    handler: 'h',
    params: {},
    fireTime: null,
    timeout: 60_000,
    maxAttempts: 1,
    startInMs,
  };
}

function recordingLogger(lines: string[]) {
  const log = (message: string) => {
    lines.push(message);
  };
  return { debug: log, info: log, warn: log, error: log };
}

describe('a node that stops answering', () => {
  it('is left for the next node well within the lease, with the same registration', async () => {
    const LEASE_MS = 3000;
    let frozen = false;
    let lastAnsweredBeat = 0;
    const registered = { a: 0, b: 0 };
    const a = await fakeNode((path, _body, send, res) => {
      if (frozen) return void hanging.push(res);
      if (path.endsWith('/register')) {
        registered.a++;
        return send({ workerId: 'w', heartbeatMs: 200, leaseMs: LEASE_MS, pollWaitMs: 5000 });
      }
      if (path.endsWith('/heartbeat')) {
        lastAnsweredBeat = Date.now();
        return send({ cancel: [] });
      }
      // Polls wait (a long poll) until the node freezes: then they hang with it.
      if (path.endsWith('/poll')) return void hanging.push(res);
      send({});
    });
    const onB: Array<{ path: string; at: number }> = [];
    const b = await fakeNode((path, _body, send) => {
      onB.push({ path, at: Date.now() });
      if (path.endsWith('/register')) {
        registered.b++;
        return send({ workerId: 'other', heartbeatMs: 200, leaseMs: LEASE_MS, pollWaitMs: 5000 });
      }
      if (path.endsWith('/heartbeat')) return send({ cancel: [] });
      if (path.endsWith('/poll')) return setTimeout(() => send({ runs: [] }), 100);
      send({});
    });
    const worker = new Worker({ url: [a, b], handleSignals: false, logger: recordingLogger([]) }).handle(
      'h',
      () => null,
    );
    await worker.start();
    await vi.waitFor(() => expect(lastAnsweredBeat).toBeGreaterThan(0), { timeout: 10_000, interval: 10 });
    frozen = true;
    const frozenAt = Date.now();
    await vi.waitFor(
      () => {
        expect(onB.some((r) => r.path === '/v1/worker/w/heartbeat')).toBe(true);
        expect(onB.some((r) => r.path === '/v1/worker/w/poll')).toBe(true);
      },
      { timeout: 30_000, interval: 20 },
    );
    const firstBeatOnB = onB.find((r) => r.path === '/v1/worker/w/heartbeat')!.at;
    await worker.stop();
    // The lease the store holds counts from the last heartbeat that reached it: the next one
    // reached the live node before it ended. The worker never registered anew.
    expect(firstBeatOnB - Math.min(lastAnsweredBeat, frozenAt)).toBeLessThan(LEASE_MS);
    expect(registered).toEqual({ a: 1, b: 0 });
    expect(worker.id).toBe('w');
  }, 40_000);
});

describe('runs held for their instant', () => {
  it('do not start while the worker cannot show a live lease; once it can, those the node still gives it start', async () => {
    let beats: 'answer' | 'hang' = 'answer';
    let cancel: Array<{ runId: number; attempt: number }> = [];
    let handed = false;
    const url = await fakeNode((path, _body, send, res) => {
      if (path.endsWith('/register'))
        return send({ workerId: 'w', heartbeatMs: 100, leaseMs: 1000, pollWaitMs: 200 });
      if (path.endsWith('/heartbeat')) {
        if (beats === 'hang') return void hanging.push(res);
        return send({ cancel });
      }
      if (path.endsWith('/poll')) {
        if (handed) return setTimeout(() => send({ runs: [] }), 200);
        handed = true;
        // From now on no heartbeat is answered: the lease runs out before the runs' instant.
        beats = 'hang';
        return send({ runs: [run(1, 900), run(2, 900)] });
      }
      send({ results: [] });
    });
    const lines: string[] = [];
    const started: number[] = [];
    const worker = new Worker({ url, handleSignals: false, logger: recordingLogger(lines) }).handle(
      'h',
      (ctx) => {
        started.push(ctx.runId);
        return null;
      },
    );
    await worker.start();
    await vi.waitFor(
      () => {
        if (started.length > 0) return;
        expect(lines.some((line) => line.startsWith('held runs wait'))).toBe(true);
      },
      { timeout: 10_000, interval: 10 },
    );
    expect(started).toEqual([]);
    expect(worker.held).toBe(2);
    // The node answers again: run 1 is no longer this worker's (another has it), run 2 still is.
    cancel = [{ runId: 1, attempt: 1 }];
    beats = 'answer';
    await vi.waitFor(() => expect(started).toEqual([2]), { timeout: 10_000, interval: 10 });
    expect(worker.held).toBe(0);
    await worker.stop();
    expect(started).toEqual([2]);
  }, 20_000);

  it("are dropped when the node no longer knows the worker: they were the lost worker's, run elsewhere", async () => {
    let registrations = 0;
    let handed = false;
    const url = await fakeNode((path, _body, send) => {
      if (path.endsWith('/register')) {
        registrations++;
        return send({ workerId: `w${registrations}`, heartbeatMs: 100, leaseMs: 5000, pollWaitMs: 200 });
      }
      if (path.endsWith('/heartbeat')) {
        // The first worker id was declared lost once it held the run.
        if (path.includes('/w1/') && handed)
          return send({ error: { code: 'WORKER_NOT_FOUND', message: 'register again' } }, 404);
        return send({ cancel: [] });
      }
      if (path.endsWith('/poll')) {
        if (handed) return setTimeout(() => send({ runs: [] }), 200);
        handed = true;
        return send({ runs: [run(1, 2000)] });
      }
      send({ results: [] });
    });
    const started: number[] = [];
    const worker = new Worker({ url, handleSignals: false, logger: recordingLogger([]) }).handle(
      'h',
      (ctx) => {
        started.push(ctx.runId);
        return null;
      },
    );
    await worker.start();
    await vi.waitFor(() => expect(worker.id).toBe('w2'), { timeout: 10_000, interval: 10 });
    expect(worker.held).toBe(0);
    await worker.stop();
    expect(started).toEqual([]);
  });
});

describe('heartbeats', () => {
  it('list an ended attempt while its report waits for its log lines, so that the node does not give it back', async () => {
    const beats: Array<{ running: Array<{ runId: number }>; polled?: number }> = [];
    let handed = false;
    let reported = false;
    const url = await fakeNode((path, body, send) => {
      if (path.endsWith('/register'))
        return send({ workerId: 'w', heartbeatMs: 50, leaseMs: 5000, pollWaitMs: 200 });
      if (path.endsWith('/heartbeat')) {
        beats.push(JSON.parse(body));
        return send({ cancel: [] });
      }
      if (path.endsWith('/poll')) {
        if (handed) return setTimeout(() => send({ runs: [] }), 200);
        handed = true;
        return send({ runs: [run(1, 0)] });
      }
      // The log lines take a while: the report waits for them.
      if (path.endsWith('/logs')) return setTimeout(() => send({ stored: 1 }), 600);
      if (path.endsWith('/report')) {
        reported = true;
        return send({ results: [{ runId: 1, attempt: 1, ok: true }] });
      }
      send({});
    });
    let ended = 0;
    const worker = new Worker({ url, handleSignals: false, logger: recordingLogger([]) }).handle(
      'h',
      (ctx) => {
        ctx.log.info('a line');
        ended = beats.length;
        return null;
      },
    );
    await worker.start();
    await vi.waitFor(() => expect(reported).toBe(true), { timeout: 10_000, interval: 10 });
    const whileEnding = beats.slice(ended).filter((beat) => beat.polled !== undefined && beat.polled >= 1);
    await worker.stop();
    // Every heartbeat between the handler's end and the report listed the attempt.
    const before = whileEnding.slice(
      0,
      whileEnding.findIndex((beat) => beat.running.length === 0),
    );
    expect(before.length).toBeGreaterThan(0);
    for (const beat of before) expect(beat.running).toEqual([{ runId: 1, attempt: 1 }]);
  });
});
