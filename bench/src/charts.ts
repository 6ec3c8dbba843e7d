// `npm run bench:charts -w bench [-- results/<file>.json]`: SVG charts of a comparison result, rendered
// headlessly with Vega-Lite → Vega (no browser), into docs/images/bench-*.svg. Without an argument it
// takes the newest full (not --quick) comparison in bench/results/.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { type Figure, figures } from './figures.ts';
import type { ComparisonResult } from './report.ts';
import { BENCH_DIR } from './util.ts';

/** One bar or point: a contestant's median of one figure, with the min and max over repetitions. */
interface Datum {
  contestant: string;
  panel: string;
  figure: string;
  order: number;
  median: number;
  min: number;
  max: number;
}

const IMAGES = join(BENCH_DIR, '..', 'docs', 'images');

/** The newest full comparison result in bench/results/. */
function newestResult(): string {
  const dir = join(BENCH_DIR, 'results');
  const found = readdirSync(dir)
    .filter((f) => /^\d{4}-.*Z\.json$/.test(f))
    .sort();
  if (!found.length) throw new Error('no comparison result in bench/results; run npm run bench -- --all');
  return join(dir, found.at(-1)!);
}

/** The data points of `result`: for each figure that `panelOf` puts in a panel, one per contestant. */
function data(result: ComparisonResult, panelOf: (figure: Figure) => string | undefined): Datum[] {
  const rows: Datum[] = [];
  const all = figures(result.sizes.latencyRate, result.sizes.largeDrainJobs);
  for (const contestant of result.contestants) {
    all.forEach((figure, order) => {
      const panel = panelOf(figure);
      const spread = result.summary[contestant.name]?.figures[figure.key];
      if (!panel || !spread) return;
      const name = figure.key.split('.')[1]!;
      rows.push({ contestant: contestant.label, panel, figure: name, order, ...spread });
    });
  }
  return rows;
}

function caption(result: ComparisonResult): string {
  const m = result.machine;
  const reps = result.reps === 1 ? '1 repetition' : `median of ${result.reps} repetitions, whiskers min–max`;
  return `${reps}; ${m.cores} cores, ${m.cpu}; ${result.date.slice(0, 10)}`;
}

/** Throughput: one panel per figure, a bar per contestant with a min–max whisker. */
function throughputSpec(result: ComparisonResult): TopLevelSpec {
  const panels: Record<string, string> = {
    'drain.enqueuePerSecond': 'drain: enqueue (bulk API)',
    'drain.processPerSecond': 'drain: process',
    'largeDrain.processPerSecond': 'drain 100,000: process',
    'steady.enqueuePerSecond': 'steady: enqueue one by one',
    'steady.completedPerSecond': 'steady: completed',
  };
  const x = { field: 'contestant', type: 'nominal', title: null, sort: null } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Throughput (jobs/s, higher is better)', subtitle: caption(result) },
    data: { values: data(result, (f) => panels[f.key]) },
    facet: { column: { field: 'panel', type: 'nominal', title: null, sort: Object.values(panels) } },
    spec: {
      width: 150,
      height: 220,
      layer: [
        {
          mark: { type: 'bar', tooltip: true },
          encoding: {
            x,
            y: { field: 'median', type: 'quantitative', title: 'jobs/s' },
            color: { field: 'contestant', type: 'nominal', sort: null, legend: null },
          },
        },
        {
          mark: { type: 'rule' },
          encoding: { x, y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } },
        },
        {
          mark: { type: 'text', dy: -8, fontSize: 9 },
          encoding: {
            x,
            y: { field: 'max', type: 'quantitative' },
            text: { field: 'median', format: ',.0f' },
          },
        },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  };
}

/** Latency: percentiles on a log scale, one line per contestant, at the fixed rate and under steady load. */
function latencySpec(result: ComparisonResult): TopLevelSpec {
  const fixed = `${result.sizes.latencyRate} jobs/s fixed rate`;
  const panels: Record<string, string> = {
    latency: fixed,
    steady: 'steady load (each at its own top enqueue rate)',
    schedule: `${result.sizes.schedules} schedules: nominal fire → handler start`,
  };
  const rows = data(result, (f) => (f.unit === 'ms' ? panels[f.key.split('.')[0]!] : undefined)).filter(
    (d) => d.median > 0,
  );
  const x = {
    field: 'figure',
    type: 'ordinal',
    title: 'percentile',
    sort: ['p50', 'p95', 'p99', 'max'],
    axis: { labelAngle: 0 },
  } as const;
  const y = {
    type: 'quantitative',
    scale: { type: 'log' },
    title: 'ms (log scale, lower is better)',
  } as const;
  const color = { field: 'contestant', type: 'nominal', sort: null, title: null } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Latency percentiles', subtitle: caption(result) },
    data: { values: rows },
    facet: { column: { field: 'panel', type: 'nominal', title: null, sort: Object.values(panels) } },
    spec: {
      width: 260,
      height: 240,
      layer: [
        { mark: { type: 'line', point: true }, encoding: { x, y: { ...y, field: 'median' }, color } },
        {
          mark: { type: 'rule', opacity: 0.5 },
          encoding: { x, y: { ...y, field: 'min' }, y2: { field: 'max' }, color },
        },
      ],
    },
    resolve: { scale: { x: 'independent' } },
  };
}

/** Renders a Vega-Lite spec to an SVG string, without a browser. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

const file = process.argv[2] ? resolve(process.argv[2]) : newestResult();
const result = JSON.parse(readFileSync(file, 'utf8')) as ComparisonResult;
mkdirSync(IMAGES, { recursive: true });
for (const [name, spec] of [
  ['bench-throughput.svg', throughputSpec(result)],
  ['bench-latency.svg', latencySpec(result)],
] as const) {
  writeFileSync(join(IMAGES, name), await renderSvg(spec));
  console.log(`wrote docs/images/${name} from ${file}`);
}
