import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers.ts';
import { compileJob } from '../../core/job.ts';
import type { ClaimedRun, StoreEvent } from '../store.ts';
import { SqliteStore } from './sqlite-store.ts';

// A trigger's hand-off whose claim fails (here: a job's routing state that does not parse) rolls back
// the claim's savepoint only: the trigger is written and answered, its event goes out, and the poll
// is given nothing (it claims again itself, where the failure is its own to report).

const dir = tempDir();
let store: SqliteStore | undefined;
afterEach(async () => {
  await store?.close();
});

it('a hand-off whose claim fails leaves the trigger written, queued, with its event', async () => {
  const path = join(dir, 'hand-off.db');
  store = new SqliteStore(path);
  await store.migrate();
  const T0 = Date.UTC(2026, 0, 1);
  await store.registerWorker(
    {
      id: 'w1',
      name: 'w1',
      group: 'default',
      handlers: ['h'],
      capacity: 4,
      labels: {},
      version: '',
      host: '',
    },
    60_000,
    T0,
  );
  const job = await store.createJob(
    compileJob({
      name: 'rr',
      handler: 'h',
      trigger: { kind: 'manual' },
      routing: { strategy: 'round-robin' },
    }),
    null,
    T0,
  );
  const side = new Database(path);
  side.prepare('INSERT INTO job_routing (job_id, state) VALUES (?, ?)').run(job.id, 'not json');
  side.close();
  const events: StoreEvent[] = [];
  store.subscribe((event) => {
    if (event.type === 'runs') events.push(event);
  });
  const given: ClaimedRun[][] = [];
  const handOff = {
    take: () => ({
      workerId: 'w1',
      max: 4,
      seq: null,
      random: 0,
      give: (runs: ClaimedRun[]) => given.push(runs),
    }),
  };
  const run = await store.triggerRun(
    'rr',
    { params: null, priority: null },
    T0 + 10,
    undefined,
    undefined,
    handOff,
  );
  expect(run).toMatchObject({ status: 'queued', attempt: 0, workerId: null });
  expect(await store.getRun(run!.id)).toEqual(run);
  expect(given).toEqual([[]]);
  expect(events).toEqual([{ type: 'runs', group: 'default' }]);
  // The claim fails on its own too: the poll's own claim reports it.
  await expect(store.dispatchRuns('w1', 4, T0 + 20, 0)).rejects.toThrow();
});
