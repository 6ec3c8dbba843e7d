// The order of the contestants in each repetition of a comparison: the rows of a random Latin square,
// drawn from a seed that the result records. Over every `n` repetitions (n contestants) each contestant
// runs once in each position, so none always runs first on a cold machine; and as each row is drawn at
// random, no contestant always follows the same neighbour, as it did when each repetition was the
// previous one rotated by one.

/** A pseudo-random generator of numbers in [0, 1) from a 32-bit seed (mulberry32). */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** A shuffled copy of `items` (Fisher–Yates with `next`). */
function shuffle<T>(items: readonly T[], next: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * The order of `names` in each of `reps` repetitions. Each block of `names.length` repetitions is a
 * Latin square: every repetition is a random order, drawn again while it would put a contestant in a
 * position it already held in the block (a partial Latin square can always be completed, so the draw
 * ends). The same seed gives the same orders.
 */
export function contestantOrders(names: readonly string[], reps: number, seed: number): string[][] {
  const next = random(seed);
  const orders: string[][] = [];
  while (orders.length < reps) {
    const block = orders.slice(orders.length - (orders.length % names.length));
    let order = shuffle(names, next);
    while (order.some((name, position) => block.some((row) => row[position] === name)))
      order = shuffle(names, next);
    orders.push(order);
  }
  return orders;
}

/** A seed for {@link contestantOrders} when none is given. */
export function newSeed(): number {
  return Math.floor(Math.random() * 2 ** 32);
}
