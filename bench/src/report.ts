// The comparison's result file (JSON) and its Markdown table.
import { type CeilingResult, describeCeiling } from './ceiling.ts';
import type { ContestantInfo, Machine } from './environment.ts';
import { describeFailover, type FailoverResult } from './failover.ts';
import { type Figure, figures, type Summary } from './figures.ts';
import { type Source, stamp, type Written, writeResult } from './results.ts';
import type { ContestantRun, Sizes } from './run.ts';
import { describeScale, type ScaleResult } from './scale.ts';
import type { Spread } from './stats.ts';
import type { Phases } from './timings.ts';

/** Everything one `--all` (or `--only`) invocation measured. */
export interface ComparisonResult {
  date: string;
  quick: boolean;
  reps: number;
  /** Worker processes per scenario. */
  workers: number;
  sizes: Sizes;
  /** The contestants' order in each repetition and the seed it was drawn from (absent in older files,
   * whose repetition r started with the r-th contestant). */
  order?: { seed: number; reps: string[][] };
  /** The code measured (absent in older files). */
  source?: Source;
  machine: Machine;
  /** Per contestant, the settings of its database server, read from the live service before its first
   * run's teardown (older files: per server, read after every run, when BullMQ's AOF was off again). */
  services: Record<string, Record<string, string>>;
  contestants: ContestantInfo[];
  /** In the order they ran. */
  runs: ContestantRun[];
  summary: Record<string, Summary>;
  /** Sections run once: scheduler failover, 100,000 schedules, the store ceiling. */
  extras: {
    failover?: FailoverResult;
    scale?: ScaleResult;
    ceiling?: CeilingResult;
    errors?: string[];
    /** Wall time of each section and of its parts (see timings.ts). */
    phases?: Phases;
  };
  /** Wall time of the whole invocation. */
  seconds: number;
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 1 });

function format(value: number, unit: Figure['unit']): string {
  if (unit === 'jobs/s' || unit === 'count' || value >= 1000) return integer.format(value);
  return value < 10 ? value.toFixed(2) : decimal.format(value);
}

function cell(spread: Spread | undefined, unit: Figure['unit'], absent = '—'): string {
  if (!spread) return absent;
  const median = `**${format(spread.median, unit)}**`;
  if (spread.n === 1) return median;
  return `${median} (${format(spread.min, unit)}–${format(spread.max, unit)})`;
}

/** What a cell without a value says: why the figure is missing. */
function absent(result: ComparisonResult, name: string, figure: Figure): string {
  const mine = result.runs.filter((r) => r.contestant === name);
  const { scenario } = figure;
  const why = mine.find((r) => r.unsupported?.[scenario])?.unsupported?.[scenario];
  if (why) return `n/a (${why})`;
  const info = result.contestants.find((c) => c.name === name);
  if (figure.key.endsWith('.serverCpuMsPer1k') && info && !info.server) return 'n/a (embedded: in the node)';
  if (figure.key.endsWith('.nodeCpuMsPer1k') && info && !info.nodeInHarness)
    return 'n/a (no node: its workers use the store)';
  const crashes = mine.map((r) =>
    scenario === 'crash' ? r.crash : scenario === 'crash-tuned' ? r.crashTuned : undefined,
  );
  const crash = crashes.find((c) => c && !c.complete);
  if (crash) return `> ${crash.limitSeconds} (not within the limit)`;
  return '—';
}

/** The Markdown table: one row per figure, one column per contestant, "median (min–max)" per cell. */
export function markdownTable(result: ComparisonResult): string {
  const names = result.contestants.map((c) => c.name);
  const lines = [
    `| figure | ${result.contestants.map((c) => `${c.label} ${c.version}`).join(' | ')} |`,
    `|---|${names.map(() => '---:').join('|')}|`,
  ];
  for (const figure of figures(result.sizes.latencyRate, result.sizes.largeDrainJobs)) {
    const cells = names.map((n) =>
      cell(result.summary[n]?.figures[figure.key], figure.unit, absent(result, n, figure)),
    );
    lines.push(`| ${figure.label} | ${cells.join(' | ')} |`);
  }
  const integrity = names.map((n) => {
    const i = result.summary[n]?.integrity;
    if (!i) return '—';
    const notes = [`${i.missing} / ${i.duplicates}`];
    if (i.incomplete) notes.push(`${i.incomplete} incomplete`);
    if (i.errors) notes.push(`${i.errors} errors`);
    return notes.join(', ');
  });
  lines.push(`| jobs lost / run twice (all runs) | ${integrity.join(' | ')} |`);
  return lines.join('\n');
}

/** The once-only sections as preformatted text. */
function extrasText(result: ComparisonResult): string[] {
  const { failover, scale, ceiling, errors } = result.extras;
  const parts = [
    failover && describeFailover(failover),
    scale && describeScale(scale),
    ceiling && describeCeiling(ceiling),
    ...(errors ?? []).map((e) => `ERROR ${e}`),
  ].filter((part): part is string => typeof part === 'string');
  return parts.length ? ['```', ...parts, '```', ''] : [];
}

/** The whole Markdown report: table, then how it was measured. */
export function markdownReport(result: ComparisonResult): string {
  const m = result.machine;
  const out = [
    `# Kairos vs peers — ${result.date}${result.quick ? ' (quick)' : ''}`,
    '',
    `Median of ${result.reps} repetition(s), (min–max) when more than one. ${result.workers} worker process(es) per scenario.`,
    `Drain ${result.sizes.drainJobs} and ${result.sizes.largeDrainJobs ?? '—'} jobs; steady load ${result.sizes.steadySeconds} s; fixed rate ${result.sizes.latencyRate} jobs/s for ${result.sizes.latencySeconds} s; ${result.sizes.schedules} schedules for ${result.sizes.scheduleSeconds} s and a worker crash with ${result.sizes.crashJobs} jobs in flight (limit ${result.sizes.crashLimitSeconds} s), with defaults and with fast-recovery settings, in the first repetition only. Whole run: ${Math.round(result.seconds)} s.`,
    ...(result.order
      ? [
          `Contestant order per repetition (Latin square, seed ${result.order.seed}): ${result.order.reps.map((o) => o.join(', ')).join(' / ')}.`,
        ]
      : []),
    ...(result.source
      ? [`Code: ${result.source.commit}${result.source.dirty ? ' (with uncommitted changes)' : ''}.`]
      : []),
    '',
    markdownTable(result),
    '',
    ...extrasText(result),
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}.`,
    ...Object.entries(result.services).map(
      ([name, info]) =>
        `${name}'s service, before its teardown: ${Object.entries(info)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}.`,
    ),
    '',
    '## Contestants and settings',
    '',
  ];
  for (const c of result.contestants) {
    out.push(`- **${c.label} ${c.version}** on Node ${c.node}:`);
    for (const [key, value] of Object.entries(c.settings)) out.push(`  - ${key}: ${value}`);
    if (c.recovery) out.push(`  - recovery of a dead worker's jobs: ${c.recovery}`);
    if (c.fastRecovery) out.push(`  - fast-recovery settings (crash-tuned): ${c.fastRecovery}`);
  }
  const errors = result.runs.flatMap((r) => r.errors.map((e) => `- ${r.contestant} rep ${r.rep}: ${e}`));
  if (errors.length) out.push('', '## Errors', '', ...errors);
  return `${out.join('\n')}\n`;
}

/** Writes `bench/results/<stamp>.json` and `.md` (never over an existing file); returns their paths. */
export function writeComparison(result: ComparisonResult): Written {
  return writeResult(stamp(result.date) + (result.quick ? '-quick' : ''), result, markdownReport(result));
}
