import type { Attempt, Me, Run } from '@kairos/client';
import { useState } from 'react';
import { api, can } from '../api.ts';
import { Confirm, ErrorBox, JsonView, Section, StatusBadge } from '../components.tsx';
import { duration, FINAL, resourcesText, runDuration, time } from '../format.ts';
import { usePoll, useWorkerNames } from '../hooks.ts';
import { navigate } from '../router.ts';
import { LogTail } from './log-tail.tsx';

/** The reasons of a queued run's `waiting` that say no live worker can take it (core/queue-wait.ts). */
const UNPLACEABLE: ReadonlySet<string> = new Set([
  'no_live_worker_in_group',
  'no_live_worker_for_handler',
  'no_worker_with_resources',
]);

export function RunDetailPage({ me, id }: { me: Me; id: number }) {
  const run = usePoll(() => api.getRun(id), [id], 1000);
  const [error, setError] = useState<unknown>();
  const [cancelling, setCancelling] = useState(false);
  const r = run.data;
  const ended = r ? FINAL.includes(r.status) : false;

  const act = async (action: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await action();
      run.reload();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <>
      <div className="page-head">
        <h1>
          Run #{id} {r && <StatusBadge status={r.status} />}
        </h1>
        {r && can(me, 'operator') && (
          <div className="actions">
            {!ended && (
              <button type="button" className="danger" onClick={() => setCancelling(true)}>
                Cancel run
              </button>
            )}
            <button
              type="button"
              onClick={() => act(async () => navigate(`/runs/${(await api.retryRun(id)).id}`))}
            >
              Retry
            </button>
          </div>
        )}
      </div>
      <ErrorBox error={run.error ?? error} />
      <Confirm
        open={cancelling}
        title={`Cancel run #${id}?`}
        message="A running attempt is told to stop at its worker's next heartbeat."
        confirmLabel="Cancel run"
        onConfirm={() => act(() => api.cancelRun(id))}
        onClose={() => setCancelling(false)}
      />
      {r && (
        <>
          <div className="two-columns">
            <Section title="Run">
              <dl className="facts">
                <dt>Job</dt>
                <dd>
                  <a href={`#/jobs/${encodeURIComponent(r.jobName)}`}>{r.jobName}</a>
                </dd>
                <dt>Status</dt>
                <dd data-testid="run-status">{r.status}</dd>
                {r.waiting && (
                  <>
                    <dt>Waiting</dt>
                    <dd
                      data-testid="run-waiting"
                      data-reason={r.waiting.reason}
                      title={r.waiting.reason}
                      className={UNPLACEABLE.has(r.waiting.reason) ? 'error' : undefined}
                    >
                      {UNPLACEABLE.has(r.waiting.reason) && <strong>No live worker can take it: </strong>}
                      {r.waiting.message}
                      {r.waiting.resources && (
                        <div data-testid="run-missing">
                          Missing on the largest worker: {resourcesText(r.waiting.resources.missing)}
                        </div>
                      )}
                    </dd>
                  </>
                )}
                <dt>Resources</dt>
                <dd data-testid="run-resources">
                  {r.resources ? resourcesText(r.resources) : 'none (a slot only)'}
                </dd>
                <dt>Cause</dt>
                <dd>{r.cause}</dd>
                <dt>Fire time</dt>
                <dd>{time(r.fireTime)}</dd>
                <dt>Attempt</dt>
                <dd>
                  {r.attempt} of {r.maxAttempts}
                </dd>
                <dt>Group / handler</dt>
                <dd>
                  {r.group} / <code>{r.handler}</code>
                </dd>
                <dt>Created</dt>
                <dd>{time(r.createdAt)}</dd>
                <dt>Started</dt>
                <dd>{time(r.startedAt)}</dd>
                <dt>Finished</dt>
                <dd>{time(r.finishedAt)}</dd>
                <dt>Duration</dt>
                <dd>{duration(runDuration(r))}</dd>
              </dl>
            </Section>
            <Section title="Params">
              <JsonView value={r.params} />
              <h3>{r.error ? 'Error' : 'Result'}</h3>
              {!ended && !r.error ? (
                <p className="muted">Not finished yet.</p>
              ) : r.error ? (
                <div className="run-error">
                  <strong>{r.error.name}</strong>: {r.error.message}
                  {r.error.stack && <pre>{r.error.stack}</pre>}
                </div>
              ) : (
                <JsonView value={r.result} />
              )}
            </Section>
          </div>
          <Section title="Attempts">
            <Timeline run={r} />
          </Section>
          <Section title="Log">
            <LogTail runId={id} />
          </Section>
        </>
      )}
    </>
  );
}

/** One bar per attempt on a shared time axis, with its worker and why it ended. */
function Timeline({ run }: { run: Run }) {
  const names = useWorkerNames();
  const attempts: Attempt[] = run.attempts ?? [];
  if (attempts.length === 0)
    return <p className="muted">Not started yet (queued since {time(run.createdAt)}).</p>;
  const start = Date.parse(run.createdAt);
  const end = Math.max(
    Date.now() > start && !run.finishedAt ? Date.now() : 0,
    ...attempts.map((a) => (a.finishedAt ? Date.parse(a.finishedAt) : Date.now())),
    start + 1,
  );
  const span = end - start;
  return (
    <ol className="timeline" aria-label="Attempts">
      {attempts.map((a) => {
        const from = Date.parse(a.startedAt);
        const to = a.finishedAt ? Date.parse(a.finishedAt) : Date.now();
        return (
          <li key={a.attempt}>
            <div className="timeline-label">
              <strong>#{a.attempt}</strong> <StatusBadge status={a.status} /> on{' '}
              <code title={a.workerId}>{names.get(a.workerId) ?? a.workerId}</code> · {time(a.startedAt)} ·{' '}
              {duration(to - from)}
              {a.error && (
                <span className="muted">
                  {' '}
                  — {a.error.name}: {a.error.message}
                </span>
              )}
              {a.lateReport && (
                <div className="error">
                  Ran on after it was fenced out: the worker reported <strong>{a.lateReport.outcome}</strong>{' '}
                  at {time(a.lateReport.reportedAt)}
                  {a.lateReport.error ? ` (${a.lateReport.error.name}: ${a.lateReport.error.message})` : ''}.
                  This run executed more than once.
                </div>
              )}
            </div>
            <div className="timeline-track">
              <div
                className={`timeline-bar badge-${a.status}`}
                style={{
                  left: `${((from - start) / span) * 100}%`,
                  width: `${Math.max(0.5, ((to - from) / span) * 100)}%`,
                }}
              />
            </div>
          </li>
        );
      })}
    </ol>
  );
}
