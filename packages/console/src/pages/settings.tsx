import type { Job, RetentionSettings } from '@kairos/client';
import { api } from '../api.ts';
import { Empty, ErrorBox, Section } from '../components.tsx';
import { ago, duration, time } from '../format.ts';
import { usePoll } from '../hooks.ts';
import { retentionText } from './job-detail.tsx';

/** The most jobs the page reads to list those with a retention of their own (one page of the API). */
const JOBS_READ = 500;

const TABLES: Array<[keyof RetentionSettings['pruner']['prunedSinceStart'], string]> = [
  ['runs', 'runs (with their attempts and log lines)'],
  ['run_logs', 'run log lines'],
  ['skipped_fires', 'skipped-fire ledger rows'],
  ['audit_log', 'audit entries'],
  ['workers', 'gone workers'],
  ['workflow_instances', 'ended workflow instances (with their steps)'],
  ['workflow_map_items', 'items of their map steps'],
];

/** Settings → Retention: the node's global retention and what its pruner did (docs/retention.md). */
export function RetentionSettingsPage() {
  const settings = usePoll(() => api.retentionSettings(), [], 5000);
  const jobs = usePoll(() => api.listJobs({ limit: JOBS_READ }), [], 0);
  const s = settings.data;
  const own = (jobs.data?.items ?? []).filter(hasOwnRetention);
  return (
    <>
      <h1>Settings · Retention</h1>
      <ErrorBox error={settings.error} />
      {s && (
        <div className="two-columns">
          <Section title="Kept (the node's configuration)">
            <dl className="facts" aria-label="Global retention">
              <dt>Pruning</dt>
              <dd data-testid="retention-enabled">
                {s.enabled
                  ? `every ${duration(s.intervalMs)}, ${s.batch} rows per delete`
                  : 'off (retentionInterval 0)'}
              </dd>
              <dt>Succeeded and cancelled runs</dt>
              <dd data-testid="retention-finished">{duration(s.keep.finishedMs)}</dd>
              <dt>Failed and timed-out runs</dt>
              <dd>{duration(s.keep.failedMs)}</dd>
              <dt>Run log lines</dt>
              <dd>{duration(s.keep.logsMs)}</dd>
              <dt>Skipped-fire ledger</dt>
              <dd>{duration(s.keep.skippedFiresMs)}</dd>
              <dt>Audit log</dt>
              <dd>{duration(s.keep.auditMs)}</dd>
              <dt>Stopped and lost workers</dt>
              <dd>{duration(s.keep.workersMs)}</dd>
            </dl>
          </Section>
          <Section title={`Pruner on node ${s.pruner.nodeId}`}>
            <dl className="facts" aria-label="Pruner">
              <dt>Last try</dt>
              <dd data-testid="pruner-last-try">
                {s.pruner.lastTryAt
                  ? `${ago(s.pruner.lastTryAt)}: ${s.pruner.heldLease ? 'this node prunes' : 'another node holds the retention lease'}`
                  : 'not yet'}
              </dd>
              <dt>Last cycle</dt>
              <dd>
                {s.pruner.lastCycle
                  ? `${time(s.pruner.lastCycle.endedAt)}, took ${duration(s.pruner.lastCycle.tookMs)}`
                  : 'none on this node'}
              </dd>
              <dt>Next cycle</dt>
              <dd>{s.pruner.nextCycleAt ? time(s.pruner.nextCycleAt) : '–'}</dd>
            </dl>
            <table aria-label="Rows pruned">
              <thead>
                <tr>
                  <th>Rows</th>
                  <th>Last cycle</th>
                  <th>Since this node started</th>
                </tr>
              </thead>
              <tbody>
                {TABLES.map(([kind, label]) => (
                  <tr key={kind}>
                    <td>{label}</td>
                    <td>{s.pruner.lastCycle ? s.pruner.lastCycle.pruned[kind] : '–'}</td>
                    <td>{s.pruner.prunedSinceStart[kind]}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Section>
        </div>
      )}
      <Section title="Jobs with a retention of their own">
        <ErrorBox error={jobs.error} />
        {jobs.data && own.length === 0 && <Empty>Every job keeps its runs as the node does.</Empty>}
        {own.length > 0 && (
          <ul aria-label="Jobs with their own retention">
            {own.map((job) => (
              <li key={job.name}>
                <a href={`#/jobs/${encodeURIComponent(job.name)}`}>{job.name}</a>: {retentionText(job)}
              </li>
            ))}
          </ul>
        )}
        {jobs.data?.nextCursor && <p className="muted">Of the first {JOBS_READ} jobs.</p>}
      </Section>
    </>
  );
}

function hasOwnRetention(job: Job): boolean {
  const r = job.retention;
  return r.finished !== null || r.failed !== null || r.keepLast !== null;
}
