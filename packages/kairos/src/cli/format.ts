import type { Duration, Json, RetryPolicy, RunError, TriggerSpec } from '@kairos/client';

/** Prints `value` as indented JSON (the `--json` output of every command). */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Aligns rows under their headers with two spaces between columns. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** Aligns `key  value` pairs; pairs whose value is undefined are left out. */
export function keyValues(pairs: ReadonlyArray<readonly [string, string | undefined]>): string {
  const shown = pairs.filter((pair): pair is readonly [string, string] => pair[1] !== undefined);
  const width = Math.max(0, ...shown.map(([key]) => key.length));
  return shown.map(([key, value]) => `${key.padEnd(width)}  ${value}`).join('\n');
}

/**
 * An ISO instant as wall time with its UTC offset, `2025-06-01 09:00:05 +02:00`, in `timeZone`
 * (default: this machine's zone); a zone other than this machine's is named after the offset
 * (`2025-06-01 15:00:05 +08:00 Asia/Shanghai`), so a time never reads as local when it is not.
 * `-` for none.
 */
export function formatTime(iso: string | null | undefined, timeZone?: string): string {
  if (!iso) return '-';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const zone = timeZone ?? LOCAL_ZONE;
  const parts: Record<string, string> = {};
  for (const part of zoneFormat(zone).formatToParts(date)) parts[part.type] = part.value;
  // `longOffset` names the offset `GMT+08:00`, and UTC itself `GMT`.
  const offset = (parts.timeZoneName ?? 'GMT').replace(/^GMT/, '') || '+00:00';
  const label = zone === LOCAL_ZONE ? '' : ` ${zone}`;
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} ${offset}${label}`;
}

/** The zone in which a job's times read best: its cron trigger's zone; none for other triggers. */
export function zoneOf(trigger: TriggerSpec): string | undefined {
  return trigger.kind === 'cron' ? (trigger.timezone ?? 'UTC') : undefined;
}

const LOCAL_ZONE = new Intl.DateTimeFormat().resolvedOptions().timeZone;
const formats = new Map<string, Intl.DateTimeFormat>();

function zoneFormat(timeZone: string): Intl.DateTimeFormat {
  let format = formats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'longOffset',
    });
    formats.set(timeZone, format);
  }
  return format;
}

/** Milliseconds for humans: `350ms`, `1.2s`, `15s`, `2m5s`, `1h30m`, `2d3h`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1).replace(/\.0$/, '')}s`;
  const pair = (big: number, bigUnit: string, small: number, smallUnit: string) =>
    small === 0 ? `${big}${bigUnit}` : `${big}${bigUnit}${small}${smallUnit}`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return pair(Math.floor(s / 60), 'm', s % 60, 's');
  if (s < 86_400) return pair(Math.floor(s / 3600), 'h', Math.floor((s % 3600) / 60), 'm');
  return pair(Math.floor(s / 86_400), 'd', Math.floor((s % 86_400) / 3600), 'h');
}

/** The time between two instants (until now when `end` is null). */
export function elapsed(start: string | null, end: string | null): string {
  if (!start) return '-';
  const ms = (end ? Date.parse(end) : Date.now()) - Date.parse(start);
  return end ? formatDuration(ms) : `${formatDuration(ms)}…`;
}

/** A wire duration (ms or `'30s'`) for display. */
export function showDuration(value: Duration): string {
  return typeof value === 'number' ? formatDuration(value) : value;
}

/** A trigger in one short line: `cron 0 9 * * 1-5 Europe/Berlin`, `every 15s`, `manual`. */
export function formatTrigger(trigger: TriggerSpec): string {
  switch (trigger.kind) {
    case 'cron':
      return (
        `cron ${trigger.cron}${trigger.timezone && trigger.timezone !== 'UTC' ? ` ${trigger.timezone}` : ''}` +
        (trigger.dst === 'literal' ? ' (dst literal)' : '')
      );
    case 'every':
      return `every ${showDuration(trigger.every)}`;
    case 'delay':
      return `delay ${showDuration(trigger.delay)}`;
    case 'at':
      return `at ${formatTime(trigger.at)}`;
    case 'manual':
      return 'manual';
    case 'after':
      return `after ${trigger.job} (${trigger.on ?? 'success'})`;
  }
}

/** A retry policy in one line: `3 attempts, exponential from 1s up to 5m`. */
export function formatRetry(retry: RetryPolicy): string {
  if (retry.maxAttempts <= 1) return 'no retries';
  return (
    `${retry.maxAttempts} attempts, ${retry.backoff} from ${formatDuration(retry.delay)}` +
    (retry.backoff === 'exponential' ? ` up to ${formatDuration(retry.maxDelay)}` : '') +
    (retry.jitter ? ', jitter' : '')
  );
}

/** A run error as `Name: message`. */
export function formatError(error: RunError): string {
  return `${error.name}: ${error.message}`;
}

/** Compact JSON for a table cell or a detail line. */
export function compactJson(value: Json | undefined): string {
  return value === undefined ? '-' : JSON.stringify(value);
}

/** Cuts `text` to `max` characters, ending with `…` when cut; newlines become spaces. */
export function truncate(text: string, max: number): string {
  const flat = text.replace(/\s*\n\s*/g, ' ');
  return flat.length <= max ? flat : flat.slice(0, Math.max(0, max - 1)) + '…';
}
