import type { MinuteStats } from '@kairos/client';
import { useMemo, useRef } from 'react';
import uPlot from 'uplot';
import { api } from '../api.ts';
import { Chart, COLORS } from '../chart.tsx';
import { Card, Empty, ErrorBox, Section, StatusBadge } from '../components.tsx';
import { ago, duration } from '../format.ts';
import { usePoll } from '../hooks.ts';
import { href, navigate } from '../router.ts';

const OUTCOMES = [
  { key: 'succeeded', label: 'succeeded', color: COLORS.succeeded },
  { key: 'failed', label: 'failed', color: COLORS.failed },
  { key: 'timedOut', label: 'timed out', color: COLORS.timedOut },
  { key: 'cancelled', label: 'cancelled', color: COLORS.cancelled },
] as const;

/**
 * The two windows of the overview. The day's chart uses 10-minute bars: 1,440 one-minute bars are
 * narrower than a pixel on a laptop screen. The node still answers by minute (at most 1,440 × 4
 * rows), and the page adds them up, so the API keeps one shape; the day view asks every 30 s.
 */
const WINDOWS = {
  '1h': { label: 'Last hour', words: 'last hour', minutes: 60, bucket: 1, pollMs: 5000 },
  '24h': { label: 'Last day', words: 'last day', minutes: 1440, bucket: 10, pollMs: 30_000 },
} as const;
type WindowKey = keyof typeof WINDOWS;

export function OverviewPage({ query }: { query: URLSearchParams }) {
  const win: WindowKey = query.get('window') === '24h' ? '24h' : '1h';
  const span = WINDOWS[win];
  const overview = usePoll(() => api.overview(win), [win]);
  // From the start of the chart's first bar: never further back than the node allows (24 h of its
  // clock), even when this browser's clock runs a little behind the node's.
  const perMinute = usePoll(
    () => api.runsPerMinute(new Date(bars(span.minutes, span.bucket)[0]! * 1000).toISOString()),
    [win],
    span.pollMs,
  );
  // A window switch shows "…" until the new window's answer, never the other window's numbers.
  const o = overview.data?.window === win ? overview.data : undefined;
  const lateness = o?.lateness;

  return (
    <>
      <div className="page-head">
        <h1>Overview</h1>
        <fieldset className="segmented" aria-label="Window">
          {(Object.keys(WINDOWS) as WindowKey[]).map((key) => (
            <button
              key={key}
              type="button"
              aria-pressed={key === win}
              className={key === win ? 'active' : ''}
              onClick={() => navigate(href('/overview', { window: key === '1h' ? '' : key }).slice(1))}
            >
              {WINDOWS[key].label}
            </button>
          ))}
        </fieldset>
      </div>
      <ErrorBox error={overview.error ?? perMinute.error} />
      <div className="cards">
        <Card label="Running now" value={o?.running ?? '…'} />
        <Card label="Queued" value={o?.queued ?? '…'} />
        <Card
          label="Success rate"
          value={o ? (o.successRate === null ? '–' : `${(o.successRate * 100).toFixed(1)}%`) : '…'}
          hint={
            o
              ? `${o.ended.succeeded} ok · ${o.ended.failed + o.ended.timedOut} failed, ${span.words}`
              : undefined
          }
        />
        <Card
          label="Fire lateness p50 / p99"
          value={
            lateness
              ? lateness.count === 0
                ? '–'
                : `${duration(lateness.p50Ms)} / ${duration(lateness.p99Ms)}`
              : '…'
          }
          hint={
            lateness
              ? lateness.count === 0
                ? `no scheduled run started, ${span.words}`
                : `${lateness.sampled ? 'newest ' : ''}${lateness.count} scheduled starts, ${span.words}`
              : undefined
          }
        />
        <Card label="Workers online" value={o?.workersOnline ?? '…'} />
        <Card label="Nodes online" value={o?.nodesOnline ?? '…'} />
      </div>
      <Section title={`Runs per ${span.bucket === 1 ? 'minute' : `${span.bucket} minutes`}, ${span.words}`}>
        <RunsPerMinuteChart items={perMinute.data?.items ?? []} minutes={span.minutes} bucket={span.bucket} />
      </Section>
      <Section title="Recent failures">
        {o && o.recentFailures.length === 0 && <Empty>No failed runs.</Empty>}
        {o && o.recentFailures.length > 0 && (
          <table>
            <thead>
              <tr>
                <th>Run</th>
                <th>Job</th>
                <th>Status</th>
                <th>Error</th>
                <th>Ended</th>
              </tr>
            </thead>
            <tbody>
              {o.recentFailures.map((run) => (
                <tr key={run.id}>
                  <td>
                    <a href={`#/runs/${run.id}`}>#{run.id}</a>
                  </td>
                  <td>
                    <a href={`#/jobs/${encodeURIComponent(run.jobName)}`}>{run.jobName}</a>
                  </td>
                  <td>
                    <StatusBadge status={run.status} />
                  </td>
                  <td className="clip">{run.error?.message}</td>
                  <td>{ago(run.finishedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
    </>
  );
}

/** The start of each bar (unix seconds) of the last `minutes`, `bucket` minutes a bar, the current one last. */
function bars(minutes: number, bucket: number): number[] {
  const step = bucket * 60;
  const end = Math.floor(Date.now() / 1000 / step) * step;
  const xs: number[] = [];
  for (let t = end - (minutes / bucket - 1) * step; t <= end; t += step) xs.push(t);
  return xs;
}

/**
 * Stacked bars of `minutes` back, `bucket` minutes a bar: each series is drawn as the running total
 * up to it, tallest first.
 */
function RunsPerMinuteChart({
  items,
  minutes,
  bucket,
}: {
  items: MinuteStats[];
  minutes: number;
  bucket: number;
}) {
  // The legend shows each outcome's own count, not the running total the bars are drawn with.
  const counts = useRef<number[][]>([]);
  const data = useMemo((): uPlot.AlignedData => {
    const step = bucket * 60;
    const xs = bars(minutes, bucket);
    const byBucket = new Map<number, number[]>();
    for (const m of items) {
      const x = Math.floor(Date.parse(m.minute) / 1000 / step) * step;
      const sums = byBucket.get(x) ?? OUTCOMES.map(() => 0);
      OUTCOMES.forEach((o, i) => {
        sums[i] = (sums[i] ?? 0) + m[o.key];
      });
      byBucket.set(x, sums);
    }
    const raw = OUTCOMES.map((_, i) => xs.map((x) => byBucket.get(x)?.[i] ?? 0));
    counts.current = [...raw].reverse();
    const stacked = raw.map((_, i) =>
      xs.map((__, j) => raw.slice(0, i + 1).reduce((sum, s) => sum + (s[j] ?? 0), 0)),
    );
    return [xs, ...stacked.reverse()];
  }, [items, minutes, bucket]);

  const options = useMemo(
    (): Omit<uPlot.Options, 'width' | 'height'> => ({
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      series: [
        {},
        ...[...OUTCOMES].reverse().map((o, k) => ({
          label: o.label,
          value: (_u: uPlot, _v: number | null, _series: number, index: number | null) =>
            index === null ? '–' : String(counts.current[k]?.[index] ?? 0),
          stroke: o.color,
          fill: o.color,
          width: 0,
          paths: barPaths,
          points: { show: false },
        })),
      ],
      axes: [{}, { label: 'runs', size: 50 }],
    }),
    [],
  );

  return <Chart options={options} data={data} label="runs over time by outcome" />;
}

const barPaths = uPlot.paths.bars!({ size: [0.8, 40] });
