import type { JobSpec } from '@kairos/client';
import { KairosError } from '../errors.ts';
import { compileJob } from './job.ts';

/**
 * Reads a crontab (a user's, the system's `/etc/crontab`, or a `cron.d` file) as Kairos shell jobs,
 * with Vixie cron's rules (crontab(5) of Debian's `cron`): environment lines apply to the lines
 * after them; `SHELL` runs the command (default `/bin/sh`), `CRON_TZ` is the zone of the schedule,
 * other variables go into the command's environment; `%` ends the command and the rest is its
 * standard input, with each further `%` a newline and `\%` a literal `%`; `@hourly`-style macros.
 * What cron does that Kairos does not (`@reboot`, mail, a command run as another user) is
 * reported line by line, never guessed.
 */
export interface CrontabOptions {
  /** Names the jobs (`<prefix><source>-<line>`) and their descriptions: usually the file name. */
  source: string;
  /** `/etc/crontab` and `cron.d` files have a user field after the schedule; a user's crontab has none. */
  userField: boolean;
  /** The zone of schedules without `CRON_TZ` (cron runs in the host's zone). */
  timezone: string;
  group?: string;
  prefix?: string;
  /** Route each job to workers labelled `<userLabel>=<user>` (system format only). */
  userLabel?: string;
}

export type CrontabLine =
  | { line: number; text: string; kind: 'job'; job: JobSpec; notes: string[] }
  | { line: number; text: string; kind: 'env'; notes: string[] }
  | { line: number; text: string; kind: 'unmapped'; reason: string };

/** Each line that is not blank or a comment, in order: a job, an environment setting, or why not. */
export function readCrontab(text: string, options: CrontabOptions): CrontabLine[] {
  const out: CrontabLine[] = [];
  const env: Record<string, string> = {};
  let shell = '/bin/sh';
  let zone = options.timezone;
  /** A CRON_TZ that is no zone: the lines below it are not mapped until a good one. */
  let badZone: string | null = null;
  let mailto: string | undefined;
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = index + 1;
    const trimmed = raw.replace(/^[ \t]+/, '');
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const setting = ENV_LINE.exec(trimmed);
    if (setting && !/^[*@\d]/.test(trimmed)) {
      const name = setting[1]!;
      const value = unquote(setting[2]!.replace(/[ \t]+$/, ''));
      const notes: string[] = [];
      if (name === 'SHELL') shell = value;
      else if (name === 'CRON_TZ') {
        if (!validZone(value)) {
          badZone = value;
          out.push({ line, text: raw, kind: 'unmapped', reason: `CRON_TZ: unknown time zone ${value}` });
          continue;
        }
        badZone = null;
        zone = value;
        notes.push(`schedules below run in ${value}`);
      } else if (name === 'MAILTO') {
        mailto = value;
        notes.push(
          'not mapped: Kairos keeps each run’s output in its log and reports failures through alert rules, it sends no mail',
        );
      } else if (!ENV_NAME.test(name)) {
        out.push({
          line,
          text: raw,
          kind: 'unmapped',
          reason: `${name}: not a name a process environment takes`,
        });
        continue;
      } else env[name] = value;
      out.push({ line, text: raw, kind: 'env', notes });
      continue;
    }
    if (badZone !== null) {
      out.push({
        line,
        text: raw,
        kind: 'unmapped',
        reason: `the CRON_TZ above it (${badZone}) is no time zone: its schedule’s zone is unknown`,
      });
      continue;
    }
    out.push(readEntry(raw, trimmed, line, { ...options, env: { ...env }, shell, zone, mailto }));
  }
  return out;
}

const ENV_LINE = /^([^\s=]+)[ \t]*=[ \t]*(.*)$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};
/** The time fields: minute, hour, day of month, month, day of week (names as crontab(5) allows). */
const FIELD = /^[0-9A-Za-z*,/-]+$/;

interface EntryContext extends CrontabOptions {
  env: Record<string, string>;
  shell: string;
  zone: string;
  mailto: string | undefined;
}

