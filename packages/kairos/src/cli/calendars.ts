import type { Calendar, CalendarSpec } from '@kairos/client';
import type { Command } from 'commander';
import { keyValues, printJson, table } from './format.ts';
import { clientFrom, type GlobalFlags, UsageError } from './options.ts';

interface CalendarFlags {
  tz?: string;
  date?: string[];
  period?: string[];
  weekdays?: string;
  cron?: string;
  description?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Registers `kairos calendars …`: list, get, put, delete. */
export function registerCalendars(program: Command): void {
  const calendars = program
    .command('calendars')
    .description('named sets of excluded dates and times (holidays, weekends) that jobs attach');

  calendars
    .command('list')
    .description('list calendars')
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const { items } = await clientFrom(flags).listCalendars();
      if (flags.json) return printJson(items);
      if (items.length === 0)
        return console.log('no calendars yet: create one with `kairos calendars put --help`');
      console.log(
        table(
          ['NAME', 'ZONE', 'EXCLUDES'],
          items.map((c) => [c.name, c.timezone, summary(c)]),
        ),
      );
    });

  calendars
    .command('get')
    .argument('<name>', 'calendar name')
    .description('show a calendar')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const calendar = await clientFrom(flags).getCalendar(name);
      if (flags.json) return printJson(calendar);
      console.log(
        keyValues([
          ['name', calendar.name],
          ['description', calendar.description || undefined],
          ['zone', calendar.timezone],
          ['excludes', summary(calendar)],
        ]),
      );
    });

  calendars
    .command('put')
    .argument('<name>', 'calendar name')
    .description('create a calendar or replace it')
    .option('--tz <zone>', 'IANA zone in which dates and times are read (default UTC)')
    .option('--date <yyyy-mm-dd>', 'a whole local day excluded (repeat the flag)', collect)
    .option(
      '--period <from..to>',
      'local days excluded, both ends included: 2026-12-24..2026-12-26 (repeatable)',
      collect,
    )
    .option('--weekdays <list>', 'weekdays excluded, 0 Sunday … 6 Saturday: 0,6 for weekends')
    .option('--cron <expr>', 'fire times this cron expression matches are excluded')
    .option('--description <text>', 'free text')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags & CalendarFlags>();
      const calendar = await clientFrom(flags).putCalendar(calendarSpecFromFlags(name, flags));
      if (flags.json) return printJson(calendar);
      console.log(`saved calendar ${calendar.name}: ${summary(calendar)}`);
    });

  calendars
    .command('delete')
    .argument('<name>', 'calendar name')
    .description('delete a calendar no job uses')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      await clientFrom(flags).deleteCalendar(name);
      if (flags.json) return printJson({ deleted: name });
      console.log(`deleted calendar ${name}`);
    });
}

/** The spec of `kairos calendars put NAME` from its flags. */
export function calendarSpecFromFlags(name: string, flags: CalendarFlags): CalendarSpec {
  const spec: CalendarSpec = { name };
  if (flags.tz !== undefined) spec.timezone = flags.tz;
  if (flags.description !== undefined) spec.description = flags.description;
  if (flags.date) spec.dates = flags.date;
  if (flags.period) {
    spec.periods = flags.period.map((text) => {
      const [from, to, extra] = text.split('..');
      if (!from || !to || extra !== undefined)
        throw new UsageError(`--period: expected FROM..TO, got ${JSON.stringify(text)}`);
      return { from, to };
    });
  }
  if (flags.weekdays !== undefined) {
    spec.weekdays = flags.weekdays.split(',').map((day) => {
      const n = Number(day.trim());
      if (!Number.isInteger(n) || n < 0 || n > 6)
        throw new UsageError(`--weekdays: expected 0 to 6, got ${JSON.stringify(day)}`);
      return n;
    });
  }
  if (flags.cron !== undefined) spec.cron = flags.cron;
  return spec;
}

function summary(calendar: Calendar): string {
  const names = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const parts = [
    calendar.dates.length > 0 ? `${calendar.dates.length} dates` : '',
    calendar.periods.length > 0 ? calendar.periods.map((p) => `${p.from}..${p.to}`).join(' ') : '',
    calendar.weekdays.length > 0 ? calendar.weekdays.map((d) => names[d]).join(',') : '',
    calendar.cron ? `cron ${calendar.cron}` : '',
  ].filter(Boolean);
  return parts.length > 0 ? parts.join('; ') : 'nothing';
}
