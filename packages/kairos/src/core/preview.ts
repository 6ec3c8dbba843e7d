import type { FirePreview, Preview, PreviewSkip } from '@kairos/client';
import { type CalendarDefinition, exclusionOf } from './calendar.ts';
import { jitterOf } from './jitter.ts';
import type { SchedulePolicy } from './schedule-policy.ts';
import { nextFireAfter, type Trigger } from './trigger.ts';

export const PREVIEW_LIMIT = 100;
/** Excluded days and fires listed at most (a calendar that excludes everything ends the preview). */
const SKIPPED_LIMIT = 100;

export interface PreviewJob {
  /** Seeds the jitter; absent for a spec that is not saved (its runs show no jitter). */
  id?: number | undefined;
  trigger: Trigger;
  schedule: SchedulePolicy;
  runsFired?: number | undefined;
  calendars?: readonly CalendarDefinition[] | undefined;
}

/**
 * The next `count` fires of a job after `from`, as the trigger loop will fire them: the window and
 * the run cap end the list, jitter shifts each run, and a cron job's fires that its DST rule
 * changes are marked; an excluded day or period is listed once, by its first fire. The other DST rule is computed alongside: a fire only one rule has is
 * either moved or repeated (ours has it) or dropped (the other has it: listed in `skipped`).
 * Fixed-delay jobs have no fire to preview: each comes when the previous run ends.
 */
export function previewFires(job: PreviewJob, from: number, count: number): Preview {
  const { trigger, schedule } = job;
  const fires: FirePreview[] = [];
  const skipped: PreviewSkip[] = [];
  const other = otherDstRule(trigger);
  let previous = from;
  let next: number | null =
    trigger.kind === 'at'
      ? trigger.at > from
        ? trigger.at
        : null
      : nextFireAfter(trigger, schedule.startAt === null ? from : Math.max(from, schedule.startAt - 1));
  const runsLeft =
    schedule.maxRuns === null ? Number.POSITIVE_INFINITY : schedule.maxRuns - (job.runsFired ?? 0);
  while (next !== null && fires.length < count) {
    if (schedule.endAt !== null && next > schedule.endAt) {
      skipped.push({ fireTime: iso(next), reason: 'outside-window' });
      break;
    }
    if (fires.length >= runsLeft) {
      skipped.push({ fireTime: iso(next), reason: 'max-runs' });
      break;
    }
    const at = next;
    const exclusion = (job.calendars ?? []).map((c) => exclusionOf(c, at)).find((e) => e !== null);
    if (exclusion) {
      // One entry per excluded day or period (its first fire), then past it, as the trigger loop does.
      if (skipped.length >= SKIPPED_LIMIT) break;
      skipped.push({ fireTime: iso(next), reason: 'calendar' });
      previous = next;
      next = trigger.kind === 'at' ? null : nextFireAfter(trigger, Math.max(next, exclusion.until - 1));
      continue;
    }
    const fire: FirePreview = {
      fireTime: iso(next),
      runAt: iso(next + (job.id === undefined ? 0 : jitterOf(job.id, next, schedule.jitterMs))),
    };
    if (other) {
      for (let o = nextFireAfter(other, previous); o !== null && o < next; o = nextFireAfter(other, o)) {
        skipped.push({ fireTime: iso(o), reason: 'dst' });
      }
      if (nextFireAfter(other, next - 1) !== next) {
        fire.note = trigger.kind === 'cron' && trigger.dst === 'literal' ? 'dst-repeated' : 'dst-moved';
      }
    }
    fires.push(fire);
    previous = next;
    next = trigger.kind === 'at' ? null : nextFireAfter(trigger, next);
  }
  return { fires, skipped };
}

function otherDstRule(trigger: Trigger): Trigger | null {
  if (trigger.kind !== 'cron') return null;
  return trigger.dst === 'literal'
    ? { kind: 'cron', cron: trigger.cron, timezone: trigger.timezone }
    : { ...trigger, dst: 'literal' };
}

const iso = (ms: number): string => new Date(ms).toISOString();