function readEntry(raw: string, trimmed: string, line: number, context: EntryContext): CrontabLine {
  const unmapped = (reason: string): CrontabLine => ({ line, text: raw, kind: 'unmapped', reason });
  const words = trimmed.split(/[ \t]+/);
  let cron: string;
  let rest: string;
  if (trimmed.startsWith('@')) {
    const macro = words[0]!.toLowerCase();
    if (macro === '@reboot')
      return unmapped(
        '@reboot runs once when the host starts; Kairos has no such trigger: start it from the host’s init system (a systemd unit), or make it a manual job',
      );
    if (!(macro in MACROS)) return unmapped(`${words[0]}: not a cron macro`);
    cron = MACROS[macro]!;
    rest = afterWords(trimmed, 1);
  } else {
    const fields = words.slice(0, 5);
    if (fields.length < 5 || !fields.every((f) => FIELD.test(f)))
      return unmapped('neither an environment setting nor five time fields and a command');
    const [, , dom, , dow] = fields as [string, string, string, string, string];
    // Vixie cron treats a day field that begins with `*` (as `*/2`) as unrestricted, so the other
    // day field alone decides; Kairos's cron would match either field.
    const starLike = (f: string) => f.startsWith('*') && f !== '*';
    if ((starLike(dom) && dow !== '*') || (starLike(dow) && dom !== '*'))
      return unmapped(
        `day of month ${dom} with day of week ${dow}: cron matches only the restricted one, Kairos would match either; write the days as one field`,
      );
    cron = fields.join(' ');
    rest = afterWords(trimmed, 5);
  }
  let user: string | undefined;
  if (context.userField) {
    user = rest.split(/[ \t]+/, 1)[0];
    rest = afterWords(rest, 1);
  }
  if (rest.trim() === '') return unmapped('no command');
  const { command, input } = splitPercent(rest);
  if (command.trim() === '') return unmapped('no command before %');
  const script = input === null ? command : withInput(command, input);

  const notes: string[] = [];
  const job: JobSpec = {
    name: jobName(context, line),
    description: `${context.source}:${line}: ${raw.trim()}`.slice(0, 2000),
    ...(context.group === undefined ? {} : { group: context.group }),
    trigger: { kind: 'cron', cron, timezone: context.zone },
    // Cron starts every due command, does not retry it, and does not limit its run time.
    schedule: { overlap: 'allow' },
    retry: { maxAttempts: 1 },
    timeout: '24h',
    task: {
      kind: 'shell',
      command: context.shell,
      args: ['-c', script],
      ...(Object.keys(context.env).length === 0 ? {} : { env: context.env }),
    },
  };
  if (user !== undefined) {
    if (context.userLabel !== undefined) {
      job.routing = { strategy: 'any', selector: { [context.userLabel]: user } };
      notes.push(`runs on workers labelled ${context.userLabel}=${user}`);
    } else notes.push(`cron ran it as ${user}; it runs as the worker’s user`);
  }
  if (context.mailto !== undefined && context.mailto !== '')
    notes.push(`output went by mail to ${context.mailto}; it is in the run’s log`);
  try {
    compileJob(job);
  } catch (error) {
    if (error instanceof KairosError) return unmapped(error.message);
    throw error;
  }
  return { line, text: raw, kind: 'job', job, notes };
}

/** The text after the first `count` blank-separated words. */
function afterWords(text: string, count: number): string {
  let rest = text;
  for (let i = 0; i < count; i++) rest = rest.replace(/^[ \t]*[^ \t]+/, '');
  return rest.replace(/^[ \t]+/, '');
}

/**
 * crontab(5): the command runs up to the first `%` not escaped by a backslash; what follows is its
 * standard input, each further unescaped `%` a newline. `\%` is a literal `%` in both parts.
 */
export function splitPercent(text: string): { command: string; input: string | null } {
  let command = '';
  let input: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    let out = c;
    if (c === '\\' && text[i + 1] === '%') {
      out = '%';
      i++;
    } else if (c === '%') {
      if (input === null) {
        input = '';
        continue;
      }
      out = '\n';
    }
    if (input === null) command += out;
    else input += out;
  }
  return { command, input };
}

/** The command with its standard input as a here-document that the whole command list reads. */
function withInput(command: string, input: string): string {
  let marker = 'KAIROS_CRON_INPUT';
  while (input.split('\n').includes(marker)) marker += '_';
  return `{ ${command}\n} <<'${marker}'\n${input}\n${marker}`;
}

function jobName(context: CrontabOptions, line: number): string {
  const base = `${context.prefix ?? ''}${context.source.split('/').pop() ?? context.source}`
    .replace(/[^A-Za-z0-9._:-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '');
  return `${(base || 'crontab').slice(0, 110)}-${line}`;
}

function unquote(value: string): string {
  const q = value[0];
  return (q === '"' || q === "'") && value.length >= 2 && value.endsWith(q) ? value.slice(1, -1) : value;
}

function validZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
