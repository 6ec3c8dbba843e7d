import type { Job, Me } from '@kairos/client';
import { useState } from 'react';
import { api, can, errorText } from '../api.ts';
import { Confirm, Dialog, ErrorBox } from '../components.tsx';
import { navigate } from '../router.ts';

/** Pause/resume, trigger now with params, edit, clone, delete: operators and admins only. */
export function JobActions({ job, me, onChange }: { job: Job; me: Me; onChange: () => void }) {
  const [error, setError] = useState<unknown>();
  const [deleting, setDeleting] = useState(false);
  const [triggering, setTriggering] = useState(false);
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
