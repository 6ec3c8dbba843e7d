import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startTestNode, tempDir } from './helpers.ts';
import { freePort, spawnKairos, waitFor } from './processes.ts';

/**
 * `kairos worker --url` takes every node of a cluster: a worker whose first node is down serves the
 * runs through the next one instead of retrying the dead one forever.
 */
describe('kairos worker with several node URLs', async () => {
  const { node, admin } = await startTestNode();
  const handlers = join(tempDir(), 'handlers.mjs');
  writeFileSync(handlers, 'export default { echo: async (ctx) => ({ echo: ctx.params }) };\n');
  await admin.createJob({ name: 'echo', handler: 'echo', trigger: { kind: 'manual' } });
  const dead = `http://127.0.0.1:${await freePort()}`;

  async function runsThrough(urlArgs: string[], urls: string[]): Promise<void> {
    const worker = spawnKairos(['worker', '--handlers', handlers, '--token', 'worker-t', ...urlArgs], {
      KAIROS_URL: '',
    });
    try {
      const run = await admin.triggerJob('echo', { params: { n: urlArgs.length } });
      const done = await waitFor(
        async () => {
          const current = await admin.getRun(run.id);
          return current.status === 'succeeded' && current;
        },
        60_000,
        `the run through ${urlArgs.join(' ')}\n${worker.output()}`,
      );
      expect(done.result).toEqual({ echo: { n: urlArgs.length } });
      expect(worker.output()).toContain(`connecting to ${urls.join(', ')} `);
    } finally {
      worker.process.kill('SIGTERM');
      await worker.exited;
    }
  }

  it('comma-separated, the first node down', async () => {
    await runsThrough(['--url', `${dead},${node.url}`], [dead, node.url]);
  });

  it('repeated, the last node down', async () => {
    await runsThrough(['--url', node.url, '--url', dead], [node.url, dead]);
  });
});
