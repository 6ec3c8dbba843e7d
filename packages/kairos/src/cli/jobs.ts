import type { Job, JobPatch, TriggerRequest } from '@kairos/client';
import type { Command } from 'commander';
import { addDispatchFlags } from './dispatch-flags.ts';
import {
  compactJson,
  formatDuration,
  formatRetry,
  formatTime,
  formatTrigger,
  keyValues,
  printJson,
  table,
  zoneOf,
} from './format.ts';
import {
  clientFrom,
  type GlobalFlags,
  type JobFlags,
  jobFieldsFromFlags,
  jobSpecFromFlags,
  parseDurationFlag,
  parseInstant,
  parseIntFlag,
  parseJsonObject,
  parsePathList,
  UsageError,
} from './options.ts';
import { addRetentionFlags } from './retention-flags.ts';
import { addScheduleFlags, registerScheduleCommands, type ScheduleFlags, withSchedule } from './schedules.ts';

/** Registers `kairos jobs …`: create, put, list, get, update, delete, pause, resume, trigger. */
export function registerJobs(program: Command): void {
  const jobs = program.command('jobs').description('define, list and trigger jobs');

  addJobFlags(
    jobs
      .command('create')
      .argument('<name>', 'job name')
      .description('create a job (fails if the name is taken)'),
    'create',
  ).action(async (name: string, _options: unknown, cmd: Command) => {
    const flags = cmd.optsWithGlobals<GlobalFlags & JobFlags & ScheduleFlags>();
    const spec = withSchedule(jobSpecFromFlags(name, withAfter(flags)), flags);
    showJob(flags, await clientFrom(flags).createJob(spec), 'created');
  });

  addJobFlags(
    jobs
      .command('put')
      .argument('<name>', 'job name')
      .description('create a job or replace its definition (upsert)')
      .option('--if-match <version>', IF_MATCH_HELP),
    'create',
  ).action(async (name: string, _options: unknown, cmd: Command) => {
    const flags = cmd.optsWithGlobals<GlobalFlags & JobFlags & ScheduleFlags & IfMatchFlags>();
    const spec = withSchedule(jobSpecFromFlags(name, withAfter(flags)), flags);
    showJob(flags, await clientFrom(flags).putJob(spec, ifMatchOf(flags)), 'saved');
  });

  addJobFlags(
    jobs
      .command('update')
      .argument('<name>', 'job name')
      .description('change some fields of a job; others keep their value')
      .option('--if-match <version>', IF_MATCH_HELP),
    'update',
  ).action(async (name: string, _options: unknown, cmd: Command) => {
    const flags = cmd.optsWithGlobals<GlobalFlags & JobFlags & ScheduleFlags & IfMatchFlags>();
    const client = clientFrom(flags);
    const patch = await jobUpdateFromFlags(flags, () => client.getJob(name));
    // A version given wins over the one of a read made for --dst.
    if (flags.ifMatch !== undefined) delete patch.version;
    showJob(flags, await client.updateJob(name, patch, ifMatchOf(flags)), 'updated');
  });

  jobs
    .command('list')
    .description('list jobs')
    .option('--group <group>', 'only the jobs of this worker group')
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags & { group?: string }>();
      const client = clientFrom(flags);
      const items: Job[] = [];
      let cursor: string | undefined;
      do {
        const page = await client.listJobs({ group: flags.group, cursor });
        items.push(...page.items);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      if (flags.json) return printJson(items);
      if (items.length === 0) return console.log('no jobs yet: create one with `kairos jobs create --help`');
      console.log(
        table(
          ['NAME', 'GROUP', 'HANDLER', 'TRIGGER', 'PAUSED', 'NEXT FIRE'],
          items.map((job) => [
            job.name,
            job.group,
            job.handler,
            formatTrigger(job.trigger),
            job.paused ? 'yes' : 'no',
            formatTime(job.nextFireAt, zoneOf(job.trigger)),
          ]),
        ),
      );
    });

  jobs
    .command('get')
    .argument('<name>', 'job name')
    .description('show a job')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const job = await clientFrom(flags).getJob(name);
      if (flags.json) return printJson(job);
      console.log(
        keyValues([
          ['name', job.name],
          ['description', job.description || undefined],
          ['group', job.group],
          ['handler', job.handler],
          ['trigger', formatTrigger(job.trigger)],
          ['params', compactJson(job.params)],
          ['retry', formatRetry(job.retry)],
          ['timeout', formatDuration(job.timeout)],
          ['priority', String(job.priority)],
          ['paused', job.paused ? 'yes' : 'no'],
          ['version', String(job.version)],
          ['schedule', formatSchedule(job)],
          ['retention', formatRetention(job)],
          ['next fire', formatTime(job.nextFireAt, zoneOf(job.trigger))],
          ['created', formatTime(job.createdAt)],
          ['updated', formatTime(job.updatedAt)],
        ]),
      );
    });

  jobs
    .command('delete')
    .argument('<name>', 'job name')
    .description('delete a job')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      await clientFrom(flags).deleteJob(name);
      if (flags.json) return printJson({ deleted: name });
      console.log(`deleted job ${name}`);
    });

  jobs
    .command('pause')
    .argument('<name>', 'job name')
    .description('stop scheduling a job (manual triggers still work)')
    .option('--if-match <version>', IF_MATCH_HELP)
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags & IfMatchFlags>();
      showJob(flags, await clientFrom(flags).pauseJob(name, ifMatchOf(flags)), 'paused');
    });

  jobs
    .command('resume')
    .argument('<name>', 'job name')
    .description('schedule a paused job again')
    .option('--if-match <version>', IF_MATCH_HELP)
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags & IfMatchFlags>();
      showJob(flags, await clientFrom(flags).resumeJob(name, ifMatchOf(flags)), 'resumed');
    });

  jobs
    .command('trigger')
    .argument('<name>', 'job name')
    .description('run a job now, or later with --at or --delay; prints the run id')
    .option('--params <json>', "params of this run as a JSON object, replacing the job's")
    .option('--merge', "merge --params over the job's params instead of replacing them")
    .option('--secret-params <paths>', "fields of this run's params that are secret, besides the job's")
    .option('--priority <n>', 'priority of this run (-1000 to 1000)')
    .option('--at <iso>', 'start the run at this instant, not before, e.g. 2030-01-01T09:00:00Z')
    .option('--delay <dur>', 'start the run this long from now, not before, e.g. 30s, 2h')
    .option(
      '--idempotency-key <key>',
      'a second trigger with the same key and params returns the first run; other params are refused',
    )
    .option('--idempotency-ttl <dur>', 'how long the key holds its run (1s to 30d, default 24h)')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<
        GlobalFlags & {
          params?: string;
          secretParams?: string;
          merge?: boolean;
          priority?: string;
          idempotencyKey?: string;
          idempotencyTtl?: string;
          at?: string;
          delay?: string;
        }
      >();
      if (flags.at !== undefined && flags.delay !== undefined)
        throw new UsageError('--at or --delay, not both');
      const request: TriggerRequest = {};
      if (flags.params !== undefined) request.params = parseJsonObject(flags.params, '--params');
      if (flags.merge) request.mergeParams = true;
      if (flags.secretParams !== undefined) request.secretParams = parsePathList(flags.secretParams);
      if (flags.priority !== undefined) {
        request.priority = parseIntFlag(flags.priority, '--priority', { min: -1000, max: 1000 });
      }
      if (flags.idempotencyKey !== undefined) request.idempotencyKey = flags.idempotencyKey;
      if (flags.idempotencyTtl !== undefined)
        request.idempotencyTtl = parseDurationFlag(flags.idempotencyTtl, '--idempotency-ttl');
      if (flags.at !== undefined) request.runAt = parseInstant(flags.at, '--at');
      if (flags.delay !== undefined) request.delay = parseDurationFlag(flags.delay, '--delay');
      const run = await clientFrom(flags).triggerJob(name, request);
      if (flags.json) return printJson(run);
      console.log(run.id);
      if (process.stderr.isTTY) {
        const later =
          Date.parse(run.availableAt) > Date.parse(run.createdAt)
            ? ` until ${formatTime(run.availableAt)}`
            : '';
        console.error(`run ${run.id} ${run.status}${later}; follow it with: kairos runs wait ${run.id}`);
      }
    });

  registerScheduleCommands(jobs);
}

