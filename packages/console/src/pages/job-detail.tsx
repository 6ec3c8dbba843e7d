import type { Job, Me } from '@kairos/client';
import { useMemo } from 'react';
import type uPlot from 'uplot';
import { api } from '../api.ts';
import { Chart, COLORS } from '../chart.tsx';
import { Empty, ErrorBox, JsonView, Section } from '../components.tsx';
import { duration, resourcesText, time, timeIn, triggerText } from '../format.ts';
import { usePoll } from '../hooks.ts';
import { JobActions } from './job-actions.tsx';
import { RunsTable } from './runs-table.tsx';

export function JobDetailPage({ me, name }: { me: Me; name: string }) {
  const job = usePoll(() => api.getJob(name), [name]);
  const runs = usePoll(() => api.listRuns({ job: name, limit: 100 }), [name]);
  // The saved job's own preview: its calendars, window and DST rule included.
  const fires = usePoll(() => api.previewJob(name, 10), [name], 30_000);
  const skipped = usePoll(() => api.listSkipped(name, { limit: 20 }), [name], 5000);
  const j = job.data;
  const zone = j?.trigger.kind === 'cron' ? (j.trigger.timezone ?? 'UTC') : 'UTC';

  return (
    <>
      <div className="page-head">
        <h1>{name}</h1>
        {j && <JobActions job={j} me={me} onChange={job.reload} />}
      </div>
      <ErrorBox error={job.error} />
      {j && (
        <div className="two-columns">
          <Section title="Definition">
            <dl className="facts">
              <dt>Status</dt>
              <dd>{j.paused ? 'paused' : 'active'}</dd>
              <dt>Trigger</dt>
              <dd>{triggerText(j.trigger)}</dd>
              <dt>Group</dt>
              <dd>{j.group}</dd>
              <dt>Handler</dt>
              <dd>
                <code>{j.handler}</code>
              </dd>
              <dt>Retry</dt>
              <dd>
                {j.retry.maxAttempts} attempts, {j.retry.backoff} backoff from {duration(j.retry.delay)} to{' '}
                {duration(j.retry.maxDelay)}
              </dd>
              <dt>Timeout</dt>
              <dd>{duration(j.timeout)}</dd>
              <dt>Priority</dt>
              <dd>{j.priority}</dd>
              <dt>Schedule</dt>
              <dd>{scheduleText(j)}</dd>
              <dt>Routing</dt>
              <dd>
                {j.routing.strategy}
                {j.maxConcurrency !== null ? `, at most ${j.maxConcurrency} at once` : ''}
                {j.rateLimit ? `, ${j.rateLimit.limit} per ${duration(j.rateLimit.per)}` : ''}
              </dd>
              <dt>Resources per run</dt>
              <dd data-testid="job-resources">
                {j.resources ? resourcesText(j.resources) : 'none (a slot only)'}
              </dd>
              <dt>Retention</dt>
              <dd>
                {retentionText(j)} (<a href="#/settings/retention">the node's retention</a>)
              </dd>
              <dt>Description</dt>
              <dd>{j.description || '–'}</dd>
              <dt>Updated</dt>
              <dd>{time(j.updatedAt)}</dd>
            </dl>
            <h3>Params</h3>
            <JsonView value={j.params} />
          </Section>
          <Section title={`Next fires (${zone})`}>
            {fires.data && fires.data.fires.length === 0 && <Empty>No scheduled fires.</Empty>}
            <ol aria-label="Next fire times">
              {fires.data?.fires.map((f) => (
                <li key={f.fireTime}>
                  {timeIn(f.fireTime, zone)}
                  {f.note && <span className="muted"> ({f.note})</span>}
                </li>
              ))}
            </ol>
            {fires.data && fires.data.skipped.length > 0 && (
              <>
                <h3>Left out by a rule</h3>
                <ul aria-label="Previewed fires left out">
                  {fires.data.skipped.map((f) => (
                    <li key={f.fireTime}>
                      {timeIn(f.fireTime, zone)} <span className="muted">({f.reason})</span>
                    </li>
                  ))}
                </ul>
              </>
            )}
          </Section>
        </div>
      )}
      <Section title="Fires that did not run">
        <ErrorBox error={skipped.error} />
        {skipped.data && skipped.data.items.length === 0 && <Empty>Every fire became a run.</Empty>}
        {skipped.data && skipped.data.items.length > 0 && (
          <table aria-label="Skipped fires">
            <thead>
              <tr>
                <th>reason</th>
                <th>fire times</th>
                <th>count</th>
                <th>recorded</th>
              </tr>
            </thead>
            <tbody>
              {skipped.data.items.map((k) => (
                <tr key={k.id}>
                  <td>{k.reason}</td>
                  <td>
                    {timeIn(k.firstFireTime, zone)}
                    {k.lastFireTime !== k.firstFireTime ? ` … ${timeIn(k.lastFireTime, zone)}` : ''}
                  </td>
                  <td>{k.count ?? 'many'}</td>
                  <td>{time(k.recordedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      <Section title="Run duration">
        <DurationChart runs={runs.data?.items ?? []} />
      </Section>
      <Section
        title="Recent runs"
        actions={<a href={`#/runs?job=${encodeURIComponent(name)}`}>All runs →</a>}
      >
        <ErrorBox error={runs.error} />
        {runs.data && runs.data.items.length === 0 && <Empty>No runs yet.</Empty>}
        {runs.data && runs.data.items.length > 0 && <RunsTable runs={runs.data.items} showJob={false} />}
      </Section>
    </>
  );
}

function DurationChart({ runs }: { runs: Array<{ startedAt: string | null; finishedAt: string | null }> }) {
  const data = useMemo((): uPlot.AlignedData => {
    const points = runs
      .filter((r) => r.startedAt && r.finishedAt)
      .map(
        (r) =>
          [
            Date.parse(r.startedAt!) / 1000,
            (Date.parse(r.finishedAt!) - Date.parse(r.startedAt!)) / 1000,
          ] as const,
      )
      .sort((a, b) => a[0] - b[0]);
    return [points.map((p) => p[0]), points.map((p) => p[1])];
  }, [runs]);
  const options = useMemo(
    (): Omit<uPlot.Options, 'width' | 'height'> => ({
      scales: { x: { time: true } },
      series: [
        {},
        { label: 'duration (s)', stroke: COLORS.line, width: 1.5, points: { show: true, size: 5 } },
      ],
      axes: [{}, { label: 'seconds', size: 55 }],
    }),
    [],
  );
  return <Chart options={options} data={data} height={180} label="run durations" />;
}

/** The schedule policies that differ from the defaults, in words. */
export function retentionText(job: Job): string {
  const r = job.retention;
  const parts = [
    r.finished === null ? '' : `finished runs ${duration(r.finished)}`,
    r.failed === null ? '' : `failed runs ${duration(r.failed)}`,
    r.keepLast === null ? '' : `the last ${r.keepLast}`,
  ].filter(Boolean);
  return parts.length > 0 ? parts.join('; ') : "the node's default";
}

function scheduleText(job: Job): string {
  const s = job.schedule;
  const parts = [
    s.misfire.policy === 'skip' ? '' : `misfire: ${s.misfire.policy}`,
    s.overlap === 'allow' ? '' : `overlap: ${s.overlap}`,
    s.startAt ? `from ${time(s.startAt)}` : '',
    s.endAt ? `until ${time(s.endAt)}` : '',
    s.jitter ? `jitter up to ${duration(s.jitter)}` : '',
    s.maxRuns === null ? '' : `${job.runsFired} of ${s.maxRuns} runs`,
    s.calendars.length > 0 ? `calendars: ${s.calendars.join(', ')}` : '',
  ].filter(Boolean);
  return parts.length > 0 ? parts.join('; ') : 'defaults (misfire: skip, overlap: allow)';
}
