import type { Job, Me, TriggerKind } from '@kairos/client';
import { useState } from 'react';
import { api, can } from '../api.ts';
import { Empty, ErrorBox } from '../components.tsx';
import { ago, dependencyVerb, time, triggerText } from '../format.ts';
import { usePoll } from '../hooks.ts';
import { href, navigate } from '../router.ts';
import { JobActions } from './job-actions.tsx';

const KINDS: TriggerKind[] = ['cron', 'every', 'delay', 'at', 'manual', 'after'];

/** Every job (read page by page), filtered here: a few thousand jobs are a few hundred kB. */
async function allJobs(group: string | undefined): Promise<Job[]> {
  const jobs: Job[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 20; page++) {
    const result = await api.listJobs({ group, limit: 500, cursor });
    jobs.push(...result.items);
    if (!result.nextCursor) break;
    cursor = result.nextCursor;
  }
  return jobs;
}

export function JobsPage({ me, query }: { me: Me; query: URLSearchParams }) {
  const group = query.get('group') ?? '';
  const status = query.get('status') ?? '';
  const kind = query.get('kind') ?? '';
  const [search, setSearch] = useState(query.get('q') ?? '');
  const jobs = usePoll(() => allJobs(group || undefined), [group], 2000);
  const set = (key: string, value: string) =>
    navigate(href('/jobs', { group, status, kind, q: search, [key]: value }).slice(1));

  const needle = search.trim().toLowerCase();
  const shown = (jobs.data ?? []).filter(
    (job) =>
      (!needle || `${job.name} ${job.handler} ${job.description}`.toLowerCase().includes(needle)) &&
      (!status || (status === 'paused') === job.paused) &&
      (!kind || job.trigger.kind === kind),
  );
  const groups = [...new Set((jobs.data ?? []).map((job) => job.group))].sort();

  return (
    <>
      <div className="page-head">
        <h1>Jobs</h1>
        {can(me, 'operator') && (
          <a className="button primary" href="#/jobs/new">
            New job
          </a>
        )}
      </div>
      <div className="filters">
        <input
          type="search"
          placeholder="Search name, handler, description"
          aria-label="Search jobs"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
        />
        <select aria-label="Group" value={group} onChange={(e) => set('group', e.target.value)}>
          <option value="">All groups</option>
          {[...new Set([...groups, ...(group ? [group] : [])])].map((g) => (
            <option key={g}>{g}</option>
          ))}
        </select>
        <select aria-label="Status" value={status} onChange={(e) => set('status', e.target.value)}>
          <option value="">Active and paused</option>
          <option value="active">Active</option>
          <option value="paused">Paused</option>
        </select>
        <select aria-label="Trigger kind" value={kind} onChange={(e) => set('kind', e.target.value)}>
          <option value="">All triggers</option>
          {KINDS.map((k) => (
            <option key={k}>{k}</option>
          ))}
        </select>
      </div>
      <ErrorBox error={jobs.error} />
      {jobs.data && shown.length === 0 && <Empty>No jobs match.</Empty>}
      {shown.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Group</th>
              <th>Handler</th>
              <th>Trigger</th>
              <th>Next fire</th>
              <th>Status</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {shown.map((job) => (
              <tr key={job.id}>
                <td>
                  <a href={`#/jobs/${encodeURIComponent(job.name)}`}>{job.name}</a>
                  {job.description && <div className="muted clip">{job.description}</div>}
                </td>
                <td>{job.group}</td>
                <td>
                  <code>{job.handler}</code>
                </td>
                <td>
                  <TriggerCell job={job} />
                </td>
                <td>
                  <NextFire job={job} />
                </td>
                <td>
                  <span className={`badge ${job.paused ? 'badge-cancelled' : 'badge-succeeded'}`}>
                    {job.paused ? 'paused' : 'active'}
                  </span>
                </td>
                <td>
                  <JobActions job={job} me={me} onChange={jobs.reload} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

/** The trigger; a dependency names its upstream job as a link. */
function TriggerCell({ job }: { job: Job }) {
  const trigger = job.trigger;
  if (trigger.kind !== 'after') return <>{triggerText(trigger)}</>;
  return (
    <>
      after <a href={`#/jobs/${encodeURIComponent(trigger.job)}`}>{trigger.job}</a>{' '}
      {dependencyVerb(trigger.on)}
    </>
  );
}

/** When the job fires next: a time and how far off; dependencies and manual jobs have no time of their own. */
function NextFire({ job }: { job: Job }) {
  if (job.paused) return <span className="muted">paused</span>;
  if (job.trigger.kind === 'after')
    return (
      <span className="muted">
        when {job.trigger.job} {dependencyVerb(job.trigger.on)}
      </span>
    );
  if (!job.nextFireAt)
    return <span className="muted">{job.trigger.kind === 'manual' ? 'on demand' : 'none'}</span>;
  return (
    <span>
      {time(job.nextFireAt)} <span className="muted">({ago(job.nextFireAt)})</span>
    </span>
  );
}
