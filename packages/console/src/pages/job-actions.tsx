import type { BackfillResponse, Job, Me } from '@kairos/client';
import { useState } from 'react';
import { api, can, errorText } from '../api.ts';
import { Confirm, Dialog, ErrorBox } from '../components.tsx';
import { fromLocalInput, time, toLocalInput } from '../format.ts';
import { navigate } from '../router.ts';

/** Pause/resume, trigger now with params, edit, clone, delete: operators and admins only. */
export function JobActions({ job, me, onChange }: { job: Job; me: Me; onChange: () => void }) {
  const [error, setError] = useState<unknown>();
  const [deleting, setDeleting] = useState(false);
  const [triggering, setTriggering] = useState(false);
  const [backfilling, setBackfilling] = useState(false);
  if (!can(me, 'operator')) return null;
  const run = async (action: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await action();
      onChange();
    } catch (e) {
      setError(e);
    }
  };
  const name = encodeURIComponent(job.name);
  return (
    <div className="actions">
      {job.paused ? (
        <button type="button" onClick={() => run(() => api.resumeJob(job.name))}>
          Resume
        </button>
      ) : (
        <button type="button" onClick={() => run(() => api.pauseJob(job.name))}>
          Pause
        </button>
      )}
      <button type="button" onClick={() => setTriggering(true)}>
        Trigger
      </button>
      {(job.trigger.kind === 'cron' || job.trigger.kind === 'every') && (
        <button type="button" onClick={() => setBackfilling(true)}>
          Backfill
        </button>
      )}
      <a className="button" href={`#/jobs/${name}/edit`}>
        Edit
      </a>
      <a className="button" href={`#/jobs/new?clone=${name}`}>
        Clone
      </a>
      <button type="button" className="danger" onClick={() => setDeleting(true)}>
        Delete
      </button>
      {error ? <ErrorBox error={error} /> : null}
      <Confirm
        open={deleting}
        title={`Delete ${job.name}?`}
        message="The job and all of its runs are deleted. This cannot be undone."
        confirmLabel="Delete job"
        onConfirm={() => run(() => api.deleteJob(job.name).then(() => navigate('/jobs')))}
        onClose={() => setDeleting(false)}
      />
      <TriggerDialog job={job} open={triggering} onClose={() => setTriggering(false)} />
      {backfilling && (
        <BackfillDialog
          job={job}
          onClose={() => {
            setBackfilling(false);
            onChange();
          }}
        />
      )}
    </div>
  );
}

function TriggerDialog({ job, open, onClose }: { job: Job; open: boolean; onClose: () => void }) {
  const [text, setText] = useState(JSON.stringify(job.params, null, 2));
  const [error, setError] = useState<string>();
  let parseError: string | undefined;
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      parseError = 'params must be a JSON object';
  } catch (e) {
    parseError = `not JSON: ${(e as Error).message}`;
  }
  const submit = async () => {
    try {
      const run = await api.triggerJob(job.name, { params: JSON.parse(text) });
      onClose();
      navigate(`/runs/${run.id}`);
    } catch (e) {
      setError(errorText(e));
    }
  };
  return (
    <Dialog title={`Trigger ${job.name} now`} open={open} onClose={onClose}>
      <label>
        Params (JSON)
        <textarea rows={6} value={text} onChange={(e) => setText(e.target.value)} spellCheck={false} />
      </label>
      {(parseError ?? error) && (
        <div className="error" role="alert">
          {parseError ?? error}
        </div>
      )}
      <div className="actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="primary" disabled={!!parseError} onClick={submit}>
          Trigger run
        </button>
      </div>
    </Dialog>
  );
}

/** Runs a job for each fire time of its trigger in a past range (POST /v1/jobs/:name/backfill). */
function BackfillDialog({ job, onClose }: { job: Job; onClose: () => void }) {
  const now = Date.now();
  const [from, setFrom] = useState(toLocalInput(new Date(now - 86_400_000).toISOString()));
  const [to, setTo] = useState(toLocalInput(new Date(now).toISOString()));
  const [max, setMax] = useState('100');
  const [overlap, setOverlap] = useState<'buffer-all' | 'allow'>('buffer-all');
  const [error, setError] = useState<string>();
  const [done, setDone] = useState<BackfillResponse>();
  const problem =
    !fromLocalInput(from) || !fromLocalInput(to)
      ? 'pick both ends of the range'
      : fromLocalInput(from) > fromLocalInput(to)
        ? 'the range ends before it starts'
        : !/^\d+$/.test(max) || Number(max) < 1 || Number(max) > 1000
          ? 'at most 1 to 1000 runs'
          : undefined;
  const submit = async () => {
    setError(undefined);
    try {
      setDone(
        await api.backfill(job.name, {
          from: fromLocalInput(from),
          to: fromLocalInput(to),
          max: Number(max),
          overlap,
        }),
      );
    } catch (e) {
      setError(errorText(e));
    }
  };
  return (
    <Dialog title={`Backfill ${job.name}`} open onClose={onClose}>
      {done ? (
        <>
          <p role="status">
            {done.runs.length} runs created, {done.existing.length} fire times already had a run
            {done.nextFrom ? `; more fires from ${time(done.nextFrom)} on (run it again from there)` : ''}.
          </p>
          <div className="actions">
            <button type="button" className="primary" onClick={onClose}>
              Close
            </button>
          </div>
        </>
      ) : (
        <>
          <p className="muted">
            One run for each fire time of its trigger in the range (local time), oldest first.
          </p>
          <label>
            From
            <input type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} />
          </label>
          <label>
            To
            <input type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} />
          </label>
          <label>
            At most
            <input value={max} inputMode="numeric" onChange={(e) => setMax(e.target.value)} />
          </label>
          <label>
            Runs
            <select value={overlap} onChange={(e) => setOverlap(e.target.value as 'buffer-all' | 'allow')}>
              <option value="buffer-all">one at a time, oldest first</option>
              <option value="allow">all at once</option>
            </select>
          </label>
          {(problem ?? error) && (
            <div className="error" role="alert">
              {problem ?? error}
            </div>
          )}
          <div className="actions">
            <button type="button" onClick={onClose}>
              Cancel
            </button>
            <button type="button" className="primary" disabled={!!problem} onClick={submit}>
              Create runs
            </button>
          </div>
        </>
      )}
    </Dialog>
  );
}
