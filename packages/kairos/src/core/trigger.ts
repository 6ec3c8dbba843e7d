import type { DependencyCondition, DstPolicy, TriggerSpec } from '@kairos/client';
import { Cron } from 'croner';
import { KairosError } from '../errors.ts';
import { parseDuration } from './duration.ts';
import { parseRfc3339 } from './instant.ts';

/**
 * A validated trigger, with durations and instants in epoch milliseconds.
 * `every` fires at `anchor + k × every`; `delay` fires `delay` after the previous run finished.
 */
export type Trigger =
  /** `dst` is absent for the default, `once-per-day`. */
  | { kind: 'cron'; cron: string; timezone: string; dst?: 'literal' }
  | { kind: 'every'; every: number; anchor: number }
  | { kind: 'delay'; delay: number }
  | { kind: 'at'; at: number }
  | { kind: 'manual' }
  | { kind: 'after'; job: string; on: DependencyCondition };

const MIN_INTERVAL_MS = 1000;

/** Validates a trigger from outside; throws INVALID_CRON, INVALID_TIMEZONE, INVALID_DURATION or INVALID_TRIGGER. */
export function compileTrigger(spec: TriggerSpec): Trigger {
  checkFields(spec);
  switch (spec.kind) {
    case 'cron': {
      const timezone = spec.timezone ?? 'UTC';
      assertTimezone(timezone);
      const cron = spec.cron.trim().replace(/\s+/g, ' ');
      checkCronFields(cron, spec.cron);
      let schedule: Cron;
      try {
        schedule = cronFor(cron, timezone).cron;
      } catch (error) {
        throw new KairosError(
          'INVALID_CRON',
          `invalid cron expression ${JSON.stringify(spec.cron)}: ${(error as Error).message}`,
        );
      }
      // A pattern such as '0 0 30 2 *' parses but never fires; croner answers null for it.
      if (schedule.nextRun(new Date(0)) === null) {
        throw new KairosError('INVALID_CRON', `cron expression ${JSON.stringify(spec.cron)} never fires`);
      }
      const dst = compileDst(spec.dst);
      return dst === 'literal' ? { kind: 'cron', cron, timezone, dst } : { kind: 'cron', cron, timezone };
    }
    case 'every':
      return {
        kind: 'every',
        every: parseDuration(spec.every, 'trigger.every', { min: MIN_INTERVAL_MS }),
        anchor: spec.startAt === undefined ? 0 : parseInstant(spec.startAt, 'trigger.startAt'),
      };
    case 'delay':
      return { kind: 'delay', delay: parseDuration(spec.delay, 'trigger.delay', { min: 0 }) };
    case 'at':
      return { kind: 'at', at: parseInstant(spec.at, 'trigger.at') };
    case 'manual':
      return { kind: 'manual' };
    case 'after':
      return compileAfter(spec.job, spec.on);
    default:
      throw new KairosError(
        'INVALID_TRIGGER',
        `unknown trigger kind ${JSON.stringify((spec as { kind: unknown }).kind)}`,
      );
  }
}

/** The wire form of a compiled trigger: what the API returns and accepts back unchanged. */
export function describeTrigger(trigger: Trigger): TriggerSpec {
  switch (trigger.kind) {
    case 'every':
      return trigger.anchor === 0
        ? { kind: 'every', every: trigger.every }
        : { kind: 'every', every: trigger.every, startAt: new Date(trigger.anchor).toISOString() };
    case 'at':
      return { kind: 'at', at: new Date(trigger.at).toISOString() };
    default:
      return { ...trigger };
  }
}

/**
 * The first fire of a trigger that starts now: the next cron or rate instant after `now`,
 * the `at` instant (even a past one: it fires once, late), or `now` for a fixed delay.
 */
export function firstFire(trigger: Trigger, now: number): number | null {
  switch (trigger.kind) {
    case 'delay':
      return now;
    case 'at':
      return trigger.at;
    default:
      return nextFireAfter(trigger, now);
  }
}

/**
 * The first fire time strictly after `after`, or null when the trigger has none on its own
 * (manual, one-shot, and fixed delay, whose next fire is set when the previous run finishes).
 *
 * Cron follows croner's DST rule (the Vixie cron rule) by default: a fixed-time job (no wildcard or
 * step in its second, minute and hour fields) fires once per local day, at the first valid instant
 * after a spring-forward gap and at the first occurrence of a repeated fall-back time; other jobs
 * follow absolute time, skipping instants that do not exist and firing on both occurrences of
 * repeated ones. With `dst: 'literal'` every job follows that second rule.
 */
