// The producer loops, run inside the client process on the contestant's Client. Written once for all.
import type { Client, Payload } from './contestant.ts';
import { message, now, sleep } from './util.ts';

/** What a producer loop did. */
export interface Produced {
  /** Jobs whose enqueue call succeeded. */
  count: number;
  /** Wall time of the loop, from the first call to the last answer. */
  ms: number;
  errors: number;
  firstError?: string;
}

/** Enqueues `n` jobs numbered 0…n−1 through the bulk API, `size` per call, one call at a time. */
export async function bulk(client: Client, queue: string, n: number, size: number): Promise<Produced> {
  const start = now();
  for (let first = 0; first < n; first += size) {
    const payloads: Payload[] = [];
    for (let i = first; i < Math.min(n, first + size); i++) payloads.push({ i });
    await client.enqueueBulk(queue, payloads);
  }
  return { count: n, ms: now() - start, errors: 0 };
}

/** Enqueues jobs one by one, each call awaited before the next, for `seconds`. */
export async function flood(client: Client, queue: string, seconds: number): Promise<Produced> {
  const start = now();
  const end = start + seconds * 1000;
  const result: Produced = { count: 0, ms: 0, errors: 0 };
  for (let i = 0; now() < end; i++) {
    try {
      await client.enqueueOne(queue, { i, t: now() });
      result.count++;
    } catch (error) {
      result.errors++;
      result.firstError ??= message(error);
    }
  }
  result.ms = now() - start;
  return result;
}

/** Enqueues `rate` jobs per second for `seconds`, each at its due instant, without waiting for the
 * previous call to answer (a slow answer must not lower the rate). */
export async function paced(client: Client, queue: string, rate: number, seconds: number): Promise<Produced> {
  const result: Produced = { count: 0, ms: 0, errors: 0 };
  const calls: Array<Promise<void>> = [];
  const start = now();
  for (let i = 0; i < rate * seconds; i++) {
    const wait = start + (i * 1000) / rate - now();
    if (wait > 1) await sleep(wait);
    calls.push(
      client.enqueueOne(queue, { i, t: now() }).then(
        () => {
          result.count++;
        },
        (error: unknown) => {
          result.errors++;
          result.firstError ??= message(error);
        },
      ),
    );
  }
  await Promise.all(calls);
  result.ms = now() - start;
  return result;
}
