import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../../../test/test-database.ts';
import { compileJob } from '../../core/job.ts';
import { PostgresStore } from './postgres-store.ts';

afterAll(dropTestSchemas);

// Four nodes' stores claim from one queue at once while another session keeps writing new versions
// of queued rows (a priority rewrite, as a job edit or a promotion does). A claim locks its runs
// SKIP LOCKED: whatever the interleaving, each run is handed out once, to the worker whose row then
// holds it, and none is lost.
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
      await rewrite;
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

  // A run that another claim holds is passed over, and what the claim takes instead is what it may
  // take: another job's ready run (not nothing), never a run whose own request the worker cannot meet.
  describe('a claim past a run another claim holds', () => {
    const schema = testSchema();
    const url = testDatabaseUrl();
    const store = new PostgresStore({ connectionString: url, schema });
    const other = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });

    async function job(name: string) {
      return store.createJob(
        compileJob({ name, handler: 'h', trigger: { kind: 'manual' } }),
        null,
        Date.now(),
      );
    }
    async function enqueue(jobId: number, priority: number): Promise<number> {
      const [id] = await store.enqueueRuns(jobId, [{ params: {}, priority }], Date.now());
      return id!;
    }

    afterAll(async () => {
      await other.end().catch(() => undefined);
      await store.close();
    });

    it('takes another job’s ready run, and leaves a run that requests resources to the planner', async () => {
      await store.migrate();
      await other.connect();
      await store.registerWorker(
        {
          id: 'w',
          name: 'w',
          group: 'default',
          handlers: ['h'],
          capacity: 1,
          labels: {},
          version: '',
          host: 'h',
        },
        600_000,
        Date.now(),
      );
      const a = await job('held-first');
      const b = await job('ready-other');
      const held = await enqueue(a.id, 9);
      const big = await enqueue(a.id, 5);
      await other.query(`UPDATE runs SET resources = '{"gpu":4}' WHERE id = $1`, [big]);
      const ready = await enqueue(b.id, 0);
      await other.query('BEGIN');
      await other.query('SELECT id FROM runs WHERE id = $1 FOR UPDATE', [held]);
      try {
        const claimed = await store.dispatchRuns('w', 1, Date.now(), 0.5);
        expect(claimed.map((run) => run.runId)).toEqual([ready]);
      } finally {
        await other.query('ROLLBACK');
      }
      const { rows } = await other.query<{ id: string; status: string }>(
        'SELECT id, status FROM runs WHERE id = ANY($1) ORDER BY id',
        [[held, big]],
      );
      expect(rows.map((row) => row.status)).toEqual(['queued', 'queued']);
    });
  });
});
