import type { FirePreview, Job, JobSpec, JsonObject, Me, TriggerKind, TriggerSpec } from '@kairos/client';
import {
  type FormEvent,
  type InputHTMLAttributes,
  type ReactNode,
  useEffect,
  useMemo,
  useState,
} from 'react';
import { api, can, errorText } from '../api.ts';
import { ErrorBox } from '../components.tsx';
import { timeIn } from '../format.ts';
import { useDebounced } from '../hooks.ts';
import { navigate } from '../router.ts';

/** The form's fields, all as typed (strings), so that validation can explain every keystroke. */
interface Fields {
  name: string;
  description: string;
  group: string;
  handler: string;
  kind: TriggerKind;
  cron: string;
  timezone: string;
  every: string;
  startAt: string;
  delay: string;
  at: string;
  parent: string;
  on: 'success' | 'failure' | 'always';
  params: string;
  maxAttempts: string;
  timeout: string;
  priority: string;
  paused: boolean;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const HANDLER = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;
const DURATION = /^\d+(\.\d+)?(ms|s|m|h|d)?$/;

const EMPTY: Fields = {
  name: '',
  description: '',
  group: 'default',
  handler: '',
  kind: 'cron',
  cron: '*/10 * * * * *',
  timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC',
  every: '30s',
  startAt: '',
  delay: '1m',
  at: '',
  parent: '',
  on: 'success',
  params: '{}',
  maxAttempts: '3',
  timeout: '5m',
  priority: '0',
  paused: false,
};

function fromJob(job: Job, name: string): Fields {
  const t = job.trigger;
  return {
    ...EMPTY,
    name,
    description: job.description,
    group: job.group,
    handler: job.handler,
    kind: t.kind,
    cron: t.kind === 'cron' ? t.cron : EMPTY.cron,
    timezone: t.kind === 'cron' ? (t.timezone ?? 'UTC') : EMPTY.timezone,
    every: t.kind === 'every' ? String(t.every) : EMPTY.every,
    startAt: t.kind === 'every' ? (t.startAt ?? '') : '',
    delay: t.kind === 'delay' ? String(t.delay) : EMPTY.delay,
    at: t.kind === 'at' ? t.at : '',
    parent: t.kind === 'after' ? t.job : '',
    on: t.kind === 'after' ? (t.on ?? 'success') : 'success',
    params: JSON.stringify(job.params, null, 2),
    maxAttempts: String(job.retry.maxAttempts),
    timeout: String(job.timeout),
    priority: String(job.priority),
    paused: job.paused,
  };
}

function durationOf(text: string): string | number {
  return /^\d+$/.test(text) ? Number(text) : text;
}

function triggerOf(f: Fields): TriggerSpec {
  switch (f.kind) {
    case 'cron':
      return { kind: 'cron', cron: f.cron, timezone: f.timezone || 'UTC' };
    case 'every':
      return f.startAt
        ? { kind: 'every', every: durationOf(f.every), startAt: f.startAt }
        : { kind: 'every', every: durationOf(f.every) };
    case 'delay':
      return { kind: 'delay', delay: durationOf(f.delay) };
    case 'at':
      return { kind: 'at', at: f.at };
    case 'manual':
      return { kind: 'manual' };
    case 'after':
      return { kind: 'after', job: f.parent, on: f.on };
  }
}

/** Checks that need no server; the trigger itself is checked by the node's preview as you type. */
function localErrors(f: Fields): Partial<Record<keyof Fields, string>> {
  const errors: Partial<Record<keyof Fields, string>> = {};
  if (!NAME.test(f.name))
    errors.name = 'letters, digits and . _ : - (up to 128), starting with a letter or digit';
  if (!HANDLER.test(f.handler)) errors.handler = 'the handler name a worker registered';
  if (!NAME.test(f.group)) errors.group = 'a group name like "default"';
  try {
    const value = JSON.parse(f.params) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) errors.params = 'a JSON object';
  } catch (e) {
    errors.params = `not JSON: ${(e as Error).message}`;
  }
  const attempts = Number(f.maxAttempts);
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > 100)
    errors.maxAttempts = 'a whole number from 1 to 100';
  if (!DURATION.test(f.timeout)) errors.timeout = 'a duration: 30s, 5m, 2h or milliseconds';
  if (!/^-?\d+$/.test(f.priority)) errors.priority = 'a whole number';
  return errors;
}