/**
 * `--after` is a trigger of its own: the spec is built with a placeholder manual trigger that
 * {@link withSchedule} replaces, so that `jobSpecFromFlags` still asks for exactly one trigger.
 */
function withAfter(flags: JobFlags & ScheduleFlags): JobFlags {
  return flags.after === undefined ? flags : { ...flags, manual: true };
}

/**
 * The patch of `jobs update`: job flags, schedule flags (`--calendar`, `--overlap`, …), or both.
 * `--dst` alone changes the DST rule of the job's cron trigger, read through `current`.
 * @throws UsageError when no flag changes anything.
 */
export async function jobUpdateFromFlags(
  flags: JobFlags & ScheduleFlags,
  current: () => Promise<Job>,
): Promise<JobPatch> {
  const patch = jobFieldsFromFlags(flags);
  if (flags.dst !== undefined && patch.trigger === undefined && flags.after === undefined) {
    const { trigger, version } = await current();
    if (trigger.kind !== 'cron') throw new UsageError('--dst goes with a cron trigger; this job has none');
    patch.trigger = trigger;
    // The trigger was read: it applies only to the job as read, not over a change made since.
    patch.version = version;
  }
  withSchedule(patch, flags);
  if (Object.keys(patch).length === 0)
    throw new UsageError('nothing to update: pass at least one flag (see --help)');
  return patch;
}

