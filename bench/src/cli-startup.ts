// `npm run bench:cli-startup`: what a `kairos` call costs before it does anything, the built CLI (what
// the published package's bin runs) against the TypeScript sources through tsx (what `npm run kairos`
// does in the workspace): `kairos --help`, and `kairos jobs list` against a node started for it (one
// HTTP request). Timed by hyperfine (`-N`, no shell; `--warmup 3 --runs N`), whose export the result
// file keeps with the code and the machine. Needs `hyperfine` on the PATH (Debian: `apt-get install
// hyperfine`) and the build (`npm install` makes it).
// Result: bench/results/cli-startup-<timestamp>.json.
//   node --import tsx --conditions=@kairos/source src/cli-startup.ts [--runs 30]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ADMIN_TOKEN, CLI, startNodeProcess } from './kairos-process.ts';
import { saveResult } from './results.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '30' } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 2)
  throw new Error(`--runs expects a whole number ≥ 2, got ${values.runs}`);

const built = fileURLToPath(new URL('../../packages/kairos/dist/cli/main.js', import.meta.url));
if (!existsSync(built)) throw new Error(`${built} is missing: build the packages first (npm install)`);

interface HyperfineRun {
  command: string;
  mean: number;
  stddev: number;
  min: number;
  max: number;
  user: number;
  system: number;
}

const dir = mkdtempSync(join(tmpdir(), 'kairos-cli-'));
const node = await startNodeProcess('cli', `sqlite:${join(dir, 'kairos.db')}`);
try {
  const tsx = `${process.execPath} --import tsx --conditions=@kairos/source ${CLI}`;
  const dist = `${process.execPath} ${built}`;
  const list = `--url ${node.url} --token ${ADMIN_TOKEN} jobs list`;
  const commands: Array<[string, string]> = [
    ['tsx: kairos --help', `${tsx} --help`],
    ['dist: kairos --help', `${dist} --help`],
    ['tsx: kairos jobs list', `${tsx} ${list}`],
    ['dist: kairos jobs list', `${dist} ${list}`],
  ];
  const exported = join(dir, 'hyperfine.json');
  execFileSync(
    'hyperfine',
    [
      '-N',
      '--warmup',
      '3',
      '--runs',
      String(runs),
      '--export-json',
      exported,
      ...commands.flatMap(([name, command]) => ['-n', name, command]),
    ],
    { stdio: 'inherit', cwd: fileURLToPath(new URL('../..', import.meta.url)) },
  );
  const hyperfine = JSON.parse(readFileSync(exported, 'utf8')) as { results: HyperfineRun[] };
  const ms = (s: number) => Math.round(s * 10_000) / 10;
  const lines = hyperfine.results.map(
    (r) =>
      `${r.command.padEnd(24)} wall ${ms(r.mean)} ± ${ms(r.stddev)} ms (min ${ms(r.min)}), CPU ${ms(r.user + r.system)} ms`,
  );
  console.log(lines.join('\n'));
  saveResult('cli-startup', { settings: { runs, warmup: 3 }, hyperfine });
} finally {
  node.child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
