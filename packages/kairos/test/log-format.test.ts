import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.ts';
import { freePort, spawnKairos, waitFor } from './processes.ts';

/** The log lines of a process's output: every line that is a JSON object. */
function jsonLines(output: string): Array<Record<string, unknown>> {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** One log format for node and worker: pino JSON lines with level names, ISO times and the pid. */
function expectKairosFormat(line: Record<string, unknown>): void {
  expect(Object.keys(line).slice(0, 3)).toEqual(['level', 'time', 'pid']);
  expect(['debug', 'info', 'warn', 'error', 'fatal']).toContain(line.level);
  expect(line.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  expect(typeof line.pid).toBe('number');
  expect(typeof line.msg).toBe('string');
}

describe('node and worker log in one format', async () => {
  const dataDir = tempDir();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = { KAIROS_ADMIN_TOKEN: 'admin-t', KAIROS_WORKER_TOKEN: 'worker-t', KAIROS_DATABASE_URL: '' };
  const node = spawnKairos(['server', '--port', String(port), '--data-dir', dataDir], env);
  await waitFor(async () => (await fetch(`${url}/livez`)).ok, 60_000, `the node\n${node.output()}`);

  it('pino JSON lines with the same fields, and a worker warning as the node would write it', async () => {
    const handlers = join(tempDir(), 'handlers.mjs');
    writeFileSync(handlers, 'export default { echo: async () => 1 };\n');
    const dead = `http://127.0.0.1:${await freePort()}`;
    const worker = spawnKairos(['worker', '--handlers', handlers, '--url', `${dead},${url}`], {
      ...env,
      KAIROS_WORKER_DEBUG: '1',
    });
    // The dead node first: the worker warns, moves on and registers with the live one.
    await waitFor(
      async () => jsonLines(worker.output()).some((line) => line.msg === 'reconnected to Kairos'),
      60_000,
      `the worker's lines\n${worker.output()}`,
    );
    worker.process.kill('SIGTERM');
    await worker.exited;
    node.process.kill('SIGTERM');
    await node.exited;

    const nodeLines = jsonLines(node.output());
    const workerLines = jsonLines(worker.output());
    expect(nodeLines.map((line) => line.msg)).toContain('kairos node started');
    for (const line of [...nodeLines, ...workerLines]) expectKairosFormat(line);
    const warning = workerLines.find((line) => line.msg === 'cannot reach Kairos; retrying with backoff');
    expect(warning).toMatchObject({ level: 'warn', url: dead, err: { name: expect.any(String) } });
    expect(warning?.err).not.toHaveProperty('type');
  });
});
