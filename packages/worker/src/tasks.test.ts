import { createServer, type Server } from 'node:http';
import type { Assignment, TaskSpec, TraceContext } from '@kairos/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunContext, type RunContext } from './context.ts';
import { CancelledError, NonRetryableError } from './errors.ts';
import { httpHandler, underPrefix } from './http-task.ts';
import type { WorkerLogger } from './logger.ts';
import { alive, until } from './process-probe.ts';
import { shellHandler } from './shell.ts';
import { Worker } from './worker.ts';

const quiet: WorkerLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** A context for one attempt of a task, with its log lines collected. */
function contextFor(
  task: TaskSpec,
  signal = new AbortController().signal,
  trace: TraceContext | null = null,
) {
  const lines: Array<{ level: string; message: string }> = [];
  const assignment: Assignment = {
    runId: 1,
    attempt: 1,
    jobName: 'j',
    handler: `kairos:${task.kind}`,
    params: {},
    fireTime: null,
    timeout: 60_000,
    maxAttempts: 1,
    task,
  };
  const ctx: RunContext = createRunContext(
    assignment,
    { signal },
    Date.now(),
    quiet,
    {
      log: (entry) => lines.push({ level: entry.level, message: entry.message }),
      progress: () => {},
    },
    trace,
  );
  return { ctx, lines };
}

