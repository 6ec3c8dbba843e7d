import { KairosError } from '../errors.ts';
import { nextFireAfter, type Trigger } from './trigger.ts';

export const BACKFILL_DEFAULT_MAX = 100;
export const BACKFILL_MAX_LIMIT = 1000;

/**
 * The fire times of a backfill: every fire of the trigger in `[from, to]`, oldest first, at most
 * `max` of them (walking at most `max + 1` fires, whatever the range); `nextFrom` is the first fire
 * left out. `to` may not be in the future: the schedule owns those fires.
 */
export function backfillFires(
  trigger: Trigger,
  from: number,
  to: number,
  max: number,
  now: number,
): { fires: number[]; nextFrom: number | null } {
  if (to < from) throw invalid('to', 'an instant not before from');
  if (to > now) throw invalid('to', 'an instant not in the future (the schedule fires those)');
  if (!Number.isInteger(max) || max < 1 || max > BACKFILL_MAX_LIMIT) {
    throw invalid('max', `a whole number from 1 to ${BACKFILL_MAX_LIMIT}`);
  }
  if (trigger.kind !== 'cron' && trigger.kind !== 'every' && trigger.kind !== 'at') {
    throw new KairosError(
      'INVALID_TRIGGER',
      `a ${trigger.kind} job has no fire times to backfill; trigger it with POST /v1/jobs/:name/trigger`,
    );
  }
  const fires: number[] = [];
  let next =
    trigger.kind === 'at' ? (trigger.at >= from ? trigger.at : null) : nextFireAfter(trigger, from - 1);
  while (next !== null && next <= to) {
    if (fires.length === max) return { fires, nextFrom: next };
    fires.push(next);
    next = trigger.kind === 'at' ? null : nextFireAfter(trigger, next);
  }
  return { fires, nextFrom: null };
}

function invalid(field: string, expected: string): KairosError {
  return new KairosError('VALIDATION_FAILED', `${field}: expected ${expected}`, { field });
}
