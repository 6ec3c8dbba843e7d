import { describe, expect, it } from 'vitest';
import { contestantOrders } from './order.ts';

const NAMES = ['kairos', 'kairos-pg', 'pg-boss', 'graphile-worker', 'bullmq'];

describe('contestantOrders', () => {
  it('gives every repetition each contestant once', () => {
    for (const order of contestantOrders(NAMES, 7, 42)) expect([...order].sort()).toEqual([...NAMES].sort());
  });

  it('puts each contestant once in each position over n repetitions (a Latin square)', () => {
    const orders = contestantOrders(NAMES, NAMES.length, 7);
    for (let position = 0; position < NAMES.length; position++) {
      expect(new Set(orders.map((order) => order[position])).size).toBe(NAMES.length);
    }
  });

  it('gives the same orders for the same seed and other orders for another', () => {
    expect(contestantOrders(NAMES, 3, 1)).toEqual(contestantOrders(NAMES, 3, 1));
    const seeds = [1, 2, 3, 4, 5].map((seed) => JSON.stringify(contestantOrders(NAMES, 3, seed)));
    expect(new Set(seeds).size).toBeGreaterThan(1);
  });

  it('is not a rotation: a contestant follows different neighbours across repetitions', () => {
    const orders = contestantOrders(NAMES, NAMES.length, 3);
    const before = new Set(orders.map((order) => order[order.indexOf('kairos') - 1] ?? 'first'));
    expect(before.size).toBeGreaterThan(1);
  });
});
