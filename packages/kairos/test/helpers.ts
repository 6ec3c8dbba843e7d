import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KairosApiError, KairosClient } from '@kairos/client';
import { Worker, type WorkerOptions } from '@kairos/worker';
import pino from 'pino';
import { afterAll, expect } from 'vitest';
import { type KairosOptions, resolveConfig } from '../src/config.ts';
import { type KairosNode, type NodeDependencies, startNode } from '../src/node.ts';

/** A fresh temporary folder, removed when the test file ends. */
export function tempDir(prefix = 'kairos-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The API error a call failed with; fails the test when the call succeeded or failed otherwise. */
export async function apiError(promise: Promise<unknown>): Promise<KairosApiError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KairosApiError);
  return error as KairosApiError;
}

/** An in-process node on a fresh SQLite folder with the tokens `admin-t` and `worker-t`, stopped after the file. */
export async function startTestNode(
  dependencies: Partial<NodeDependencies> = {},
  options: KairosOptions = {},
): Promise<{ node: KairosNode; admin: KairosClient; workerClient: KairosClient }> {
  const config = resolveConfig(
    { port: 0, dataDir: tempDir(), adminToken: 'admin-t', workerToken: 'worker-t', ...options },
    {},
  );
  const node = await startNode(config, { logger: pino({ level: 'silent' }), ...dependencies });
  afterAll(() => node.stop());
  return {
    node,
    admin: new KairosClient({ url: node.url, token: 'admin-t' }),
    workerClient: new KairosClient({ url: node.url, token: 'worker-t' }),
  };
}

/** An in-process SDK worker of a test node (token `worker-t`), 2 slots, quiet, signals left alone. */
export function testWorker(node: KairosNode, group: string, options: Partial<WorkerOptions> = {}): Worker {
  return new Worker({
    url: node.url,
    token: 'worker-t',
    group,
    concurrency: 2,
    handleSignals: false,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    ...options,
  });
}
