import type {
  BackfillRequest,
  JobPatch,
  MisfirePolicyKind,
  OverlapPolicy,
  Preview,
  ScheduleSpec,
  SkippedFires,
} from '@kairos/client';
import type { Command } from 'commander';
import { formatTime, printJson, table, zoneOf } from './format.ts';
import {
  clientFrom,
  type GlobalFlags,
  parseDurationFlag,
  parseInstant,
  parseIntFlag,
  UsageError,
} from './options.ts';

/** Schedule-policy flags of `jobs create|put|update`, as commander hands them over. */
export interface ScheduleFlags {
  misfire?: string;
  maxCatchUp?: string;
  catchUpWindow?: string;
  overlap?: string;
  startAt?: string;
  endAt?: string;
  jitter?: string;
  maxRuns?: string;
  dst?: string;
  cron?: string;
  calendar?: string[];
  after?: string;
  on?: string;
  manual?: boolean;
}

const MISFIRE: readonly MisfirePolicyKind[] = ['skip', 'run-once', 'catch-up'];
const OVERLAP: readonly OverlapPolicy[] = ['allow', 'skip', 'buffer-one', 'buffer-all', 'cancel-previous'];

export function addScheduleFlags(cmd: Command): Command {
  return cmd
    .option('--misfire <policy>', 'missed fires: skip (default), run-once or catch-up')
    .option('--max-catch-up <n>', 'catch-up: the most missed fires to run (default 10)')
    .option('--catch-up-window <dur>', 'catch-up: missed fires older than this are skipped (default 1d)')
    .option(
      '--overlap <policy>',
      'a fire while a run is active: allow (default), skip, buffer-one, buffer-all or cancel-previous',
    )
    .option('--start-at <iso>', 'no fire before this instant')
    .option('--end-at <iso>', 'no fire after this instant')
    .option('--jitter <dur>', 'delay each run by up to this, reproducibly per fire')
    .option('--max-runs <n>', 'stop the schedule after this many runs')
    .option('--dst <rule>', 'with --cron: once-per-day (default) or literal')
    .option(
      '--calendar <name>',
      'do not fire on the dates this calendar excludes (repeatable)',
      (v: string, p: string[] = []) => [...p, v],
    )
    .option('--after <job>', 'trigger: a run when a run of <job> ends (see --on)')
    .option('--on <when>', 'with --after: success (default), failure or always');
}

/** Adds the schedule policy and DST rule of the flags to a spec or patch. */
export function withSchedule<T extends JobPatch>(spec: T, flags: ScheduleFlags): T {
  if (flags.on !== undefined && flags.after === undefined) throw new UsageError('--on goes with --after');
  if (flags.after !== undefined) {
    // `jobs create|put` pass a placeholder manual trigger (see withAfter in jobs.ts).
    if (flags.manual || (spec.trigger && spec.trigger.kind !== 'manual'))
      throw new UsageError('choose one trigger: --after replaces --cron, --every, --delay, --at, --manual');
    spec.trigger =
      flags.on === undefined
        ? { kind: 'after', job: flags.after }
        : {
            kind: 'after',
            job: flags.after,
            on: oneOf(flags.on, ['success', 'failure', 'always'] as const, '--on'),
          };
  }
  if (flags.dst !== undefined) {
    if (flags.dst !== 'once-per-day' && flags.dst !== 'literal') {
      throw new UsageError(`--dst: expected once-per-day or literal, got ${JSON.stringify(flags.dst)}`);
    }
    if (spec.trigger?.kind !== 'cron') throw new UsageError('--dst goes with --cron');
    spec.trigger = { ...spec.trigger, dst: flags.dst };
  }
  const schedule: ScheduleSpec = {};
  if (flags.misfire !== undefined) {
    schedule.misfire = { policy: oneOf(flags.misfire, MISFIRE, '--misfire') };
  }
  if (flags.maxCatchUp !== undefined || flags.catchUpWindow !== undefined) {
    if (schedule.misfire?.policy !== 'catch-up') {
      throw new UsageError('--max-catch-up and --catch-up-window go with --misfire catch-up');
    }
    if (flags.maxCatchUp !== undefined)
      schedule.misfire.maxCatchUp = parseIntFlag(flags.maxCatchUp, '--max-catch-up', { min: 1, max: 1000 });
    if (flags.catchUpWindow !== undefined)
      schedule.misfire.catchUpWindow = parseDurationFlag(flags.catchUpWindow, '--catch-up-window');
  }
  if (flags.overlap !== undefined) schedule.overlap = oneOf(flags.overlap, OVERLAP, '--overlap');
  if (flags.startAt !== undefined) schedule.startAt = parseInstant(flags.startAt, '--start-at');
  if (flags.endAt !== undefined) schedule.endAt = parseInstant(flags.endAt, '--end-at');
  if (flags.jitter !== undefined) schedule.jitter = parseDurationFlag(flags.jitter, '--jitter');
  if (flags.calendar !== undefined) schedule.calendars = flags.calendar;
  if (flags.maxRuns !== undefined) schedule.maxRuns = parseIntFlag(flags.maxRuns, '--max-runs', { min: 1 });
  if (Object.keys(schedule).length > 0) spec.schedule = schedule;
  return spec;
}

