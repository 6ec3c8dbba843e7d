import { join } from 'node:path';
import { KairosClient } from '@kairos/client';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { resolveConfig } from '../src/config.ts';
import { type KairosNode, startNode } from '../src/node.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../src/store/store.ts';
import { tempDir } from './helpers.ts';

// A poll that carries reports writes them beside its claim. When the write fails, the runs the poll
// claimed still reach the worker, and the answer has no results: the worker sends the reports again.

let node: KairosNode;
let admin: KairosClient;
let worker: KairosClient;
/** The next end of attempts fails, as a store whose write failed would. */
let failNextEnd = false;

beforeAll(async () => {
  const dir = tempDir();
  const store = new SqliteStore(join(dir, 'kairos.db'));
  const failing = new Proxy(store, {
    get(target, key, receiver) {
      if (key !== 'finishAttempts') return Reflect.get(target, key, receiver);
      return (...args: Parameters<Store['finishAttempts']>) => {
        if (!failNextEnd) return target.finishAttempts(...args);
        failNextEnd = false;
        return Promise.reject(new Error('the write failed'));
      };
    },
  }) as Store;
  const config = resolveConfig(
    // Polls may wait longer than a test may take: only the failed write can end the wait below.
    { port: 0, dataDir: dir, adminToken: 'admin-t', workerToken: 'worker-t', pollWait: '2m' },
    {},
  );
  node = await startNode(config, { logger: pino({ level: 'silent' }), store: failing });
  admin = new KairosClient({ url: node.url, token: 'admin-t' });
  worker = new KairosClient({ url: node.url, token: 'worker-t' });
});
afterAll(() => node.stop());

it('answers what the poll claimed, without the results of reports it could not write', async () => {
  await admin.createJob({ name: 'pr', handler: 'pr-h', trigger: { kind: 'manual' } });
  const first = await admin.triggerJob('pr');
  const { workerId } = await worker.register({ group: 'default', handlers: ['pr-h'], capacity: 2 });
  expect((await worker.poll(workerId, { max: 1, waitMs: 0 })).runs).toMatchObject([{ runId: first.id }]);
  const second = await admin.triggerJob('pr');
  const report = { runId: first.id, attempt: 1, outcome: 'succeeded' as const };

  failNextEnd = true;
  const answer = await worker.poll(workerId, { max: 1, waitMs: 0, reports: [report] });
  expect(answer).toEqual({
    runs: [expect.objectContaining({ runId: second.id, attempt: 1 })],
    nodeClock: expect.any(Object),
  });
  expect(await admin.getRun(first.id)).toMatchObject({ status: 'running', attempt: 1 });
  expect(await admin.getRun(second.id)).toMatchObject({ status: 'running', attempt: 1, workerId });

  // Sent again, on its own, it applies.
  expect((await worker.report(workerId, { reports: [report] })).results).toEqual([
    { runId: first.id, attempt: 1, ok: true },
  ]);
  expect(await admin.getRun(first.id)).toMatchObject({ status: 'succeeded' });
});

it('stops waiting when the reports fail: a poll with nothing to claim answers at once, not after its wait', async () => {
  await admin.createJob({ name: 'pw', handler: 'pw-h', trigger: { kind: 'manual' } });
  const run = await admin.triggerJob('pw');
  const { workerId } = await worker.register({ group: 'default', handlers: ['pw-h'], capacity: 1 });
  expect((await worker.poll(workerId, { max: 1, waitMs: 0 })).runs).toMatchObject([{ runId: run.id }]);

  failNextEnd = true;
  // A wait of two minutes, longer than this test may take (30 s): only the failed write ends it.
  const answer = await worker.poll(workerId, {
    max: 1,
    waitMs: 120_000,
    reports: [{ runId: run.id, attempt: 1, outcome: 'succeeded' }],
  });
  expect(answer).toEqual({ runs: [], nodeClock: expect.any(Object) });
  expect(await admin.getRun(run.id)).toMatchObject({ status: 'running' });
});
