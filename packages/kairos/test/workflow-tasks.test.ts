import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Json, JsonObject, Workflow, WorkflowInstance } from '@kairos/client';
import { workflowOf } from '@kairos/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../src/store/postgres/postgres-store.ts';
import { apiError, startTestNode, testWorker } from './helpers.ts';
import { waitFor } from './processes.ts';
import { testDatabaseUrl, testSchema } from './test-database.ts';

/**
 * Workflow task steps end to end (docs/workflows.md#task-steps): a shell step and an HTTP step run
 * on a real worker that enabled their kinds, never on one that did not, and their child receives
 * their results. On both dialects.
 */
describe.each(['sqlite', 'postgres'] as const)(
  'workflow task steps on real workers, on %s',
  async (dialect) => {
    const store =
      dialect === 'postgres'
        ? new PostgresStore({ connectionString: testDatabaseUrl(), schema: testSchema() })
        : undefined;
    const { node, admin } = await startTestNode(store ? { store } : {});
    /** The requests the local HTTP server received: method, path and body. */
    const received: Array<{ method: string; path: string; body: string }> = [];
    let server: Server;
    let serverUrl = '';

    beforeAll(async () => {
      server = createServer((request: IncomingMessage, response) => {
        let body = '';
        request.on('data', (chunk) => {
          body += chunk;
        });
        request.on('end', () => {
          received.push({ method: request.method ?? '', path: request.url ?? '', body });
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ received: JSON.parse(body || 'null') }));
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise((resolve) => server.close(resolve));
      await store?.close();
    });

    const instance = (id: number) => admin.request<WorkflowInstance>('GET', `/v1/workflow-instances/${id}`);
    const ended = (id: number) =>
      waitFor(
        async () => {
          const got = await instance(id);
          return got.state === 'running' ? undefined : got;
        },
        30_000,
        `instance ${id} to end`,
      );

    it('runs a shell step and an HTTP step on the worker that enabled them; their child receives their results', async () => {
      const group = `tasks-${dialect}`;
      const plain = testWorker(node, group).handle('collect', async (ctx) => {
        const { parents } = workflowOf(ctx)!;
        return { parents: parents as unknown as Json };
      });
      const tasks = testWorker(node, group, {
        tasks: { shell: true, http: { allow: [`${serverUrl}/hook`] } },
      });
      // The worker without tasks polls first: it never claims a task step's run.
      await plain.start();
      await tasks.start();
      try {
        const put = await admin.request<Workflow>('PUT', '/v1/workflows/tasks', {
          steps: [
            {
              id: 'dump',
              group,
              task: {
                kind: 'shell',
                command: 'sh',
                args: ['-c', 'echo "hello $WHO"'],
                env: { WHO: 'kairos' },
              },
            },
            {
              id: 'ping',
              group,
              task: { kind: 'http', method: 'POST', url: `${serverUrl}/hook`, body: '{"n":1}' },
            },
            { id: 'collect', handler: 'collect', group, after: ['dump', 'ping'] },
          ],
        });
        expect(put.steps[0]).toMatchObject({ id: 'dump', task: { kind: 'shell', command: 'sh' }, group });
        expect(put.steps[0]).not.toHaveProperty('handler');
        const started = await admin.request<WorkflowInstance>('POST', '/v1/workflows/tasks/instances', {});
        const done = await ended(started.id);
        expect(done.steps.map((s) => [s.id, s.state])).toEqual([
          ['dump', 'succeeded'],
          ['ping', 'succeeded'],
          ['collect', 'succeeded'],
        ]);
        expect(done.state).toBe('succeeded');
        const [dump, ping, collect] = await Promise.all(done.steps.map((s) => admin.getRun(s.runId!)));
        expect(dump).toMatchObject({ handler: 'kairos:shell', cause: 'workflow', workerId: tasks.id });
        expect(ping).toMatchObject({ handler: 'kairos:http', workerId: tasks.id });
        expect(collect).toMatchObject({ handler: 'collect', workerId: plain.id });
        expect((await admin.runLogs(dump!.id)).items.map((l) => l.message)).toContain('hello kairos');
        expect(received).toEqual([{ method: 'POST', path: '/hook', body: '{"n":1}' }]);
        expect(collect!.result).toEqual({
          parents: {
            dump: { runId: dump!.id, state: 'succeeded', result: { exitCode: 0 } },
            ping: {
              runId: ping!.id,
              state: 'succeeded',
              result: { status: 200, body: { received: { n: 1 } } },
            },
          },
        });
      } finally {
        await plain.stop();
        await tasks.stop();
      }
    });

    it('a failing command takes the failure edge; an invalid task or a task beside a handler is 400 INVALID_TASK', async () => {
      const group = `failing-${dialect}`;
      const seen: JsonObject[] = [];
      const worker = testWorker(node, group, { tasks: { shell: true } }).handle('page', async (ctx) => {
        seen.push(workflowOf(ctx)!.parents as unknown as JsonObject);
        return null;
      });
      await worker.start();
      try {
        await admin.request('PUT', '/v1/workflows/failing', {
          steps: [
            {
              id: 'dump',
              group,
              retry: { maxAttempts: 1 },
              task: { kind: 'shell', command: 'sh', args: ['-c', 'echo broken >&2; exit 3'] },
            },
            { id: 'page', handler: 'page', group, after: [{ step: 'dump', on: 'failure' }] },
          ],
        });
        const started = await admin.request<WorkflowInstance>('POST', '/v1/workflows/failing/instances', {});
        const done = await ended(started.id);
        expect(done.steps.map((s) => [s.id, s.state])).toEqual([
          ['dump', 'failed'],
          ['page', 'succeeded'],
        ]);
        expect(done.state).toBe('succeeded');
        expect(await admin.getRun(done.steps[0]!.runId!)).toMatchObject({
          status: 'failed',
          error: { name: 'CommandFailed', message: expect.stringContaining('broken') },
        });
        expect(seen).toEqual([{ dump: { runId: done.steps[0]!.runId, state: 'failed', result: null } }]);
      } finally {
        await worker.stop();
      }
      const put = (steps: unknown[]) => apiError(admin.request('PUT', '/v1/workflows/bad', { steps }));
      expect(await put([{ id: 'a', task: { kind: 'http', url: 'ftp://example.com/' } }])).toMatchObject({
        status: 400,
        code: 'INVALID_TASK',
        details: { field: 'steps[0].task.url' },
      });
      expect(await put([{ id: 'a', task: { kind: 'shell', command: 'ls', url: 'x' } }])).toMatchObject({
        status: 400,
        code: 'INVALID_TASK',
        details: { field: 'steps[0].task.url' },
      });
      expect(await put([{ id: 'a', handler: 'h', task: { kind: 'shell', command: 'ls' } }])).toMatchObject({
        status: 400,
        code: 'INVALID_TASK',
        details: { field: 'steps[0].handler' },
      });
      expect(await apiError(admin.request('GET', '/v1/workflows/bad'))).toMatchObject({ status: 404 });
    });
  },
);
