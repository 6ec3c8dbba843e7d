import { KairosClient } from '@kairos/client';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { resolveConfig } from '../src/config.ts';
import { type KairosNode, startNode } from '../src/node.ts';
import { tempDir } from './helpers.ts';

// On SQLite a trigger that finds the worker's long poll waiting hands it the run itself: the
// trigger's answer is the run running on that worker, and the poll answers it (the node wires its
// dispatcher into the trigger route; see Store.triggerRun).

let node: KairosNode;
let admin: KairosClient;
let worker: KairosClient;

beforeAll(async () => {
  const dir = tempDir();
  const config = resolveConfig(
    { port: 0, dataDir: dir, adminToken: 'admin-t', workerToken: 'worker-t', pollWait: '1m' },
    {},
  );
  node = await startNode(config, { logger: pino({ level: 'silent' }) });
  admin = new KairosClient({ url: node.url, token: 'admin-t' });
  worker = new KairosClient({ url: node.url, token: 'worker-t' });
});
afterAll(() => node.stop());

it('a trigger while the worker`s poll waits answers the run running on that worker; the poll answers it', async () => {
  await admin.createJob({ name: 'ho', handler: 'ho-h', trigger: { kind: 'manual' } });
  const { workerId } = await worker.register({ group: 'default', handlers: ['ho-h'], capacity: 1 });
  // A trigger that comes before the poll waits is claimed by the poll's own claim: try again, the
  // poll given longer each time to reach its wait.
  for (let attempt = 1; ; attempt++) {
    const poll = worker.poll(workerId, { max: 1, waitMs: 60_000 });
    await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
    const run = await admin.triggerJob('ho');
    const answer = await poll;
    expect(answer.runs.map((a) => a.runId)).toEqual([run.id]);
    await worker.report(workerId, { reports: [{ runId: run.id, attempt: 1, outcome: 'succeeded' }] });
    if (run.status === 'running') {
      expect(run).toMatchObject({ workerId, attempt: 1 });
      expect(await admin.getRun(run.id)).toMatchObject({ status: 'succeeded', workerId });
      return;
    }
    if (attempt >= 30) throw new Error('no trigger in 30 found the poll waiting');
  }
}, 60_000);