/** Registers `kairos jobs skipped NAME`, `kairos jobs preview NAME` and `kairos jobs backfill NAME`. */
export function registerScheduleCommands(jobs: Command): void {
  jobs
    .command('backfill')
    .argument('<name>', 'job name')
    .description('run a job for every fire time of its trigger in a past range')
    .requiredOption('--from <iso>', 'first instant of the range')
    .requiredOption('--to <iso>', 'last instant of the range (not in the future)')
    .option('--overlap <policy>', 'buffer-all (default: one at a time, oldest first) or allow (all at once)')
    .option('--max <n>', 'the most runs to create (default 100, at most 1000)')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<
        GlobalFlags & { from: string; to: string; overlap?: string; max?: string }
      >();
      const request: BackfillRequest = {
        from: parseInstant(flags.from, '--from'),
        to: parseInstant(flags.to, '--to'),
      };
      if (flags.overlap !== undefined)
        request.overlap = oneOf(flags.overlap, ['allow', 'buffer-all'] as const, '--overlap');
      if (flags.max !== undefined) request.max = parseIntFlag(flags.max, '--max', { min: 1, max: 1000 });
      const result = await clientFrom(flags).backfill(name, request);
      if (flags.json) return printJson(result);
      console.log(
        `backfill of ${name}: ${result.runs.length} runs created, ${result.existing.length} fire times already had a run`,
      );
      if (result.nextFrom) console.log(`more fires in the range: continue with --from ${result.nextFrom}`);
    });

  jobs
    .command('skipped')
    .argument('<name>', 'job name')
    .description('fires of a job that did not run, with the reason, newest first')
    .option('--limit <n>', 'the most entries to show (default 50)')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags & { limit?: string }>();
      const limit =
        flags.limit === undefined ? 50 : parseIntFlag(flags.limit, '--limit', { min: 1, max: 500 });
      const page = await clientFrom(flags).listSkipped(name, { limit });
      if (flags.json) return printJson(page.items);
      if (page.items.length === 0) return console.log(`no skipped fires for ${name}`);
      console.log(
        table(['REASON', 'FIRST FIRE', 'LAST FIRE', 'COUNT', 'RECORDED'], page.items.map(skippedRow)),
      );
    });

  jobs
    .command('preview')
    .argument('<name>', 'job name')
    .description('the next fire times of a job, marking those a DST rule, window or cap changes')
    .option('--count <n>', 'how many fires (default 20, at most 100)')
    .option('--skipped', 'list the fire times between them that will not run (calendar, window, DST)')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags & { count?: string; skipped?: boolean }>();
      const count =
        flags.count === undefined ? 20 : parseIntFlag(flags.count, '--count', { min: 1, max: 100 });
      const client = clientFrom(flags);
      const preview = await client.previewJob(name, count);
      if (flags.json) return printJson(preview);
      // Times read in the job's own zone (its cron's), named when it is not this machine's.
      printPreview(preview, zoneOf((await client.getJob(name)).trigger), flags.skipped === true);
    });
}

function skippedRow(entry: SkippedFires): string[] {
  return [
    entry.reason,
    formatTime(entry.firstFireTime),
    formatTime(entry.lastFireTime),
    entry.count === null ? 'many' : String(entry.count),
    formatTime(entry.recordedAt),
  ];
}

/**
 * One row per fire asked for; the fire times in between that will not run are counted below the
 * table, or listed among the fires with `withSkipped` (`--skipped`).
 */
function printPreview(preview: Preview, zone: string | undefined, withSkipped: boolean): void {
  const rows = [
    ...preview.fires.map((f) => ({
      at: Date.parse(f.fireTime),
      row: [formatTime(f.fireTime, zone), formatTime(f.runAt, zone), f.note ?? ''],
    })),
    ...(withSkipped ? preview.skipped : []).map((s) => ({
      at: Date.parse(s.fireTime),
      row: [formatTime(s.fireTime, zone), '-', `skipped: ${s.reason}`],
    })),
  ].sort((a, b) => a.at - b.at);
  if (rows.length === 0) {
    console.log('no upcoming fires');
    return;
  }
  console.log(
    table(
      ['FIRE TIME', 'RUN AT', 'NOTE'],
      rows.map((r) => r.row),
    ),
  );
  if (!withSkipped && preview.skipped.length > 0) {
    const reasons = new Map<string, number>();
    for (const s of preview.skipped) reasons.set(s.reason, (reasons.get(s.reason) ?? 0) + 1);
    const counted = [...reasons].map(([reason, n]) => `skipped: ${reason} ×${n}`).join(', ');
    console.log(
      `and ${preview.skipped.length} fire times between them that will not run (${counted}); --skipped lists them`,
    );
  }
}

function oneOf<T extends string>(value: string, allowed: readonly T[], flag: string): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`${flag}: expected ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}
