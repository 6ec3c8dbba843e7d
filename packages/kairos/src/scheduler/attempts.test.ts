import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../../test/test-database.ts';
import { PostgresStore } from '../store/postgres/postgres-store.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import type { Store } from '../store/store.ts';
import { AttemptEnder } from './attempts.ts';
import { FakeClock } from './clock.ts';
import { JobService } from './job-service.ts';

afterAll(dropTestSchemas);

const dir = tempDir();
let n = 0;
const DIALECTS: Array<[string, () => Store]> = [
  ['sqlite', () => new SqliteStore(join(dir, `attempts-${n++}.db`))],
  ['postgres', () => new PostgresStore({ connectionString: testDatabaseUrl(), schema: testSchema() })],
];

// Successes are written without reading their runs first: the write's fence alone decides.
for (const [dialect, open] of DIALECTS) {
  describe(`AttemptEnder reports on ${dialect}`, () => {
    const LEASE = 5000;
    let store: Store;
    let clock: FakeClock;
    let jobs: JobService;
    let ender: AttemptEnder;

    beforeEach(async () => {
      store = open();
      await store.migrate();
      clock = new FakeClock();
      jobs = new JobService(store, clock);
      ender = new AttemptEnder(store, () => 0);
      await store.registerWorker(
        {
          id: 'w1',
          name: 'w1',
          group: 'default',
          handlers: ['h'],
          capacity: 9,
          labels: {},
          version: '',
          host: '',
        },
        LEASE,
        clock.now(),
      );
    });
    afterEach(() => store.close());

    async function claimed(name: string, retry = { maxAttempts: 3, delay: '1s', jitter: false }) {
      await jobs.create({ name, handler: 'h', trigger: { kind: 'manual' }, retry });
      const [runId] = await jobs.trigger(name, [{}]);
      const [claim] = await store.dispatchRuns('w1', 1, clock.now(), 0);
      expect(claim).toMatchObject({ runId, attempt: 1 });
      return runId!;
    }

    it('a success applies once: a repeat in the batch, an older attempt and an ended run are stale', async () => {
      const a = await claimed('a');
      const b = await claimed('b');
      const results = await ender.report(
        [
          { runId: a, attempt: 1, outcome: 'succeeded', result: 'first' },
          { runId: a, attempt: 1, outcome: 'succeeded', result: 'repeat' },
          { runId: b, attempt: 2, outcome: 'succeeded', result: 'not yet' },
        ],
        clock.now(),
      );
      expect(results).toEqual([
        { runId: a, attempt: 1, ok: true },
        { runId: a, attempt: 1, ok: false, code: 'ATTEMPT_STALE' },
        { runId: b, attempt: 2, ok: false, code: 'ATTEMPT_STALE' },
      ]);
      expect(await store.getRun(a)).toMatchObject({ status: 'succeeded', result: 'first' });
      expect(await store.getRun(b)).toMatchObject({ status: 'running', attempt: 1 });
      // The run ended: its attempt's success again changes nothing.
      expect(
        await ender.report([{ runId: a, attempt: 1, outcome: 'succeeded', result: 'again' }], clock.now()),
      ).toEqual([{ runId: a, attempt: 1, ok: false, code: 'ATTEMPT_STALE' }]);
      expect(await store.getRun(a)).toMatchObject({ status: 'succeeded', result: 'first' });
    });

    it('a batch of a success and a failure: the failure is retried by its policy, the success ends its run', async () => {
      const ok = await claimed('ok');
      const bad = await claimed('bad');
      const results = await ender.report(
        [
          { runId: bad, attempt: 1, outcome: 'failed', error: { name: 'E', message: 'boom' } },
          { runId: ok, attempt: 1, outcome: 'succeeded', result: 1 },
        ],
        clock.now(),
      );
      expect(results.map((r) => r.ok)).toEqual([true, true]);
      expect(await store.getRun(ok)).toMatchObject({ status: 'succeeded', result: 1 });
      // delay 1 s, no jitter: available again a second later.
      expect(await store.getRun(bad)).toMatchObject({
        status: 'queued',
        attempt: 1,
        availableAt: clock.now() + 1000,
      });
      expect((await store.getAttempts(ok)).map((x) => x.status)).toEqual(['succeeded']);
      expect((await store.getAttempts(bad)).map((x) => x.status)).toEqual(['failed']);
    });
  });
}
