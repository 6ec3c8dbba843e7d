import type { RunStatus, TriggerSpec } from '@kairos/client';

const pad = (n: number) => String(n).padStart(2, '0');

/** Local date and time with the offset it is in, `2026-01-31 09:00:05 +01:00`; `–` for none. */
export function time(iso: string | null | undefined): string {
  if (!iso) return '–';
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${offset(d)}`;
}

/** The browser's UTC offset at that instant, `+01:00`. */
function offset(d: Date): string {
  const minutes = -d.getTimezoneOffset();
  const sign = minutes < 0 ? '-' : '+';
  return `${sign}${pad(Math.floor(Math.abs(minutes) / 60))}:${pad(Math.abs(minutes) % 60)}`;
}

/** A time in an IANA zone, `Wed 2026-01-28 09:00:00 CET`, for previews of a job's fires in its own zone. */
export function timeIn(iso: string, timeZone: string): string {
  try {
    const parts = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      weekday: 'short',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      timeZoneName: 'short',
    }).formatToParts(new Date(iso));
    const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? '';
    return `${part('weekday')} ${part('year')}-${part('month')}-${part('day')} ${part('hour')}:${part('minute')}:${part('second')} ${part('timeZoneName')}`;
  } catch {
    return iso;
  }
}

/** An instant as the value of a `datetime-local` input (local time, minutes); '' for none or a bad one. */
export function toLocalInput(iso: string | null | undefined): string {
  const d = iso ? new Date(iso) : null;
  if (!d || Number.isNaN(d.getTime())) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A `datetime-local` value (local time) as an ISO instant; '' for an empty or incomplete one. */
export function fromLocalInput(value: string): string {
  const d = value ? new Date(value) : null;
  return d && !Number.isNaN(d.getTime()) ? d.toISOString() : '';
}

/** `3s ago`, `5m ago`, `in 2h`. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '–';
  const ms = now - Date.parse(iso);
  const text = duration(Math.abs(ms));
  return ms >= 0 ? `${text} ago` : `in ${text}`;
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${Math.round(s % 60)}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

export function runDuration(run: { startedAt: string | null; finishedAt: string | null }): number | null {
  if (!run.startedAt) return null;
  const end = run.finishedAt ? Date.parse(run.finishedAt) : Date.now();
  return end - Date.parse(run.startedAt);
}

export function triggerText(trigger: TriggerSpec): string {
  switch (trigger.kind) {
    case 'cron':
      return `cron ${trigger.cron}${trigger.timezone && trigger.timezone !== 'UTC' ? ` (${trigger.timezone})` : ''}`;
    case 'every':
      return `every ${duration(Number(trigger.every))}`;
    case 'delay':
      return `${duration(Number(trigger.delay))} after each run`;
    case 'at':
      return `once at ${time(trigger.at)}`;
    case 'manual':
      return 'manual';
    case 'after':
      return `after ${trigger.job} ${dependencyVerb(trigger.on)}`;
  }
}

/** What of the upstream job's run starts a dependent one: `succeeds` (the default), `fails`, `ends`. */
export function dependencyVerb(on: string | undefined): string {
  return on === 'failure' ? 'fails' : on === 'always' ? 'ends' : 'succeeds';
}

export const FINAL: readonly RunStatus[] = ['succeeded', 'failed', 'timed_out', 'cancelled'];

/** An amount of a resource as the API answers it (`cpu` in cores, `memory` in bytes): `1.5`, `512 MiB`, `2`. */
export function amountText(name: string, amount: number): string {
  if (name !== 'memory') return `${Math.round(amount * 1000) / 1000}`;
  for (const [unit, size] of [
    ['TiB', 2 ** 40],
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ] as const) {
    if (amount >= size) return `${Math.round((amount / size) * 100) / 100} ${unit}`;
  }
  return `${amount} B`;
}

/** Resources as people read them: `cpu 2, memory 4 GiB, gpu 1`; `–` for none. */
export function resourcesText(resources: Record<string, number> | null | undefined): string {
  const entries = Object.entries(resources ?? {});
  if (entries.length === 0) return '–';
  return entries.map(([name, amount]) => `${name} ${amountText(name, amount)}`).join(', ');
}
