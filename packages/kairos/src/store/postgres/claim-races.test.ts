import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../../../test/test-database.ts';
import { compileJob } from '../../core/job.ts';
import { PostgresStore } from './postgres-store.ts';

afterAll(dropTestSchemas);

// Four nodes' stores claim from one queue at once while another session keeps writing new versions
// of queued rows (a priority rewrite, as a job edit or a promotion does). A claim locks its runs
// SKIP LOCKED and updates them by the ctid the lock returned: whatever the interleaving, each run is
// handed out once, to the worker whose row then holds it, and none is lost.
describe('PostgreSQL: claims racing each other and writers of queued runs', () => {
  it('hand every run out exactly once', async () => {
    const schema = testSchema();
    const url = testDatabaseUrl();
    const stores = Array.from({ length: 4 }, () => new PostgresStore({ connectionString: url, schema }));
    const writer = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
    try {
      await stores[0]!.migrate();
      const job = await stores[0]!.createJob(
        compileJob({ name: 'raced', handler: 'h', trigger: { kind: 'manual' } }),
        null,
        Date.now(),
      );
      const total = 2000;
      await stores[0]!.enqueueRuns(
        job.id,
        Array.from({ length: total }, () => ({ params: {}, priority: 0 })),
        Date.now(),
      );
      for (const [i, store] of stores.entries()) {
        await store.registerWorker(
          {
            id: `w${i}`,
            name: `w${i}`,
            group: job.group,
            handlers: ['h'],
            capacity: 50,
            labels: {},
            version: '',
            host: 'h',
          },
          600_000,
          Date.now(),
        );
      }
      await writer.connect();
      const claimedBy = new Map<number, string>();
      const duplicates: number[] = [];
      // Until every run is out (a claim may find the last ones locked by the writer: it comes back).
      const deadline = Date.now() + 60_000;
      const claiming = () => claimedBy.size < total && Date.now() < deadline;
      const rewrite = (async () => {
        let rounds = 0;
        while (claiming()) {
          await writer.query(`UPDATE runs SET priority = priority WHERE status = 'queued' AND id % 3 = $1`, [
            rounds % 3,
          ]);
          rounds++;
        }
        return rounds;
      })();
      await Promise.all(
        stores.map(async (store, i) => {
          while (claiming()) {
            const runs = await store.dispatchRuns(`w${i}`, 50, Date.now(), 0.5);
            if (runs.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
            for (const run of runs) {
              if (claimedBy.has(run.runId)) duplicates.push(run.runId);
              claimedBy.set(run.runId, `w${i}`);
            }
          }
        }),
      );
      expect(await rewrite).toBeGreaterThan(0);
      expect(duplicates).toEqual([]);
      expect(claimedBy.size).toBe(total);
      const { rows } = await writer.query<{ id: string; worker_id: string; status: string; attempt: number }>(
        'SELECT id, worker_id, status, attempt FROM runs',
      );
      expect(rows).toHaveLength(total);
      for (const row of rows) {
        expect(row).toMatchObject({
          status: 'running',
          attempt: 1,
          worker_id: claimedBy.get(Number(row.id)),
        });
      }
    } finally {
      await writer.end().catch(() => undefined);
      await Promise.all(stores.map((store) => store.close()));
    }
  }, 120_000);
});
