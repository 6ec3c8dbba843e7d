import type { MinuteStats } from '@kairos/client';
import { useMemo, useRef } from 'react';
import uPlot from 'uplot';
import { api } from '../api.ts';
import { Chart, COLORS } from '../chart.tsx';
import { Card, Empty, ErrorBox, Section, StatusBadge } from '../components.tsx';
import { ago } from '../format.ts';
import { usePoll } from '../hooks.ts';

const OUTCOMES = [
  { key: 'succeeded', label: 'succeeded', color: COLORS.succeeded },
  { key: 'failed', label: 'failed', color: COLORS.failed },
  { key: 'timedOut', label: 'timed out', color: COLORS.timedOut },
  { key: 'cancelled', label: 'cancelled', color: COLORS.cancelled },
] as const;

export function OverviewPage() {
  const overview = usePoll(() => api.overview(), []);
  const perMinute = usePoll(() => api.runsPerMinute(), [], 5000);
  const o = overview.data;

  return (
    <>
      <h1>Overview</h1>
      <ErrorBox error={overview.error ?? perMinute.error} />
      <div className="cards">
        <Card label="Running now" value={o?.running ?? '…'} />
        <Card label="Queued" value={o?.queued ?? '…'} />
        <Card
          label="Success rate"
          value={o ? (o.successRate === null ? '–' : `${(o.successRate * 100).toFixed(1)}%`) : '…'}
          hint={
            o
              ? `${o.lastHour.succeeded} ok · ${o.lastHour.failed + o.lastHour.timedOut} failed, last hour`
              : undefined
          }
        />
        <Card label="Workers online" value={o?.workersOnline ?? '…'} />
        <Card label="Nodes online" value={o?.nodesOnline ?? '…'} />
      </div>
      <Section title="Runs per minute, last hour">
        <RunsPerMinuteChart items={perMinute.data?.items ?? []} />
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

/** Stacked bars: each series is drawn as the running total up to it, tallest first. */
function RunsPerMinuteChart({ items }: { items: MinuteStats[] }) {
  // The legend shows each outcome's own count, not the running total the bars are drawn with.
  const counts = useRef<number[][]>([]);
  const data = useMemo((): uPlot.AlignedData => {
    const byMinute = new Map(items.map((m) => [Date.parse(m.minute) / 1000, m]));
    const end = Math.floor(Date.now() / 60_000) * 60;
    const xs: number[] = [];
    for (let t = end - 59 * 60; t <= end; t += 60) xs.push(t);
    const raw = OUTCOMES.map((o) => xs.map((x) => byMinute.get(x)?.[o.key] ?? 0));
    counts.current = [...raw].reverse();
    const stacked = raw.map((_, i) =>
      xs.map((__, j) => raw.slice(0, i + 1).reduce((sum, s) => sum + (s[j] ?? 0), 0)),
    );
    return [xs, ...stacked.reverse()];
  }, [items]);

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

  return <Chart options={options} data={data} label="runs per minute by outcome" />;
}

const barPaths = uPlot.paths.bars!({ size: [0.8, 40] });
