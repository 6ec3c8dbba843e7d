import { describe, expect, it, vi } from 'vitest';
import { planFires } from './fire-plan.ts';
import { compileSchedule } from './schedule-policy.ts';
import * as trigger from './trigger.ts';

// Every call of the trigger math, counted where the plan and the searches make it.
vi.mock('./trigger.ts', async (importOriginal) => {
  const actual = await importOriginal<typeof import('./trigger.ts')>();
  return { ...actual, nextFireAfter: vi.fn(actual.nextFireAfter) };
});

const T0 = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;
const options = { misfireGraceMs: 60_000, maxFires: 100 };

function callsFor(policy: 'skip' | 'run-once' | 'catch-up', downMs: number): number {
  const calls = vi.mocked(trigger.nextFireAfter);
  calls.mockClear();
  const perSecond = trigger.compileTrigger({ kind: 'cron', cron: '* * * * * *' });
  const schedule = compileSchedule({ misfire: { policy } });
  planFires({ id: 1, trigger: perSecond, schedule }, T0, T0 + downMs, options);
  return calls.mock.calls.length;
}

describe('misfire planning never walks the missed fires', () => {
  it.each(['skip', 'run-once', 'catch-up'] as const)(
    '%s: a per-second cron job down a day or a year',
    (policy) => {
      const day = callsFor(policy, DAY); // 86 400 missed fires
      const year = callsFor(policy, 365 * DAY); // 31 536 000 missed fires
      // Bounded by the grace (60 on-time fires), the count limit (100) and O(log) searches.
      expect(day).toBeLessThan(700);
      expect(year).toBeLessThan(day + 200);
    },
  );
});
