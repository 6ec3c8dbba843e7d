// The `after` chain of a job (docs/schedules.md#dependencies): a job has one trigger, so its
// ancestors form a chain, walked here to its end. Pure: the store hands in the triggers it read
// inside the transaction that writes the job, under a lock that serializes dependency edits of
// the namespace, so two concurrent definitions cannot close a cycle between them.

import { KairosError } from '../errors.ts';
import type { Trigger } from './trigger.ts';

/**
 * Throws DEPENDENCY_CYCLE when job `name` with `trigger` would run after itself: each run would
 * set off the next forever. `triggerOf` answers the trigger of a job of the same namespace, or
 * undefined when there is none (a parent that does not exist yet is allowed: it fires nothing).
 *
 * @example checkDependencyChain('a', { kind: 'after', job: 'b' }, (n) => stored.get(n))
 */
export function checkDependencyChain(
  name: string,
  trigger: Trigger,
  triggerOf: (name: string) => Trigger | undefined,
): void {
  const chain = [name];
  let current: Trigger | undefined = trigger;
  while (current?.kind === 'after') {
    if (chain.includes(current.job)) {
      throw new KairosError(
        'DEPENDENCY_CYCLE',
        `${chain.join(' → ')} → ${current.job}: a job cannot run after itself`,
        { cycle: [...chain, current.job] },
      );
    }
    chain.push(current.job);
    current = triggerOf(current.job);
  }
}