export function nextFireAfter(trigger: Trigger, after: number): number | null {
  switch (trigger.kind) {
    case 'cron': {
      // Jobs that share a pattern are usually due together (a top-of-the-minute storm): croner
      // answers once per instant, the rest of the storm reads the answer (~80 µs saved per job).
      const pattern = trigger.dst === 'literal' ? literalPattern(trigger.cron) : trigger.cron;
      const entry = cronFor(pattern, trigger.timezone);
      if (entry.after !== after) {
        entry.next = entry.cron.nextRun(new Date(after))?.getTime() ?? null;
        entry.after = after;
      }
      return entry.next;
    }
    case 'every': {
      if (after < trigger.anchor) return trigger.anchor;
      const periods = Math.floor((after - trigger.anchor) / trigger.every) + 1;
      return trigger.anchor + periods * trigger.every;
    }
    default:
      return null;
  }
}

/**
 * The latest cron fire strictly before `before`, or null; croner searches backwards, and the answer
 * is checked against {@link nextFireAfter} (nothing between it and `before`) so that both
 * directions agree under every DST rule. Null also when the check fails: the caller then searches
 * with `nextFireAfter` alone.
 */
export function previousCronFire(
  trigger: Extract<Trigger, { kind: 'cron' }>,
  before: number,
): { fire: number | null; checked: boolean } {
  const pattern = trigger.dst === 'literal' ? literalPattern(trigger.cron) : trigger.cron;
  const [previous] = cronFor(pattern, trigger.timezone).cron.previousRuns(1, new Date(before));
  if (!previous) return { fire: null, checked: false };
  const fire = previous.getTime();
  if (fire >= before) return { fire: null, checked: false };
  const after = nextFireAfter(trigger, fire);
  return after === null || after >= before ? { fire, checked: true } : { fire: null, checked: false };
}

/** Whether a trigger fires again and again on its own (only those can misfire and be skipped). */
export function isRecurring(trigger: Trigger): trigger is Extract<Trigger, { kind: 'cron' | 'every' }> {
  return trigger.kind === 'cron' || trigger.kind === 'every';
}

const FIELDS: Record<Trigger['kind'], { required: string[]; optional: string[] }> = {
  cron: { required: ['cron'], optional: ['timezone', 'dst'] },
  every: { required: ['every'], optional: ['startAt'] },
  delay: { required: ['delay'], optional: [] },
  at: { required: ['at'], optional: [] },
  manual: { required: [], optional: [] },
  after: { required: ['job'], optional: ['on'] },
};

function checkFields(spec: TriggerSpec): void {
  const fields = FIELDS[spec.kind];
  if (!fields) {
    throw new KairosError(
      'INVALID_TRIGGER',
      `trigger.kind: expected cron, every, delay, at, manual or after, got ${JSON.stringify(spec.kind)}`,
    );
  }
  const given = Object.keys(spec).filter((key) => key !== 'kind');
  const missing = fields.required.filter((key) => !given.includes(key));
  const extra = given.filter((key) => !fields.required.includes(key) && !fields.optional.includes(key));
  if (missing.length > 0 || extra.length > 0) {
    const problems = [
      ...missing.map((key) => `trigger.${key} is required`),
      ...extra.map((key) => `trigger.${key} does not apply`),
    ];
    throw new KairosError('INVALID_TRIGGER', `a ${spec.kind} trigger: ${problems.join(', ')}`, {
      kind: spec.kind,
      missing,
      extra,
    });
  }
}

/**
 * What croner would accept beyond the cron we document: `?` outside day-of-month and day-of-week
 * (read there as "any", and as the current time elsewhere: `?/5` fires from now on), and croner's
 * `+` day-of-week modifier (which turns the day fields from OR into AND). Nicknames (`@daily`)
 * pass to croner.
 */
