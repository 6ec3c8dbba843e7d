import { readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { KairosApiError } from '@kairos/client';
import type { Command } from 'commander';
import { type CrontabLine, readCrontab } from '../core/crontab.ts';
import { printJson, truncate } from './format.ts';
import { clientFrom, type GlobalFlags, UsageError } from './options.ts';

interface ImportFlags {
  system?: boolean;
  group?: string;
  prefix?: string;
  timezone?: string;
  userLabel?: string;
  dryRun?: boolean;
}

/** What happened to one line of one file. */
interface Outcome {
  file: string;
  line: number;
  text: string;
  result: 'created' | 'exists' | 'would create' | 'setting' | 'not mapped' | 'refused';
  job?: string;
  detail: string;
}

/** Registers `kairos import crontab <file…>`. */
export function registerImport(program: Command): void {
  const imports = program
    .command('import')
    .description('make Kairos jobs from other schedulers’ definitions');
  imports
    .command('crontab')
    .argument(
      '<file...>',
      'a crontab: /etc/crontab, a cron.d file, or a user’s crontab (`crontab -l > file`)',
    )
    .description(
      'make a shell job of each line of a crontab, and report line by line what was made and what could not be mapped, and why',
    )
    .option(
      '--system',
      'the lines have a user field after the schedule (default: for /etc/crontab and files in a cron.d folder)',
    )
    .option('--no-system', 'the lines have no user field (a user’s crontab)')
    .option('--group <group>', 'the worker group that runs the jobs (default: default)')
    .option('--prefix <prefix>', 'put before each job name (`<prefix><file>-<line>`)')
    .option(
      '--timezone <zone>',
      'the zone of schedules without CRON_TZ (default: this machine’s zone, as cron runs in the host’s)',
    )
    .option('--user-label <key>', 'route each job to workers labelled <key>=<the line’s user>')
    .option('--dry-run', 'report what would be made, change nothing')
    .action(async (files: string[], options: ImportFlags, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const timezone = options.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
      const parsed = files.map((file) => {
        let text: string;
        try {
          text = readFileSync(file, 'utf8');
        } catch (error) {
          throw new UsageError(`cannot read ${file}: ${(error as Error).message}`);
        }
        const userField = options.system ?? looksSystem(file, text);
        return {
          file,
          format: userField
            ? 'a system crontab: a user field after the schedule'
            : 'a user crontab: no user field',
          lines: readCrontab(text, {
            source: basename(file),
            userField,
            timezone,
            group: options.group,
            prefix: options.prefix,
            userLabel: options.userLabel,
          }),
        };
      });
      // Jobs are named after the file: two files of one name would make the same names.
      const seen = new Map<string, string>();
      for (const file of files) {
        const other = seen.get(basename(file));
        if (other !== undefined)
          throw new UsageError(
            `${other} and ${file} have the same name, and so would their jobs: import them apart with --prefix`,
          );
        seen.set(basename(file), file);
      }
      const client = options.dryRun ? null : clientFrom(flags);
      const outcomes: Outcome[] = [];
      for (const { file, lines } of parsed)
        for (const line of lines) outcomes.push(await apply(file, line, client));
      const formats = Object.fromEntries(parsed.map((p) => [p.file, p.format]));
      if (flags.json) printJson({ timezone, formats, outcomes });
      else print(outcomes, formats, timezone);
      if (outcomes.some((o) => o.result === 'refused')) process.exitCode = 1;
    });
}

async function apply(
  file: string,
  line: CrontabLine,
  client: ReturnType<typeof clientFrom> | null,
): Promise<Outcome> {
  const at = { file, line: line.line, text: line.text };
  if (line.kind === 'unmapped') return { ...at, result: 'not mapped', detail: line.reason };
  if (line.kind === 'env') return { ...at, result: 'setting', detail: line.notes.join('; ') };
  const detail = line.notes.join('; ');
  const job = line.job.name;
  if (client === null) return { ...at, result: 'would create', job, detail };
  try {
    await client.createJob(line.job);
    return { ...at, result: 'created', job, detail };
  } catch (error) {
    if (error instanceof KairosApiError && error.code === 'JOB_NAME_TAKEN')
      return { ...at, result: 'exists', job, detail: 'a job of this name exists; left as it is' };
    if (error instanceof KairosApiError && error.status < 500)
      return { ...at, result: 'refused', job, detail: `${error.code}: ${error.message}` };
    throw error;
  }
}

/**
 * Whether a file has a user field when the command line does not say: `/etc/crontab` and files in a
 * `cron.d` folder do. Any other file is read as a user's crontab, unless its lines look like a
 * system crontab's (every sixth word a user of this machine): then the reader must say which it is,
 * since a word like `backup` may be a user or a command.
 */
function looksSystem(file: string, text: string): boolean {
  if (file.replace(/\/+$/, '') === '/etc/crontab' || basename(dirname(file)) === 'cron.d') return true;
  let users: Set<string>;
  try {
    users = new Set(
      readFileSync('/etc/passwd', 'utf8')
        .split('\n')
        .map((l) => l.split(':')[0]!),
    );
  } catch {
    return false;
  }
  const sixth = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => /^[\d*@]/.test(l))
    .map((l) => l.split(/[ \t]+/)[l.startsWith('@') ? 1 : 5]);
  if (sixth.length > 0 && sixth.every((word) => word !== undefined && users.has(word)))
    throw new UsageError(
      `${file}: every line's sixth word is a user of this machine (${[...new Set(sixth)].slice(0, 3).join(', ')}): say whether it is a system crontab with a user field (--system) or a user's crontab (--no-system)`,
    );
  return false;
}

function print(outcomes: Outcome[], formats: Record<string, string>, timezone: string): void {
  let file = '';
  for (const o of outcomes) {
    if (o.file !== file) {
      file = o.file;
      console.log(`${file} (${formats[file]}):`);
    }
    const what = o.job === undefined ? o.result : `${o.result} ${o.job}`;
    console.log(`  ${String(o.line).padStart(4)}  ${what}${o.detail ? ` — ${o.detail}` : ''}`);
    console.log(`        ${truncate(o.text.trim(), 100)}`);
  }
  const count = (result: Outcome['result']) => outcomes.filter((o) => o.result === result).length;
  console.log(
    `${count('created') + count('would create')} jobs ${count('would create') > 0 ? 'to create' : 'created'}, ` +
      `${count('exists')} existed, ${count('not mapped')} lines not mapped, ${count('refused')} refused; ` +
      `schedules without CRON_TZ in ${timezone}`,
  );
}
