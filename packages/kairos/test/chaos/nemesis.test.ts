import { describe, expect, it } from 'vitest';
import { type FaultKind, planFaults } from './nemesis.ts';

describe('the nemesis plan', () => {
  const kinds: FaultKind[] = ['node-kill', 'worker-stop', 'db-restart', 'poison'];

  it('is the same for the same seed and differs for another', () => {
    expect(planFaults(7, kinds, 60_000, [2000, 5000])).toEqual(planFaults(7, kinds, 60_000, [2000, 5000]));
    expect(planFaults(8, kinds, 60_000, [2000, 5000])).not.toEqual(
      planFaults(7, kinds, 60_000, [2000, 5000]),
    );
  });

  it('injects every kind once per round, within the run, each within its duration range', () => {
    const plan = planFaults(3, kinds, 60_000, [2000, 5000]);
    expect(new Set(plan.slice(0, kinds.length).map((f) => f.kind))).toEqual(new Set(kinds));
    for (const fault of plan) {
      expect(fault.at).toBeLessThan(60_000);
      expect(fault.at + fault.ms).toBeLessThanOrEqual(60_000);
    }
    expect(plan.find((f) => f.kind === 'worker-stop')!.ms).toBeGreaterThanOrEqual(1000);
  });
});