function checkCronFields(cron: string, original: string): void {
  if (cron.startsWith('@')) return;
  const fields = cron.split(' ');
  // Day-of-month and day-of-week are the 3rd and 5th of five fields, 4th and 6th of six.
  const days = fields.length === 6 ? [3, 5] : [2, 4];
  fields.forEach((field, i) => {
    const wrong = field.includes('+') || (field.includes('?') && !(field === '?' && days.includes(i)));
    if (wrong) {
      throw new KairosError(
        'INVALID_CRON',
        `invalid cron expression ${JSON.stringify(original)}: field ${i + 1} (${field}): "?" stands alone in the day fields only, and "+" is not cron`,
      );
    }
  });
}

export function parseInstant(value: string, field: string): number {
  const ms = parseRfc3339(value);
  if (ms === null) {
    throw new KairosError(
      'INVALID_TRIGGER',
      `${field}: expected an RFC 3339 instant with an offset, such as 2030-01-01T09:00:00Z, got ${JSON.stringify(value)}`,
      { field },
    );
  }
  return ms;
}

function assertTimezone(timezone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new KairosError(
      'INVALID_TIMEZONE',
      `unknown time zone ${JSON.stringify(timezone)}: use an IANA name such as Europe/Berlin`,
    );
  }
}

/** A parsed pattern, with the last instant it was asked about and its answer. */
interface CachedCron {
  cron: Cron;
  after: number;
  next: number | null;
}

// Parsing a pattern costs far more than asking it for the next run; jobs share few patterns.
const cronCache = new Map<string, CachedCron>();
const CRON_CACHE_LIMIT = 10_000;

function cronFor(pattern: string, timezone: string): CachedCron {
  const key = `${timezone} ${pattern}`;
  let entry = cronCache.get(key);
  if (!entry) {
    // A fixed offset skips croner's Intl-based zone conversion: ten times faster, and UTC has no DST.
    const zone = timezone === 'UTC' ? { utcOffset: 0 } : { timezone };
    const cron = new Cron(pattern, {
      ...zone,
      mode: '5-or-6-parts',
      fixedTimeRule: 'no-wildcard',
      paused: true,
    });
    entry = { cron, after: Number.NaN, next: null };
    if (cronCache.size >= CRON_CACHE_LIMIT) cronCache.delete(cronCache.keys().next().value!);
    cronCache.set(key, entry);
  }
  return entry;
}

function compileDst(dst: DstPolicy | undefined): DstPolicy {
  if (dst === undefined || dst === 'once-per-day' || dst === 'literal') return dst ?? 'once-per-day';
  throw new KairosError(
    'INVALID_TRIGGER',
    `trigger.dst: expected once-per-day or literal, got ${JSON.stringify(dst)}`,
    { field: 'trigger.dst' },
  );
}

const MACROS: Record<string, string> = {
  '@yearly': '0 0 0 1 1 *',
  '@annually': '0 0 0 1 1 *',
  '@monthly': '0 0 0 1 * *',
  '@weekly': '0 0 0 * * 0',
  '@daily': '0 0 0 * * *',
  '@midnight': '0 0 0 * * *',
  '@hourly': '0 0 * * * *',
};

/**
 * The same pattern, made a croner "interval" job so that it follows absolute time across DST
 * (skip a time that does not exist, fire on both occurrences of a repeated one). croner classes a
 * pattern as fixed-time when its second, minute and hour fields have no wildcard or step; a step
 * of 1 on each second value (`0` → `0-0/1`) keeps the values and drops that class.
 */
export function literalPattern(cron: string): string {
  const fields = (MACROS[cron.toLowerCase()] ?? cron).split(' ');
  if (fields.length === 5) fields.unshift('0');
  const seconds = fields[0]!;
  if (!/[*?/]/.test(seconds)) {
    fields[0] = seconds
      .split(',')
      .map((part) => (part.includes('-') ? `${part}/1` : `${part}-${part}/1`))
      .join(',');
  }
  return fields.join(' ');
}

const JOB_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const CONDITIONS: readonly DependencyCondition[] = ['success', 'failure', 'always'];

function compileAfter(job: string, on: DependencyCondition | undefined): Trigger {
  if (typeof job !== 'string' || !JOB_NAME.test(job)) {
    throw new KairosError('INVALID_TRIGGER', 'trigger.job: expected the name of the parent job', {
      field: 'trigger.job',
    });
  }
  if (on !== undefined && !CONDITIONS.includes(on)) {
    throw new KairosError('INVALID_TRIGGER', 'trigger.on: expected success, failure or always', {
      field: 'trigger.on',
    });
  }
  return { kind: 'after', job, on: on ?? 'success' };
}
