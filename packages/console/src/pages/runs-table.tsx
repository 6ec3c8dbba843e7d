import type { RunSummary } from '@kairos/client';
import { StatusBadge } from '../components.tsx';
import { ago, duration, runDuration } from '../format.ts';
import { useWorkerNames } from '../hooks.ts';

export function RunsTable({ runs, showJob = true }: { runs: RunSummary[]; showJob?: boolean }) {
  const names = useWorkerNames();
  return (
    <table aria-label="Runs">
      <thead>
        <tr>
          <th>Run</th>
          {showJob && <th>Job</th>}
          <th>Status</th>
          <th>Cause</th>
          <th>Attempt</th>
          <th>Worker</th>
          <th>Created</th>
          <th>Duration</th>
        </tr>
      </thead>
      <tbody>
        {runs.map((run) => (
          <tr key={run.id} data-status={run.status}>
            <td>
              <a href={`#/runs/${run.id}`}>#{run.id}</a>
            </td>
            {showJob && (
              <td>
                <a href={`#/jobs/${encodeURIComponent(run.jobName)}`}>{run.jobName}</a>
              </td>
            )}
            <td>
              <StatusBadge status={run.status} />
            </td>
            <td>{run.cause}</td>
            <td>
              {run.attempt}/{run.maxAttempts}
            </td>
            <td className="clip" title={run.workerId ?? undefined}>
              {run.workerId ? (
                <a href={`#/runs?worker=${encodeURIComponent(run.workerId)}`}>
                  {names.get(run.workerId) ?? run.workerId}
                </a>
              ) : (
                '–'
              )}
            </td>
            <td>{ago(run.createdAt)}</td>
            <td>{duration(runDuration(run))}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
