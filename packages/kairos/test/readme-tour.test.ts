import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.ts';
import { freePort, spawnKairos, waitFor } from './processes.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The ```sh blocks of the README's "A 5-minute tour", up to its first subsection. */
export function tourBlocks(readme: string): string[] {
  const start = readme.indexOf('## A 5-minute tour');
  if (start < 0) throw new Error('README has no "A 5-minute tour" section');
  const rest = readme.slice(start + 1);
  const end = rest.search(/\n##+ /);
  const section = end < 0 ? rest : rest.slice(0, end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/**
 * A block as a script against the test's node: `npm run kairos --` runs the repo's own `kairos`
 * script (so the test follows wherever the CLI moves), the README's URL is the node's, and curl
 * fails on an HTTP error as the CLI does.
 */
function translate(block: string, url: string): string {
  return block
    .replace(/npm run (-s |--silent )?kairos --/g, `npm --prefix "${ROOT}" run -s kairos --`)
    .replaceAll('http://127.0.0.1:7070', url)
    .replace(/\bcurl -s\b/g, 'curl -s --fail-with-body');
}

/** Every shell line of the README's tour runs, as written, against a demo node: the README cannot rot. */
describe('the README tour', async () => {
  const blocks = tourBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));
  const home = tempDir();
  const dataDir = join(home, '.kairos');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const node = spawnKairos(['start', '--demo', '--port', String(port), '--data-dir', dataDir], {
    KAIROS_URL: '',
    KAIROS_TOKEN: '',
    KAIROS_ADMIN_TOKEN: '',
    KAIROS_WORKER_TOKEN: '',
    KAIROS_DATABASE_URL: '',
  });
  await waitFor(
    async () => node.output().includes('Press Ctrl+C'),
    120_000,
    `the demo node\n${node.output()}`,
  );

  it('has the blocks to run', () => {
    expect(blocks.length).toBe(2);
    expect(blocks.join('\n')).toContain('npm run kairos -- jobs list');
  });

  // Each line starts a CLI process (about a second or more on a busy machine): minutes, not seconds.
  it.each(blocks.map((block, i) => [i + 1, block] as const))(
    'block %i runs without an error',
    async (_, block) => {
      const script = `set -euo pipefail\n${translate(block, url)}`;
      const done = await new Promise<{ code: number | string | null; output: string }>((resolve) => {
        execFile(
          'bash',
          ['-c', script],
          {
            cwd: home,
            env: { ...process.env, KAIROS_URL: url, KAIROS_DATA_DIR: dataDir, KAIROS_TOKEN: '' },
            maxBuffer: 16 * 1024 * 1024,
          },
          (error, stdout, stderr) =>
            resolve({ code: error ? (error.code ?? error.signal ?? 1) : 0, output: `${stdout}\n${stderr}` }),
        );
      });
      expect(done.code, `the block failed; its output ends with:\n${done.output.slice(-4000)}`).toBe(0);
    },
    600_000,
  );
});