/** The spec flags shared by create, put and update. */
function addJobFlags(cmd: Command, mode: 'create' | 'update'): Command {
  const need = mode === 'create' ? ' (exactly one trigger flag is required)' : '';
  addDispatchFlags(cmd);
  addRetentionFlags(cmd);
  return addScheduleFlags(
    cmd
      .option(
        '--handler <name>',
        'handler name a worker registered' + (mode === 'create' ? ' (required)' : ''),
      )
      .option('--group <group>', 'worker group that runs the job (default "default")')
      .option('--cron <expr>', 'trigger: cron with 5 fields, 6 (seconds first) or a macro like @daily' + need)
      .option('--tz <zone>', 'IANA time zone of --cron, e.g. Europe/Berlin (default UTC)')
      .option('--every <dur>', 'trigger: fixed rate, e.g. 30s, 5m')
      .option('--delay <dur>', 'trigger: fixed delay after the previous run finished')
      .option('--at <iso>', 'trigger: one shot at an instant, e.g. 2025-06-01T09:00:00Z')
      .option('--manual', 'trigger: no schedule, runs only through `kairos jobs trigger`')
      .option('--params <json>', 'params as a JSON object, e.g. \'{"to":"ops"}\'')
      .option(
        '--secret-params <paths>',
        'params fields stored encrypted and shown as "***", comma-separated dotted paths, e.g. apiKey,db.password',
      )
      .option('--timeout <dur>', 'time limit of one attempt (default 5m)')
      .option('--retries <n>', 'retries after a failed first attempt; 0 disables (default 2)')
      .option('--backoff <kind>', 'retry backoff: fixed or exponential (default exponential)')
      .option('--retry-delay <dur>', 'delay before the first retry (default 1s)')
      .option('--priority <n>', 'higher runs first within a group, -1000 to 1000 (default 0)')
      .option('--paused', mode === 'create' ? 'create the job paused' : 'pause the job')
      .option('--description <text>', 'free text shown by `jobs get`'),
  );
}

const IF_MATCH_HELP =
  'apply only to this version of the job (`jobs get` shows it); exits with VERSION_CONFLICT if it changed';

interface IfMatchFlags {
  ifMatch?: string;
}

function ifMatchOf(flags: IfMatchFlags): { ifMatch?: number } {
  if (flags.ifMatch === undefined) return {};
  return { ifMatch: parseIntFlag(flags.ifMatch, '--if-match', { min: 1, max: 2 ** 31 - 1 }) };
}

/** The policies that differ from the defaults, in one line. */
function formatSchedule(job: Job): string | undefined {
  const s = job.schedule;
  const parts = [
    s.misfire.policy === 'skip' ? '' : `misfire ${s.misfire.policy}`,
    s.overlap === 'allow' ? '' : `overlap ${s.overlap}`,
    s.startAt ? `from ${formatTime(s.startAt, zoneOf(job.trigger))}` : '',
    s.endAt ? `until ${formatTime(s.endAt, zoneOf(job.trigger))}` : '',
    s.jitter ? `jitter ${formatDuration(s.jitter)}` : '',
    s.maxRuns === null ? '' : `${job.runsFired}/${s.maxRuns} runs`,
    s.calendars.length > 0 ? `calendars ${s.calendars.join(', ')}` : '',
  ].filter(Boolean);
  return parts.length > 0 ? parts.join(', ') : undefined;
}

/** The job's own retention, in one line; undefined when it takes the node's. */
function formatRetention(job: Job): string | undefined {
  const r = job.retention;
  const parts = [
    r.finished === null ? '' : `finished ${formatDuration(r.finished)}`,
    r.failed === null ? '' : `failed ${formatDuration(r.failed)}`,
    r.keepLast === null ? '' : `last ${r.keepLast}`,
  ].filter(Boolean);
  return parts.length > 0 ? parts.join(', ') : undefined;
}

function showJob(flags: GlobalFlags, job: Job, verb: string): void {
  if (flags.json) {
    printJson(job);
    return;
  }
  const next = job.paused ? 'paused' : `next fire ${formatTime(job.nextFireAt, zoneOf(job.trigger))}`;
  console.log(`${verb} job ${job.name}: ${formatTrigger(job.trigger)}, ${next}`);
}