export function JobFormPage({ me, name, cloneOf }: { me: Me; name?: string; cloneOf?: string }) {
  const editing = name !== undefined;
  const [fields, setFields] = useState<Fields | null>(editing || cloneOf ? null : EMPTY);
  // The job being edited or cloned: settings the form does not show (retry backoff, …) are kept.
  const [base, setBase] = useState<Job>();
  const [loadError, setLoadError] = useState<unknown>();
  const [saveError, setSaveError] = useState<unknown>();
  const [saving, setSaving] = useState(false);
  // A field shows its problem once it was typed in; the submit button stays off until all are fine.
  const [touched, setTouched] = useState<ReadonlySet<keyof Fields>>(new Set());
  const [preview, setPreview] = useState<{ fires: FirePreview[]; error?: string }>({ fires: [] });

  useEffect(() => {
    const source = name ?? cloneOf;
    if (!source) return;
    api.getJob(source).then(
      (job) => {
        setBase(job);
        setFields(fromJob(job, editing ? job.name : `${job.name}-copy`));
      },
      (e: unknown) => setLoadError(e),
    );
  }, [name, cloneOf, editing]);

  const trigger = useMemo(() => (fields ? triggerOf(fields) : null), [fields]);
  const settled = useDebounced(trigger ? JSON.stringify(trigger) : '', 250);

  useEffect(() => {
    if (!settled) return;
    let current = true;
    api.preview({ trigger: JSON.parse(settled) as TriggerSpec, count: 10 }).then(
      (answer) => current && setPreview({ fires: answer.fires }),
      (e: unknown) => current && setPreview({ fires: [], error: errorText(e) }),
    );
    return () => {
      current = false;
    };
  }, [settled]);

  if (loadError) return <ErrorBox error={loadError} />;
  if (!fields) return <p>Loading…</p>;
  if (!can(me, 'operator')) return <p>Your role ({me.role}) can look at jobs but not change them.</p>;

  const errors = localErrors(fields);
  const previewPending = trigger !== null && JSON.stringify(trigger) !== settled;
  const valid = Object.keys(errors).length === 0 && !preview.error && !previewPending;
  const set = <K extends keyof Fields>(key: K, value: Fields[K]) => {
    setTouched(new Set(touched).add(key));
    setFields({ ...fields, [key]: value });
  };
  const zone = fields.kind === 'cron' ? fields.timezone || 'UTC' : 'UTC';

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSaving(true);
    setSaveError(undefined);
    // Editing patches what the form shows, so settings it does not show (schedule policies,
    // routing, tasks, …) stay as they are.
    const shown: Omit<JobSpec, 'name'> = {
      description: fields.description,
      group: fields.group,
      handler: fields.handler,
      params: JSON.parse(fields.params) as JsonObject,
      trigger: triggerOf(fields),
      retry: { ...base?.retry, maxAttempts: Number(fields.maxAttempts) },
      timeout: durationOf(fields.timeout),
      priority: Number(fields.priority),
      paused: fields.paused,
    };
    try {
      // Only the job as the form loaded it: a change someone made meanwhile (a pause, an edit)
      // answers VERSION_CONFLICT instead of being overwritten with what the form still shows.
      const job = editing
        ? await api.updateJob(fields.name, shown, { ifMatch: base?.version })
        : await api.createJob({ name: fields.name, ...shown });
      navigate(`/jobs/${encodeURIComponent(job.name)}`);
    } catch (e) {
      setSaveError(e);
      setSaving(false);
    }
  };

  const field = (key: keyof Fields, label: string, input: ReactNode) => {
    const problem = touched.has(key) ? errors[key] : undefined;
    return (
      <div className={problem ? 'field invalid' : 'field'}>
        {/* biome-ignore lint/a11y/noLabelWithoutControl: the control is the `input` argument, inside the label */}
        <label>
          {label}
          {input}
        </label>
        {problem && <span className="field-error">{problem}</span>}
      </div>
    );
  };
  const text = (key: keyof Fields, extra: InputHTMLAttributes<HTMLInputElement> = {}) => (
    <input
      value={String(fields[key])}
      onChange={(e) => set(key, e.target.value as never)}
      aria-invalid={touched.has(key) && !!errors[key]}
      {...extra}
    />
  );

  return (
    <form className="job-form" onSubmit={submit}>
      <h1>{editing ? `Edit ${name}` : cloneOf ? `Clone ${cloneOf}` : 'New job'}</h1>
      <div className="form-grid">
        <div>
          {field('name', 'Name', text('name', { readOnly: editing }))}
          {field('description', 'Description', text('description'))}
          {field('group', 'Group', text('group'))}
          {field('handler', 'Handler', text('handler', { placeholder: 'send-report' }))}
          <label>
            Trigger
            <select value={fields.kind} onChange={(e) => set('kind', e.target.value as TriggerKind)}>
              <option value="cron">cron</option>
              <option value="every">every (fixed rate)</option>
              <option value="delay">delay (after each run)</option>
              <option value="at">at (one shot)</option>
              <option value="manual">manual</option>
              <option value="after">after another job</option>
            </select>
          </label>
          {fields.kind === 'cron' && (
            <>
              {field(
                'cron',
                'Cron expression',
                text('cron', { placeholder: '0 9 * * 1-5', spellCheck: false }),
              )}
              {field('timezone', 'Time zone', text('timezone', { placeholder: 'Europe/Berlin' }))}
            </>
          )}
          {fields.kind === 'every' && (
            <>
              {field('every', 'Every', text('every', { placeholder: '30s' }))}
              {field('startAt', 'Start at (optional, RFC 3339 with an offset)', text('startAt'))}
            </>
          )}
          {fields.kind === 'delay' && field('delay', 'Delay', text('delay', { placeholder: '1m' }))}
          {fields.kind === 'after' && (
            <>
              {field('parent', 'Parent job', text('parent', { placeholder: 'nightly-export' }))}
              <label>
                When its run
                <select value={fields.on} onChange={(e) => set('on', e.target.value as Fields['on'])}>
                  <option value="success">succeeds</option>
                  <option value="failure">fails</option>
                  <option value="always">ends, either way</option>
                </select>
              </label>
            </>
          )}
          {fields.kind === 'at' &&
            field('at', 'At (RFC 3339 with an offset)', text('at', { placeholder: '2030-01-01T09:00:00Z' }))}
          {preview.error && (
            <div className="error" role="alert" aria-label="Trigger error">
              {preview.error}
            </div>
          )}
          {field(
            'params',
            'Params (JSON)',
            <textarea
              rows={4}
              spellCheck={false}
              value={fields.params}
              onChange={(e) => set('params', e.target.value)}
            />,
          )}
          <div className="row">
            {field('maxAttempts', 'Max attempts', text('maxAttempts', { inputMode: 'numeric' }))}
            {field('timeout', 'Timeout', text('timeout'))}
            {field('priority', 'Priority', text('priority', { inputMode: 'numeric' }))}
          </div>
          <label className="check">
            <input
              type="checkbox"
              checked={fields.paused}
              onChange={(e) => set('paused', e.target.checked)}
            />
            Paused
          </label>
        </div>
        <aside className="preview">
          <h2>Next fires{fields.kind === 'cron' ? ` (${zone})` : ''}</h2>
          {preview.fires.length > 0 ? (
            <ol aria-label="Next fire times">
              {preview.fires.map((f) => (
                <li key={f.fireTime}>
                  {timeIn(f.fireTime, zone)}
                  {f.note && <span className="muted"> ({f.note})</span>}
                </li>
              ))}
            </ol>
          ) : (
            <p className="muted">
              {preview.error
                ? 'Fix the trigger to see its fires.'
                : fields.kind === 'manual'
                  ? 'Runs only when triggered.'
                  : fields.kind === 'delay'
                    ? 'Fires once now, then each delay after the previous run ends.'
                    : 'No fires.'}
            </p>
          )}
        </aside>
      </div>
      <ErrorBox error={saveError} />
      <div className="actions">
        <button type="button" onClick={() => history.back()}>
          Cancel
        </button>
        <button type="submit" className="primary" disabled={!valid || saving}>
          {editing ? 'Save changes' : 'Create job'}
        </button>
      </div>
    </form>
  );
}
