import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import { AttemptEnder } from './attempts.ts';
import { FakeClock } from './clock.ts';
import { Dispatcher } from './dispatcher.ts';
import { JobService } from './job-service.ts';
import { Reaper } from './reaper.ts';

const dir = tempDir();
let n = 0;

// The reaper's and the dispatcher's share of workers at scale, on a fake clock.
describe('Reaper and Dispatcher: schedule-to-start, draining', () => {
  let store: SqliteStore;
  let clock: FakeClock;
  let jobs: JobService;
  let reaper: Reaper;
  let dispatcher: Dispatcher;

  beforeEach(async () => {
    store = new SqliteStore(join(dir, `reaper-workers-${n++}.db`));
    await store.migrate();
    clock = new FakeClock();
    jobs = new JobService(store, clock);
    const ender = new AttemptEnder(store, () => 0);
    reaper = new Reaper({ store, clock, ender, logger: pino({ level: 'silent' }), intervalMs: 1000 });
    dispatcher = new Dispatcher({ store, clock, pollWaitMs: 0, random: () => 0 });
  });
  afterEach(async () => {
    dispatcher.close();
    await store.close();
  });

  async function register(id: string, labels: Record<string, string> = {}) {
    await store.registerWorker(
      { id, name: id, group: 'default', handlers: ['h'], capacity: 4, labels, version: '', host: '' },
      5000,
      clock.now(),
    );
  }

  it('a run no worker can take fails at its schedule-to-start timeout, not before', async () => {
    await jobs.create({
      name: 'eu',
      handler: 'h',
      trigger: { kind: 'manual' },
      routing: { strategy: 'any', selector: { region: 'eu' } },
      scheduleToStartTimeout: '10s',
    });
    const [runId] = await jobs.trigger('eu', [{}]);
    await register('us-1', { region: 'us' });
    const never = new AbortController().signal;
    expect(await dispatcher.poll('us-1', 4, 0, never)).toEqual([]);
    await clock.advance(9999);
    await reaper.tick();
    expect(await store.getRun(runId!)).toMatchObject({ status: 'queued' });
    await clock.advance(1);
    await reaper.tick();
    expect(await store.getRun(runId!)).toMatchObject({
      status: 'failed',
      error: { name: 'ScheduleToStartTimeout', message: expect.stringContaining('10s') },
    });
  });

  it('a draining worker’s poll answers nothing, and its assigned runs go to another worker', async () => {
    await jobs.create({
      name: 'first',
      handler: 'h',
      trigger: { kind: 'manual' },
      routing: { strategy: 'first' },
    });
    await register('a');
    await register('b');
    const never = new AbortController().signal;
    const [runId] = await jobs.trigger('first', [{}]);
    expect(await dispatcher.poll('b', 4, 0, never)).toEqual([]); // assigned to a
    await store.drainWorker('a', clock.now());
    expect(await dispatcher.poll('a', 4, 0, never)).toEqual([]);
    expect((await dispatcher.poll('b', 4, 0, never)).map((r) => r.runId)).toEqual([runId]);
  });
});
