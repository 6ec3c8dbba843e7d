import {
  type Calendar,
  type FirePreview,
  type Job,
  jobToSpec,
  type Me,
  ROUTING_STRATEGIES,
  type TriggerKind,
} from '@kairos/client';
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
import { EMPTY, type Fields, fieldsOf, localErrors, scheduleOf, specOf, triggerOf } from './job-fields.ts';

export function JobFormPage({ me, name, cloneOf }: { me: Me; name?: string; cloneOf?: string }) {
  const editing = name !== undefined;
  const [fields, setFields] = useState<Fields | null>(editing || cloneOf ? null : EMPTY);
  // The job being edited or cloned: saving sends its whole spec, the form's fields over it.
  const [base, setBase] = useState<Job>();
  const [calendars, setCalendars] = useState<Calendar[]>([]);
  const [loadError, setLoadError] = useState<unknown>();
  const [saveError, setSaveError] = useState<unknown>();
  const [saving, setSaving] = useState(false);
  // A field shows its problem once it was typed in; the submit button stays off until all are fine.
  const [touched, setTouched] = useState<ReadonlySet<keyof Fields>>(new Set());
  const [preview, setPreview] = useState<{ fires: FirePreview[]; skipped: number; error?: string }>({
    fires: [],
    skipped: 0,
  });

  useEffect(() => {
    api.listCalendars().then(
      (answer) => setCalendars(answer.items),
      () => setCalendars([]),
    );
    const source = name ?? cloneOf;
    if (!source) return;
    api.getJob(source).then(
      (job) => {
        setBase(job);
        setFields(fieldsOf(jobToSpec(job), editing ? job.name : `${job.name}-copy`));
      },
      (e: unknown) => setLoadError(e),
    );
  }, [name, cloneOf, editing]);

  // The preview reads the trigger with the schedule policy: calendars, the window and the DST rule.
  const request = useMemo(() => {
    if (!fields) return '';
    try {
      return JSON.stringify({ trigger: triggerOf(fields), schedule: scheduleOf(fields) });
    } catch {
      return '';
    }
  }, [fields]);
  const settled = useDebounced(request, 250);

  useEffect(() => {
    if (!settled) return;
    let current = true;
    api.preview({ ...JSON.parse(settled), count: 10 }).then(
      (answer) => current && setPreview({ fires: answer.fires, skipped: answer.skipped.length }),
      (e: unknown) => current && setPreview({ fires: [], skipped: 0, error: errorText(e) }),
    );
    return () => {
      current = false;
    };
  }, [settled]);

  if (loadError) return <ErrorBox error={loadError} />;
  if (!fields) return <p>Loading…</p>;
  if (!can(me, 'operator')) return <p>Your role ({me.role}) can look at jobs but not change them.</p>;

  const errors = localErrors(fields);
  const previewPending = request !== settled;
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
    try {
      // The whole job, as the form shows it over the job it loaded; only over that version: a change
      // someone made meanwhile (a pause, an edit) answers VERSION_CONFLICT instead of being lost.
      const spec = specOf(fields, base ? jobToSpec(base) : {});
      const job = editing ? await api.putJob(spec, { ifMatch: base?.version }) : await api.createJob(spec);
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
  const area = (key: keyof Fields, rows: number, placeholder?: string) => (
    <textarea
      rows={rows}
      spellCheck={false}
      placeholder={placeholder}
      value={String(fields[key])}
      onChange={(e) => set(key, e.target.value as never)}
    />
  );
  const choice = <K extends keyof Fields>(key: K, label: string, options: Array<[string, string]>) => (
    <label>
      {label}
      <select value={String(fields[key])} onChange={(e) => set(key, e.target.value as Fields[K])}>
        {options.map(([value, text]) => (
          <option key={value} value={value}>
            {text}
          </option>
        ))}
      </select>
    </label>
  );
  const check = (key: 'paused' | 'retryJitter', label: string) => (
    <label className="check">
      <input type="checkbox" checked={fields[key]} onChange={(e) => set(key, e.target.checked)} />
      {label}
    </label>
  );

  return (
    <form className="job-form" onSubmit={submit}>
      <h1>{editing ? `Edit ${name}` : cloneOf ? `Clone ${cloneOf}` : 'New job'}</h1>
      <div className="form-grid">
        <div>
          {field('name', 'Name', text('name', { readOnly: editing }))}
          {field('description', 'Description', text('description'))}
          {field('group', 'Group', text('group'))}
          {choice('runs', 'Runs', [
            ['handler', 'code registered by a worker'],
            ['shell', 'a shell command (built-in task)'],
            ['http', 'an HTTP call (built-in task)'],
          ])}
          {fields.runs === 'handler' &&
            field('handler', 'Handler', text('handler', { placeholder: 'send-report' }))}
          {fields.runs === 'shell' && (
            <>
              {field('command', 'Command', text('command', { placeholder: '/usr/local/bin/backup' }))}
              {field('args', 'Arguments (a JSON list of strings)', area('args', 2))}
              {field('env', 'Environment (NAME=value, one per line)', area('env', 2))}
              {field('cwd', 'Working folder', text('cwd'))}
            </>
          )}
          {fields.runs === 'http' && (
            <>
              <div className="row">
                {choice(
                  'method',
                  'Method',
                  ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'].map((m) => [m, m] as [string, string]),
                )}
                {field('url', 'URL', text('url', { placeholder: 'https://hooks.example.com/ping' }))}
              </div>
              {field('headers', 'Headers (Name: value, one per line)', area('headers', 2))}
              {field('body', 'Body', area('body', 2))}
              <div className="row">
                {field('httpTimeout', 'Request timeout', text('httpTimeout'))}
                {field('expectStatus', 'Expected status (empty: any 2xx)', text('expectStatus'))}
              </div>
            </>
          )}
          {choice('kind', 'Trigger', [
            ['cron', 'cron'],
            ['every', 'every (fixed rate)'],
            ['delay', 'delay (after each run)'],
            ['at', 'at (one shot)'],
            ['manual', 'manual'],
            ['after', 'after another job'],
          ] satisfies Array<[TriggerKind, string]>)}
          {fields.kind === 'cron' && (
            <>
              {field(
                'cron',
                'Cron expression',
                text('cron', { placeholder: '0 9 * * 1-5', spellCheck: false }),
              )}
              {field('timezone', 'Time zone', text('timezone', { placeholder: 'Europe/Berlin' }))}
              {choice('dst', 'Daylight saving changes', [
                ['once-per-day', 'once per day: a skipped time runs after the gap, a repeated one once'],
                ['literal', 'literal: only times that exist, each time it occurs'],
              ])}
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
              {choice('on', 'When its run', [
                ['success', 'succeeds'],
                ['failure', 'fails'],
                ['always', 'ends, either way'],
              ])}
            </>
          )}
          {fields.kind === 'at' &&
            field('at', 'At (RFC 3339 with an offset)', text('at', { placeholder: '2030-01-01T09:00:00Z' }))}
          {preview.error && (
            <div className="error" role="alert" aria-label="Trigger error">
              {preview.error}
            </div>
          )}
          {field('params', 'Params (JSON)', area('params', 4))}
          {field(
            'secretParams',
            'Secret params (stored encrypted, shown as "***": replace "***" to set a new value)',
            text('secretParams', { placeholder: 'apiKey, db.password' }),
          )}
          <div className="row">
            {field('priority', 'Priority', text('priority', { inputMode: 'numeric' }))}
            {field('timeout', 'Timeout', text('timeout'))}
          </div>
          <div className="row">
            {field(
              'keepFinished',
              'Keep finished runs',
              text('keepFinished', { placeholder: 'node default' }),
            )}
            {field('keepFailed', 'Keep failed runs', text('keepFailed', { placeholder: 'node default' }))}
            {field(
              'keepLast',
              'Keep last',
              text('keepLast', { inputMode: 'numeric', placeholder: 'no limit' }),
            )}
          </div>
          {check('paused', 'Paused')}

          <details>
            <summary>Schedule policy</summary>
            <div className="row">
              {choice('misfire', 'Missed fires', [
                ['skip', 'skip'],
                ['run-once', 'run once'],
                ['catch-up', 'catch up'],
              ])}
              {fields.misfire === 'catch-up' && (
                <>
                  {field('maxCatchUp', 'At most', text('maxCatchUp', { inputMode: 'numeric' }))}
                  {field('catchUpWindow', 'Within', text('catchUpWindow'))}
                </>
              )}
            </div>
            {choice('overlap', 'A fire while a run is active', [
              ['allow', 'allow: run both'],
              ['skip', 'skip the fire'],
              ['buffer-one', 'buffer one run'],
              ['buffer-all', 'buffer every run'],
              ['cancel-previous', 'cancel the previous run'],
            ])}
            <div className="row">
              {field('windowStart', 'Window start (ISO-8601)', text('windowStart'))}
              {field('windowEnd', 'Window end (ISO-8601)', text('windowEnd'))}
            </div>
            <div className="row">
              {field('jitter', 'Jitter', text('jitter'))}
              {field('maxRuns', 'Run cap', text('maxRuns', { inputMode: 'numeric', placeholder: 'none' }))}
            </div>
            <fieldset aria-label="Calendars">
              <legend>Calendars (fires on their dates are skipped)</legend>
              {calendars.length === 0 && fields.calendars.length === 0 && (
                <span className="muted">No calendars.</span>
              )}
              {[...new Set([...calendars.map((c) => c.name), ...fields.calendars])].map((c) => (
                <label key={c} className="check">
                  <input
                    type="checkbox"
                    checked={fields.calendars.includes(c)}
                    onChange={(e) =>
                      set(
                        'calendars',
                        e.target.checked ? [...fields.calendars, c] : fields.calendars.filter((x) => x !== c),
                      )
                    }
                  />
                  {c}
                </label>
              ))}
            </fieldset>
          </details>

          <details>
            <summary>Retries</summary>
            <div className="row">
              {field('maxAttempts', 'Max attempts', text('maxAttempts', { inputMode: 'numeric' }))}
              {choice('backoff', 'Backoff', [
                ['exponential', 'exponential'],
                ['fixed', 'fixed'],
              ])}
            </div>
            <div className="row">
              {field('retryDelay', 'First delay', text('retryDelay'))}
              {field('maxDelay', 'Longest delay', text('maxDelay'))}
            </div>
            {check('retryJitter', 'Jitter the delays')}
            {field('nonRetryable', 'Errors never retried (names, comma-separated)', text('nonRetryable'))}
          </details>

          <details>
            <summary>Routing and limits</summary>
            <div className="row">
              {choice(
                'strategy',
                'Routing',
                ROUTING_STRATEGIES.map((s) => [s, s] as [string, string]),
              )}
              {fields.strategy === 'consistent-hash' &&
                field('routingKey', 'Key (a params field)', text('routingKey'))}
            </div>
            {field('selector', 'Worker labels (key=value, comma-separated)', text('selector'))}
            {field(
              'resources',
              'Resources per run (cpu=1.5, memory=512Mi, gpu=1; empty: a slot only)',
              text('resources', { placeholder: 'none', spellCheck: false }),
            )}
            <div className="row">
              {field('maxConcurrency', 'Runs at once', text('maxConcurrency', { placeholder: 'no limit' }))}
              {field('rate', 'Rate (runs/time)', text('rate', { placeholder: '10/1m' }))}
              {field('scheduleToStart', 'Start within', text('scheduleToStart', { placeholder: 'no limit' }))}
            </div>
          </details>
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
          {preview.skipped > 0 && (
            <p className="muted">
              {preview.skipped} fire times in that span will not run (calendars, window or DST rule).
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