describe('shell tasks', () => {
  const shell = shellHandler({ allow: null, killGraceMs: 1000 });

  it('streams output as the run log and succeeds on exit code 0', async () => {
    process.env.KAIROS_WORKER_TOKEN_FOR_TEST = 'secret';
    const { ctx, lines } = contextFor({
      kind: 'shell',
      command: 'sh',
      args: ['-c', 'echo one; echo two >&2; echo "$GREETING$KAIROS_WORKER_TOKEN_FOR_TEST"'],
      env: { GREETING: 'hi' },
    });
    expect(await shell(ctx)).toEqual({ exitCode: 0 });
    // stdout and stderr are two pipes: each keeps its order, not their interleaving.
    expect(lines.filter((l) => l.level === 'info')).toEqual([
      { level: 'info', message: 'one' },
      { level: 'info', message: 'hi' },
    ]);
    expect(lines.filter((l) => l.level === 'warn')).toEqual([{ level: 'warn', message: 'two' }]);
    // The worker's KAIROS_* variables (its token) are not the command's.
    delete process.env.KAIROS_WORKER_TOKEN_FOR_TEST;
  });

  it("gives the command the attempt span's trace context as TRACEPARENT", async () => {
    const trace = { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` };
    const task = { kind: 'shell' as const, command: 'sh', args: ['-c', 'echo "[$TRACEPARENT]"'] };
    const traced = contextFor(task, undefined, trace);
    await shell(traced.ctx);
    expect(traced.lines).toEqual([{ level: 'info', message: `[${trace.traceparent}]` }]);
    const plain = contextFor(task);
    await shell(plain.ctx);
    expect(plain.lines).toEqual([{ level: 'info', message: '[]' }]);
  });

  it('fails on another exit code, with the end of stderr', async () => {
    const { ctx } = contextFor({ kind: 'shell', command: 'sh', args: ['-c', 'echo broken >&2; exit 3'] });
    const failure = await Promise.resolve(shell(ctx)).then(
      () => undefined,
      (error: Error) => error,
    );
    expect(failure?.name).toBe('CommandFailed');
    expect(failure?.message).toMatch(/\(exit code 3\):\nbroken$/);
  });

  it('a missing command or one not in the allow-list fails without retry', async () => {
    await expect(
      shell(contextFor({ kind: 'shell', command: '/no/such/program' }).ctx),
    ).rejects.toBeInstanceOf(NonRetryableError);
    const strict = shellHandler({ allow: ['/bin/true'], killGraceMs: 1000 });
    await expect(
      strict(contextFor({ kind: 'shell', command: 'sh', args: ['-c', 'true'] }).ctx),
    ).rejects.toThrow(/does not run the command/);
  });

  it('a cancel kills the whole process group, grandchildren that ignore SIGTERM included', async () => {
    const controller = new AbortController();
    // The command and one grandchild ignore SIGTERM (SIGKILL after the grace); another dies on it.
    const script = `trap "" TERM; sleep 300 & echo "pid $!"; sh -c 'trap "" TERM; echo "pid $$"; while :; do sleep 1; done' & wait`;
    const { ctx, lines } = contextFor(
      { kind: 'shell', command: 'sh', args: ['-c', script] },
      controller.signal,
    );
    const done = shell(ctx);
    await until(
      () => lines.filter((l) => l.message.startsWith('pid ')).length === 2,
      10_000,
      'both children',
    );
    const pids = lines.map((l) => Number(l.message.slice(4)));
    for (const pid of pids) expect(alive(pid)).toBe(true);
    const cancelledAt = Date.now();
    controller.abort(new CancelledError('cancelled'));
    await expect(done).rejects.toBeInstanceOf(CancelledError);
    // Grace 1 s, plus an honest second for the kill to land on a busy machine.
    await until(() => pids.every((pid) => !alive(pid)), 2000, 'the process group to die');
    const took = Date.now() - cancelledAt;
    expect(took).toBeGreaterThanOrEqual(900); // the SIGTERM was ignored: it took the SIGKILL
    expect(took).toBeLessThan(1000 + 1000);
  });

  it('what the command leaves running when it exits is killed with it', async () => {
    const { ctx, lines } = contextFor({
      kind: 'shell',
      command: 'sh',
      args: ['-c', 'sleep 300 & echo "pid $!"'],
    });
    expect(await shell(ctx)).toEqual({ exitCode: 0 });
    const pid = Number(lines[0]!.message.slice(4));
    await until(() => !alive(pid), 2000, 'the leftover child to die');
  });
});

describe('http tasks', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((request, response) => {
      if (request.url === '/trace') {
        const { traceparent, tracestate } = request.headers;
        response
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ traceparent, tracestate }));
      } else if (request.url === '/json') {
        response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      } else if (request.url === '/moved') {
        response.writeHead(302, { location: 'http://example.invalid/' }).end();
      } else {
        let body = '';
        request.on('data', (chunk) => {
          body += chunk;
        });
        request.on('end', () => response.writeHead(503).end(`${request.method} ${body}`));
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('calls an allowed URL and keeps the answer as the result', async () => {
    const http = httpHandler({ allow: [`${base}/`] });
    const { ctx, lines } = contextFor({ kind: 'http', url: `${base}/json` });
    expect(await http(ctx)).toEqual({ status: 200, body: { ok: true } });
    expect(lines[0]?.message).toMatch(/^GET .*\/json -> 200 in \d+ms$/);
  });

  it("passes the attempt span's trace context on as traceparent and tracestate", async () => {
    const http = httpHandler({ allow: [`${base}/`] });
    const trace = { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`, tracestate: 'k=v' };
    expect(await http(contextFor({ kind: 'http', url: `${base}/trace` }, undefined, trace).ctx)).toEqual({
      status: 200,
      body: trace,
    });
    expect(await http(contextFor({ kind: 'http', url: `${base}/trace` }).ctx)).toEqual({
      status: 200,
      body: {},
    });
  });

  it('fails on an unexpected status, and accepts an expected one', async () => {
    const http = httpHandler({ allow: [`${base}/`] });
    const post = { kind: 'http' as const, method: 'POST' as const, url: `${base}/other`, body: 'hello' };
    await expect(http(contextFor(post).ctx)).rejects.toMatchObject({
      name: 'UnexpectedStatus',
      message: expect.stringContaining('503: POST hello'),
    });
    expect(await http(contextFor({ ...post, expectStatus: [503] }).ctx)).toEqual({
      status: 503,
      body: 'POST hello',
    });
  });

  it('matches allow-list prefixes on path boundaries', () => {
    expect(underPrefix('https://a.example/v1', 'https://a.example/v1')).toBe(true);
    expect(underPrefix('https://a.example/v1/x', 'https://a.example/v1')).toBe(true);
    expect(underPrefix('https://a.example/v1?q=1', 'https://a.example/v1')).toBe(true);
    expect(underPrefix('https://a.example/v1evil', 'https://a.example/v1')).toBe(false);
    expect(underPrefix('https://a.example/anything', 'https://a.example/')).toBe(true);
  });

  it('refuses a URL outside the allow-list and does not follow redirects out of it', async () => {
    const http = httpHandler({ allow: [`${base}/json`, `${base}/moved`] });
    await expect(http(contextFor({ kind: 'http', url: `${base}/other` }).ctx)).rejects.toBeInstanceOf(
      NonRetryableError,
    );
    const tricky = httpHandler({ allow: ['http://127.0.0.1'] });
    await expect(
      tricky(contextFor({ kind: 'http', url: 'http://127.0.0.1.example.invalid/' }).ctx),
    ).rejects.toBeInstanceOf(NonRetryableError);
    await expect(http(contextFor({ kind: 'http', url: `${base}/moved` }).ctx)).rejects.toMatchObject({
      name: 'UnexpectedStatus',
    });
  });
});

describe('worker options for tasks', () => {
  const valid = { url: 'http://127.0.0.1:7070', handleSignals: false, logger: quiet };

  it('checks the tasks option and keeps kairos: names for built-in kinds', () => {
    expect(
      () => new Worker({ ...valid, tasks: { shell: true, http: { allow: ['https://api.example.com/'] } } }),
    ).not.toThrow();
    expect(() => new Worker({ ...valid, tasks: { http: { allow: [] } } })).toThrow(/tasks\.http\.allow/);
    expect(() => new Worker({ ...valid, tasks: { http: { allow: ['ftp://x'] } } })).toThrow(
      /tasks\.http\.allow\[0\]/,
    );
    expect(() => new Worker({ ...valid, tasks: { shell: 'yes' as never } })).toThrow(/tasks\.shell/);
    expect(() => new Worker({ ...valid, tasks: { ssh: true } as never })).toThrow(/tasks\.ssh/);
    expect(() => new Worker(valid).handle('kairos:shell', () => null)).toThrow(/built-in/);
  });
});
