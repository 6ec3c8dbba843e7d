import type { Calendar, CalendarSpec, Me } from '@kairos/client';
import { useCallback, useEffect, useState } from 'react';
import { api, can, errorText } from '../api.ts';
import { Confirm, Dialog, Empty, ErrorBox, Section } from '../components.tsx';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/** What a calendar excludes, in a few words. */
function excludes(c: Calendar): string {
  const parts: string[] = [];
  if (c.weekdays.length) parts.push(c.weekdays.map((d) => DAYS[d]).join(', '));
  if (c.dates.length) parts.push(`${c.dates.length} date${c.dates.length === 1 ? '' : 's'}`);
  if (c.periods.length) parts.push(`${c.periods.length} period${c.periods.length === 1 ? '' : 's'}`);
  if (c.cron) parts.push(`cron ${c.cron}`);
  return parts.join(' · ') || 'nothing';
}

/** Calendars: named sets of excluded dates and times that jobs attach (operators change them). */
export function CalendarsPage({ me }: { me: Me }) {
  const [items, setItems] = useState<Calendar[]>();
  const [error, setError] = useState<unknown>();
  const [editing, setEditing] = useState<Calendar | 'new' | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);
  const load = useCallback(() => {
    api.listCalendars().then(
      (answer) => setItems(answer.items),
      (e: unknown) => setError(e),
    );
  }, []);
  useEffect(load, [load]);
  const operator = can(me, 'operator');
  return (
    <>
      <h1>Calendars</h1>
      <ErrorBox error={error} />
      <Section
        title="Calendars"
        actions={
          operator && (
            <button type="button" className="primary" onClick={() => setEditing('new')}>
              New calendar
            </button>
          )
        }
      >
        {items && items.length === 0 && (
          <Empty>No calendars. A job skips the fires that its calendars exclude.</Empty>
        )}
        {items && items.length > 0 && (
          <table aria-label="Calendars">
            <thead>
              <tr>
                <th>Name</th>
                <th>Zone</th>
                <th>Excludes</th>
                <th>Description</th>
                {operator && <th />}
              </tr>
            </thead>
            <tbody>
              {items.map((c) => (
                <tr key={c.name}>
                  <td>{c.name}</td>
                  <td>{c.timezone}</td>
                  <td>{excludes(c)}</td>
                  <td className="muted">{c.description}</td>
                  {operator && (
                    <td className="actions">
                      <button type="button" onClick={() => setEditing(c)}>
                        Edit
                      </button>
                      <button type="button" className="danger" onClick={() => setDeleting(c.name)}>
                        Delete
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      {editing && (
        <CalendarDialog
          calendar={editing === 'new' ? null : editing}
          onClose={() => {
            setEditing(null);
            load();
          }}
        />
      )}
      <Confirm
        open={deleting !== null}
        title={`Delete calendar ${deleting}?`}
        message="Jobs that name it must drop it first (CALENDAR_IN_USE)."
        confirmLabel="Delete calendar"
        onConfirm={() =>
          api
            .deleteCalendar(deleting!)
            .then(load)
            .catch((e: unknown) => setError(e))
        }
        onClose={() => setDeleting(null)}
      />
    </>
  );
}

function CalendarDialog({ calendar, onClose }: { calendar: Calendar | null; onClose: () => void }) {
  const [name, setName] = useState(calendar?.name ?? '');
  const [description, setDescription] = useState(calendar?.description ?? '');
  const [timezone, setTimezone] = useState(
    calendar?.timezone ?? (Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'),
  );
  const [weekdays, setWeekdays] = useState<number[]>(calendar?.weekdays ?? []);
  const [dates, setDates] = useState((calendar?.dates ?? []).join('\n'));
  const [periods, setPeriods] = useState(
    (calendar?.periods ?? []).map((p) => `${p.from} ${p.to}`).join('\n'),
  );
  const [cron, setCron] = useState(calendar?.cron ?? '');
  const [error, setError] = useState<string>();
  const lines = (text: string) =>
    text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  const badPeriod = lines(periods).find((l) => !/^\d{4}-\d{2}-\d{2}\s+\d{4}-\d{2}-\d{2}$/.test(l));
  const badDate = lines(dates).find((l) => !/^\d{4}-\d{2}-\d{2}$/.test(l));
  const problem = badDate
    ? `not a date (YYYY-MM-DD): ${badDate}`
    : badPeriod
      ? `a period is two dates: ${badPeriod}`
      : undefined;
  const save = async () => {
    setError(undefined);
    const spec: CalendarSpec = {
      name,
      description,
      timezone,
      weekdays,
      dates: lines(dates),
      periods: lines(periods).map((l) => {
        const [from, to] = l.split(/\s+/) as [string, string];
        return { from, to };
      }),
      ...(cron.trim() ? { cron: cron.trim() } : {}),
    };
    try {
      await api.putCalendar(spec);
      onClose();
    } catch (e) {
      setError(errorText(e));
    }
  };
  return (
    <Dialog title={calendar ? `Edit calendar ${calendar.name}` : 'New calendar'} open onClose={onClose}>
      <label>
        Name
        <input value={name} readOnly={calendar !== null} onChange={(e) => setName(e.target.value)} />
      </label>
      <label>
        Description
        <input value={description} onChange={(e) => setDescription(e.target.value)} />
      </label>
      <label>
        Time zone
        <input value={timezone} onChange={(e) => setTimezone(e.target.value)} />
      </label>
      <fieldset aria-label="Weekdays excluded">
        <legend>Weekdays excluded</legend>
        {DAYS.map((day, i) => (
          <label key={day} className="check">
            <input
              type="checkbox"
              checked={weekdays.includes(i)}
              onChange={(e) =>
                setWeekdays(e.target.checked ? [...weekdays, i].sort() : weekdays.filter((d) => d !== i))
              }
            />
            {day}
          </label>
        ))}
      </fieldset>
      <label>
        Dates excluded (YYYY-MM-DD, one per line)
        <textarea rows={3} value={dates} onChange={(e) => setDates(e.target.value)} spellCheck={false} />
      </label>
      <label>
        Periods excluded (YYYY-MM-DD YYYY-MM-DD, one per line)
        <textarea rows={2} value={periods} onChange={(e) => setPeriods(e.target.value)} spellCheck={false} />
      </label>
      <label>
        Times excluded (a cron expression, e.g. * 0-6 * * *)
        <input value={cron} onChange={(e) => setCron(e.target.value)} spellCheck={false} />
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
        <button type="button" className="primary" disabled={!!problem || !name} onClick={save}>
          Save calendar
        </button>
      </div>
    </Dialog>
  );
}
