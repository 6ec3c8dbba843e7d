// `npm run bench`: Kairos alone on SQLite and PostgreSQL (drain and fixed-rate latency).
//   --store sqlite|postgres  one store only
//   --runs N (20000) --large-runs N (100000; 0: none) --concurrency N (200 worker slots) --rate N (200/s)
//   --seconds N (10 of latency); result in bench/results/kairos-<timestamp>.json
// `npm run bench -- --all`: Kairos against pg-boss, Graphile Worker and BullMQ, every scenario, 3 repetitions,
// contestants alternating; results in bench/results/<timestamp>.json and .md.
//   --only kairos,pg-boss   these contestants only (implies the comparison)
//   --reps N                repetitions (3)
//   --seed N                seed of the contestants' order per repetition (random; recorded in the result)
//   --scenarios drain,…     a subset of drain, large-drain, steady, latency, crash, crash-tuned, schedule
//                           (run in that order)
//   --extras failover,…     a subset of failover, scale, ceiling, run once after the contestants ('' for none)
//   --workers N             worker processes per scenario (1)
//   --quick                 small sizes, for development and CI (Kairos-only without --all/--only)
//   --help                  this text
// Method and settings: docs/benchmarks.md.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { compare, EXTRAS, type ExtraName } from './compare.ts';
import { CONTESTANTS } from './contestants/index.ts';
import { kairosOnly } from './legacy.ts';
import { newSeed } from './order.ts';
import { SCENARIOS, type ScenarioName } from './run.ts';

const { values: flags } = parseArgs({
  options: {
    all: { type: 'boolean', default: false },
    only: { type: 'string' },
    reps: { type: 'string', default: '3' },
    seed: { type: 'string' },
    quick: { type: 'boolean', default: false },
    workers: { type: 'string', default: '1' },
    scenarios: { type: 'string', default: SCENARIOS.join(',') },
    extras: { type: 'string', default: EXTRAS.join(',') },
    // The Kairos-only benchmark's knobs.
    store: { type: 'string', default: 'sqlite,postgres' },
    runs: { type: 'string', default: '20000' },
    'large-runs': { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '200' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (flags.help) {
  // The usage is this file's opening comment.
  const source = await readFile(new URL(import.meta.url), 'utf8');
  const usage = source.split('\n').filter((line) => line.startsWith('//'));
  console.log(usage.map((line) => line.replace(/^\/\/ ?/, '')).join('\n'));
  process.exit(0);
}

/** `value` as a whole number ≥ `min` (1), or an error naming the flag. */
function count(flag: string, value: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`--${flag} expects a whole number ≥ ${min}, got ${value}`);
  return n;
}

/** `value` as a seed: a whole number in [0, 2³²). */
function whole(flag: string, value: string): number {
  const n = count(flag, value, 0);
  if (n >= 2 ** 32) throw new Error(`--${flag} expects a whole number below 2^32, got ${value}`);
  return n;
}

const quick = flags.quick;
const workers = count('workers', flags.workers);
if (flags.all || flags.only) {
  const contestants = flags.only ? flags.only.split(',').map((s) => s.trim()) : CONTESTANTS;
  const unknown = contestants.filter((c) => !CONTESTANTS.includes(c));
  if (unknown.length)
    throw new Error(`unknown contestant(s) ${unknown.join(', ')}; known: ${CONTESTANTS.join(', ')}`);
  const scenarios = flags.scenarios.split(',').map((s) => s.trim()) as ScenarioName[];
  const wrong = scenarios.filter((s) => !SCENARIOS.includes(s));
  if (wrong.length)
    throw new Error(`unknown scenario(s) ${wrong.join(', ')}; known: ${SCENARIOS.join(', ')}`);
  const extras = flags.extras
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean) as ExtraName[];
  const strange = extras.filter((s) => !EXTRAS.includes(s));
  if (strange.length) throw new Error(`unknown extra(s) ${strange.join(', ')}; known: ${EXTRAS.join(', ')}`);
  await compare({
    extras,
    contestants,
    // Always in the order of SCENARIOS, whatever the order given.
    scenarios: SCENARIOS.filter((s) => scenarios.includes(s)),
    reps: count('reps', flags.reps),
    seed: flags.seed === undefined ? newSeed() : whole('seed', flags.seed),
    quick,
    workers,
    sizes: quick
      ? {
          drainJobs: 2000,
          largeDrainJobs: 5000,
          steadySeconds: 3,
          latencyRate: 200,
          latencySeconds: 3,
          schedules: 100,
          scheduleSeconds: 5,
          crashJobs: 100,
          crashLimitSeconds: 15,
        }
      : {
          drainJobs: 20_000,
          // Beside 20,000: a drain long enough that start-up weighs little (see drain.ts).
          largeDrainJobs: 100_000,
          // 10 s: 3,000 to 60,000 enqueue → start samples per contestant at their rates of 2026-12-06
          // (its p99 rests on the 30 to 600 slowest; see docs/benchmarks.md).
          steadySeconds: 10,
          latencyRate: 200,
          // 1,000 samples at 200/s: the p99 rests on the 10 slowest (see docs/benchmarks.md).
          latencySeconds: 5,
          schedules: 1000,
          // 30,000 fires of every-second schedules (the p99 rests on the 300 latest); a per-minute
          // window holds its minute 1–15 s after it opens and at least 15 s before it closes.
          scheduleSeconds: 30,
          crashJobs: 100,
          // Kairos's target is 7 s; the peers document 30 s (BullMQ) to hours, beyond this limit, and
          // recover in 5–11 s with their fast-recovery settings.
          crashLimitSeconds: 15,
        },
  });
} else {
  const stores = flags.store.split(',').map((s) => s.trim());
  for (const store of stores) {
    if (store !== 'sqlite' && store !== 'postgres')
      throw new Error(`--store expects sqlite, postgres or both, got ${store}`);
  }
  await kairosOnly({
    quick,
    stores: stores as ('sqlite' | 'postgres')[],
    workers,
    runs: quick ? 2000 : count('runs', flags.runs),
    largeRuns: quick ? 5000 : count('large-runs', flags['large-runs'], 0),
    concurrency: count('concurrency', flags.concurrency),
    rate: count('rate', flags.rate),
    seconds: quick ? 3 : count('seconds', flags.seconds),
  });
}
