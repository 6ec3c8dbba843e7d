// `npm run chaos -- [--quick | --long | --latency | --sqlite] [--seed N] [--duration 120s] [--faults a,b]`:
// runs the system under test with the nemesis and checks the whole history (docs/reliability.md).
import { parseArgs } from 'node:util';
import { PROFILES, runChaos } from './chaos.ts';
import { FAULTS, type FaultKind } from './nemesis.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    long: { type: 'boolean' },
    sqlite: { type: 'boolean' },
    latency: { type: 'boolean' },
    seed: { type: 'string' },
    duration: { type: 'string' },
    faults: { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  console.log(`usage: npm run chaos -- [--quick | --long | --latency | --sqlite] [--seed N] [--duration 90s] [--faults kind,kind]
profiles: ${Object.entries(PROFILES)
    .map(
      ([name, p]) =>
        `\n  --${name}: ${p.store}, ${p.nodes} nodes, ${p.workers} workers, ${p.durationMs / 1000} s: ${p.faults.join(' ')}`,
    )
    .join('')}
faults: ${Object.keys(FAULTS).join(' ')}`);
  process.exit(0);
}
const name = values.long ? 'long' : values.latency ? 'latency' : values.sqlite ? 'sqlite' : 'quick';
const profile = { ...PROFILES[name]! };
if (values.duration) {
  const match = /^(\d+)(ms|s|m)?$/.exec(values.duration);
  if (!match) throw new Error(`--duration: expected a number with ms, s or m, got ${values.duration}`);
  profile.durationMs = Number(match[1]) * (match[2] === 'm' ? 60_000 : match[2] === 'ms' ? 1 : 1000);
}
if (values.faults) {
  const kinds = values.faults.split(',');
  for (const kind of kinds) if (!(kind in FAULTS)) throw new Error(`--faults: unknown fault ${kind}`);
  profile.faults = kinds as FaultKind[];
}
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isInteger(seed)) throw new Error(`--seed: expected a whole number, got ${values.seed}`);
const result = await runChaos(profile, seed);
console.log(result.report);
process.exit(result.verdict.ok ? 0 : 1);
