// `npm run bench:profile -w bench -- <file.cpuprofile> [--top N] [--window FUNCTION]`: what a V8 CPU
// profile (`node --cpu-prof`, or BENCH_NODE_ARGS / BENCH_CHILD_ARGS of the harness) spent its busy
// time on, as self time by source (package, Node.js internal module, or file) and by function. With
// `--window`, only the samples between the first and the last that were in FUNCTION (e.g.
// `finishAttempts`: the drain, without the start-up). Idle samples are left out. A sample counts where
// the thread was when the profiler looked, which includes waiting for the core inside a system call
// (a socket write on a busy machine).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '40' }, window: { type: 'string' } },
});
const file = positionals[0];
if (!file) throw new Error('usage: profile-summary <file.cpuprofile> [--top N] [--window FUNCTION]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const frame = (sample: number) => byId.get(sample)!.callFrame;

let from = 0;
let to = profile.samples.length;
if (values.window) {
  const hits = profile.samples.flatMap((id, i) => (frame(id).functionName === values.window ? [i] : []));
  if (hits.length === 0) throw new Error(`no sample in ${values.window}`);
  from = hits[0]!;
  to = hits[hits.length - 1]! + 1;
}

/** `node_modules/x/…` → `x`, `…/packages/p/…` → `p/…`, else the URL (or the native function's name). */
function source(url: string, name: string): string {
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const parts = url.slice(modules + 'node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  const packages = url.lastIndexOf('/packages/');
  if (packages >= 0) return url.slice(packages + '/packages/'.length);
  return url.replace(/^file:\/\//, '') || name;
}

let busy = 0;
let windowUs = 0;
const bySource = new Map<string, number>();
const byFunction = new Map<string, number>();
for (let i = from; i < to; i++) {
  const us = profile.timeDeltas[i] ?? 0;
  windowUs += us;
  const { functionName, url, lineNumber } = frame(profile.samples[i]!);
  if (functionName === '(idle)') continue;
  busy += us;
  const where = source(url, functionName);
  bySource.set(where, (bySource.get(where) ?? 0) + us);
  const fn = url ? `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}` : functionName;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
}

const top = Number(values.top);
const share = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)} %`;
console.log(`${file}${values.window ? ` (window: ${values.window})` : ''}`);
console.log(`window ${(windowUs / 1000).toFixed(0)} ms, busy ${(busy / 1000).toFixed(0)} ms`);
console.log('\nself time by source');
for (const [name, us] of [...bySource].sort((a, b) => b[1] - a[1]).slice(0, top))
  console.log(`${share(us)}  ${name}`);
console.log('\nself time by function');
for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top))
  console.log(`${share(us)}  ${name}`);
