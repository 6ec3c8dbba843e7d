import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../../test/test-database.ts';
import { compileJob } from '../core/job.ts';
import { PostgresStore } from '../store/postgres/postgres-store.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import type { Store } from '../store/store.ts';
import { systemClock } from './clock.ts';
import { Dispatcher } from './dispatcher.ts';

const dir = tempDir();
let n = 0;
afterAll(dropTestSchemas);

const dialects: Array<[string, () => Store]> = [
  ['sqlite', () => new SqliteStore(join(dir, `dispatcher-${n++}.db`))],
  ['postgres', () => new PostgresStore({ connectionString: testDatabaseUrl(), schema: testSchema() })],
];

// Long polls and runs fired ahead, on the real clock: what is measured is when a waiting poll wakes.
describe.each(dialects)('Dispatcher, fire ahead: %s', (_dialect, open) => {
  let store: Store;
  let dispatcher: Dispatcher;

  afterEach(async () => {
    dispatcher.close();
    await store.close();
  });

  async function setUp() {
    store = open();
    await store.migrate();
    // A backstop far beyond the test: only events and run instants may wake a poll.
    dispatcher = new Dispatcher({
      store,
      clock: systemClock,
      pollWaitMs: 30_000,
      // A window wide enough that a loaded machine fires, and polls, well before the instant.
      fireAheadMs: 5000,
      backstopMs: 60_000,
    });
    for (const id of ['holder', 'plain'])
      await store.registerWorker(
        { id, name: id, group: 'default', handlers: ['h'], capacity: 4, labels: {}, version: '', host: '' },
        5000,
        Date.now(),
      );
  }

  /** Fires a job ahead, as the trigger loop does: its runs become available at `fires`. */
  async function fireAhead(name: string, fires: number[]) {
    const job = await store.createJob(
      compileJob({ name, handler: 'h', trigger: { kind: 'every', every: '1s' } }),
      fires[0]!,
      Date.now(),
    );
    await store.fire(
      [{ jobId: job.id, expected: fires[0]!, next: fires[fires.length - 1]! + 1000, fires }],
      null,
      Date.now(),
    );
  }

  it('runs fired ahead wake a waiting poll with ahead; a poll without ahead wakes at their instant', async () => {
    await setUp();
    const never = new AbortController().signal;
    const F = Date.now() + 1500;
    // Waiting before the fire: the store event of the fire wakes it, long before F.
    const holder = dispatcher.poll('holder', 4, 30_000, never, 1);
    const plain = dispatcher.poll('plain', 4, 30_000, never);
    await fireAhead('a', [F, F + 1]);
    const held = await holder;
    const heldAt = Date.now();
    expect(held.map((c) => c.startAt)).toEqual([F]);
    expect(heldAt).toBeLessThan(F);
    // The other run waits for its instant: the poll without ahead gets it then, not before.
    const due = await plain;
    const dueAt = Date.now();
    expect(due.map((c) => c.fireTime)).toEqual([F + 1]);
    expect(due[0]!.startAt).toBeUndefined();
    expect(dueAt).toBeGreaterThanOrEqual(F + 1);
    // Woken by its instant, not by the backstop (60 s); a wide margin, as a loaded machine's
    // PostgreSQL may take most of a second for the reads between (seen: 891 ms under CI).
    expect(dueAt - (F + 1)).toBeLessThan(10_000);
  });

  it('a poll takes runs ahead only when none is ready', async () => {
    await setUp();
    const never = new AbortController().signal;
    const now = Date.now();
    await fireAhead('ready', [now - 10]);
    await fireAhead('soon', [now + 3000]);
    const ready = await dispatcher.poll('holder', 2, 0, never, 5);
    expect(ready.map((c) => [c.fireTime, c.startAt])).toEqual([[now - 10, undefined]]);
    const held = await dispatcher.poll('holder', 2, 0, never, 5);
    expect(held.map((c) => [c.fireTime, c.startAt])).toEqual([[now + 3000, now + 3000]]);
  });
});
