import { join } from 'node:path';
import type { JobSpec, RunStatus } from '@kairos/client';
import Database from 'better-sqlite3';
import pg from 'pg';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../../test/test-database.ts';
import { compileJob } from '../core/job.ts';
import type { RetentionConfig } from '../core/retention.ts';
import { compileWorkflow } from '../core/workflow.ts';
import { PostgresStore } from '../store/postgres/postgres-store.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import type { AttemptOutcome, Store } from '../store/store.ts';
import { FakeClock } from './clock.ts';
import { JobService } from './job-service.ts';
import { type PruneCounts, Pruner } from './pruner.ts';
import { TriggerLoop } from './trigger-loop.ts';

afterAll(dropTestSchemas);

const dir = tempDir();
const logger = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
let n = 0;

/** A store of the dialect and a way to count a table's rows behind its back (a probe, not the contract). */
interface Opened {
  store: Store;
  count(table: string): Promise<number>;
  close(): Promise<void>;
}

const DIALECTS: Array<[string, () => Opened]> = [
  [
    'sqlite',
    () => {
      const path = join(dir, `pruner-${n++}.db`);
      const store = new SqliteStore(path);
      return {
        store,
        async count(table) {
          const db = new Database(path, { readonly: true });
          try {
            return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
          } finally {
            db.close();
          }
        },
        close: () => store.close(),
      };
    },
  ],
  [
    'postgres',
    () => {
      const schema = testSchema();
      const store = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
      // One connection of the probe's own for every count of the test.
      let probe: Promise<pg.Client> | undefined;
      return {
        store,
        async count(table) {
          probe ??= (async () => {
            const client = new pg.Client({
              connectionString: testDatabaseUrl(),
              options: `-c search_path=${schema}`,
            });
            await client.connect();
            return client;
          })();
          const client = await probe;
          return Number((await client.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
        },
        async close() {
          if (probe) await (await probe).end();
          await store.close();
        },
      };
    },
  ],
];

const RETENTION: RetentionConfig = {
  finishedMs: 6 * HOUR,
  failedMs: 12 * HOUR,
  skippedFiresMs: 6 * HOUR,
  auditMs: 6 * HOUR,
  logsMs: 2 * HOUR,
  workersMs: 6 * HOUR,
  intervalMs: MIN,
  batch: 50,
};

for (const [dialect, open] of DIALECTS) {
  describe(`Pruner on ${dialect} (fake clock)`, () => {
    const opened: Opened[] = [];
    afterEach(async () => {
      for (const o of opened.splice(0)) await o.close();
    });

    async function setup(retention: Partial<RetentionConfig> = {}) {
      const o = open();
      opened.push(o);
      const { store } = o;
      await store.migrate();
      const clock = new FakeClock(T0);
      const jobs = new JobService(store, clock);
      const pruned: PruneCounts[] = [];
      const pruner = (owner = 'node-a') =>
        new Pruner({ store, clock, logger, owner, retention: { ...RETENTION, ...retention } });
      const main = pruner();
      const cycle = async () => {
        const counts = await main.cycle();
        if (counts) pruned.push(counts);
        return counts;
      };
      const worker = (id = 'w') =>
        store.registerWorker(
          {
            id,
            name: id,
            group: 'default',
            handlers: ['h'],
            capacity: 10_000,
            labels: {},
            version: 't',
            host: 'h',
          },
          10 * DAY,
          clock.now(),
        );
      await worker();
      /** Claims every queued run and ends each as `end(runId)` says (a worker's reports). */
      const finishAll = async (end: (runId: number) => 'succeeded' | 'failed' = () => 'succeeded') => {
        const claimed = await store.claimRuns('w', 10_000, clock.now());
        const outcomes: AttemptOutcome[] = claimed.map((c) => {
          const status = end(c.runId);
          return {
            runId: c.runId,
            attempt: c.attempt,
            group: 'default',
            attemptStatus: status,
            error: status === 'failed' ? { name: 'E', message: 'boom' } : null,
            result: null,
            run: { status },
          };
        });
        if (outcomes.length > 0) await store.finishAttempts(outcomes, clock.now());
        return claimed.map((c) => c.runId);
      };
      const create = (spec: Omit<JobSpec, 'handler'>) => jobs.create({ handler: 'h', ...spec });
      const runsOf = async (name: string) =>
        (await store.listRuns({ jobId: (await jobs.get(name)).id, limit: 100_000 })).sort(
          (a, b) => a.id - b.id,
        );
      const loop = new TriggerLoop({
        store,
        clock,
        owner: 'node-a',
        logger,
        partitions: 1,
        partitionLeaseMs: 10 * DAY,
        misfireGraceMs: MIN,
      });
      return { ...o, clock, jobs, cycle, pruner, pruned, finishAll, create, runsOf, worker, loop };
    }

    it('keeps the database flat under load over simulated days: every kind bounded after each cycle', async () => {
      const s = await setup();
      await s.create({ name: 'load', trigger: { kind: 'manual' } });
      const ledgerJob = await s.store.createJob(
        compileJob({ name: 'ledger', handler: 'h', trigger: { kind: 'every', every: '10s' } }),
        T0,
        T0,
      );
      let nextFire = T0;
      const PER_HOUR = 120;
      const counts: Array<Record<string, number>> = [];
      for (let hour = 1; hour <= 48; hour++) {
        await s.clock.advance(HOUR);
        const now = s.clock.now();
        await s.jobs.trigger(
          'load',
          Array.from({ length: PER_HOUR }, () => ({})),
        );
        // One run in ten fails.
        const ids = await s.finishAll((runId) => (runId % 10 === 0 ? 'failed' : 'succeeded'));
        await s.store.appendRunLogs(
          'w',
          {
            logs: ids.slice(0, 20).map((runId) => ({
              runId,
              attempt: 1,
              level: 'info' as const,
              message: 'done',
              fields: null,
              time: now,
            })),
            progress: [],
          },
          100,
          now,
        );
        const fired = await s.store.fire(
          [
            {
              jobId: ledgerJob.id,
              expected: nextFire,
              next: nextFire + 10_000,
              fires: [],
              skipped: [{ reason: 'misfire', first: nextFire, last: nextFire + 1000, count: 2 }],
            },
          ],
          null,
          now,
        );
        expect(fired.conflicts).toBe(0);
        nextFire += 10_000;
        for (let i = 0; i < 5; i++)
          await s.store.appendAudit({
            at: now,
            actor: 'admin',
            action: 'job.trigger',
            target: 'load',
            details: {},
          });
        await s.worker(`gone-${hour}`);
        await s.store.unregisterWorker(`gone-${hour}`, now);
        await s.cycle();
        const row: Record<string, number> = {};
        for (const table of ['runs', 'attempts', 'run_logs', 'skipped_fires', 'audit_log', 'workers'])
          row[table] = await s.count(table);
        counts.push(row);
      }
      // Bounds from the retention: succeeded runs of the last 6 hours (plus the hour being pruned),
      // failed ones of the last 12; logs of 2 hours; the other kinds 6 hours of their rate.
      for (const row of counts.slice(12)) {
        expect(row.runs).toBeLessThanOrEqual(PER_HOUR * 0.9 * 7 + PER_HOUR * 0.1 * 13 + 2);
        // A success is its run's row: the attempts kept are the failed runs' (one attempt each).
        expect(row.attempts).toBeGreaterThan(0);
        expect(row.attempts).toBeLessThanOrEqual(PER_HOUR * 0.1 * 13 + 2);
        expect(row.run_logs).toBeLessThanOrEqual(20 * 3);
        expect(row.skipped_fires).toBeLessThanOrEqual(7);
        expect(row.audit_log).toBeLessThanOrEqual(5 * 7);
        expect(row.workers).toBeLessThanOrEqual(1 + 7);
      }
      // Flat: the second day ends where the first did.
      expect(counts[47]).toEqual(counts[23]);
      const last = counts[47] ?? {};
      const total = s.pruned.reduce((sum, c) => sum + c.runs, 0);
      expect(total + (last.runs ?? 0)).toBe(48 * PER_HOUR);
    }, 120_000);

    it('never deletes a run that is not finished, nor the newest finished run of a job, however old', async () => {
      const s = await setup();
      await s.create({ name: 'old', trigger: { kind: 'manual' } });
      const [first, second] = await s.jobs.trigger('old', [{}, {}]);
      await s.finishAll();
      const [running] = await s.jobs.trigger('old', [{}]);
      await s.store.claimRuns('w', 1, s.clock.now());
      const [queued] = await s.jobs.trigger('old', [{}]);
      await s.clock.advance(30 * DAY);
      await s.cycle();
      const left = await s.runsOf('old');
      expect(left.map((r) => [r.id, r.status])).toEqual([
        [second, 'succeeded'],
        [running, 'running'],
        [queued, 'queued'],
      ]);
      expect(await s.store.getRun(first!)).toBeNull();
    });

    it('a job’s own retention: keepLast keeps its newest N finished runs, failed ones until their age', async () => {
      const s = await setup();
      await s.create({ name: 'busy', trigger: { kind: 'manual' }, retention: { keepLast: 3 } });
      await s.create({ name: 'quick', trigger: { kind: 'manual' }, retention: { finished: '2m' } });
      await s.create({ name: 'kept', trigger: { kind: 'manual' }, retention: { finished: '30d' } });
      await s.create({ name: 'plain', trigger: { kind: 'manual' } });
      for (const name of ['busy', 'quick', 'kept', 'plain']) {
        for (let i = 0; i < 6; i++) {
          await s.jobs.trigger(name, [{}]);
          await s.finishAll(() => (name === 'busy' && i === 1 ? 'failed' : 'succeeded'));
          await s.clock.advance(1000);
        }
      }
      await s.clock.advance(3 * MIN);
      await s.cycle();
      const statuses = async (name: string) => (await s.runsOf(name)).map((r) => r.status as RunStatus);
      // busy: the newest 3, and the failed one (12 h) among the older.
      expect(await statuses('busy')).toEqual(['failed', 'succeeded', 'succeeded', 'succeeded']);
      // quick: older than 2 minutes, but the newest stays.
      expect(await statuses('quick')).toEqual(['succeeded']);
      expect(await statuses('kept')).toHaveLength(6);
      expect(await statuses('plain')).toHaveLength(6);
      // Past the default age (6 h), whichever limit comes first: busy keeps its failed run and newest.
      await s.clock.advance(7 * HOUR);
      await s.cycle();
      expect(await statuses('busy')).toEqual(['failed', 'succeeded']);
      expect(await statuses('kept')).toHaveLength(6);
      expect(await statuses('plain')).toEqual(['succeeded']);
      await s.clock.advance(6 * HOUR);
      await s.cycle();
      expect(await statuses('busy')).toEqual(['succeeded']);
    });

    it('the job pass reads a job’s runs only up to the first one too young for it, not its whole history', async () => {
      const s = await setup();
      await s.create({ name: 'long', trigger: { kind: 'manual' }, retention: { finished: '2d' } });
      for (let i = 0; i < 4; i++) {
        await s.jobs.trigger(
          'long',
          Array.from({ length: 50 }, () => ({})),
        );
        await s.finishAll();
      }
      const reads = vi.spyOn(s.store, 'jobRunsToPrune');
      await s.clock.advance(HOUR);
      expect(await s.cycle()).toMatchObject({ runs: 0 });
      // 200 runs, batches of 50: the first batch starts with a run too young, and the walk ends there.
      expect(reads).toHaveBeenCalledTimes(1);
      expect(await s.runsOf('long')).toHaveLength(200);
    });

    it('one node at a time: a second pruner does nothing while the first holds the lease, and takes over when it stops', async () => {
      const s = await setup();
      await s.create({ name: 'j', trigger: { kind: 'manual' } });
      await s.jobs.trigger('j', [{}, {}, {}]);
      await s.finishAll();
      await s.clock.advance(7 * HOUR);
      const other = s.pruner('node-b');
      expect(await s.cycle()).toMatchObject({ runs: 2 });
      expect(await other.cycle()).toBeNull();
      await s.clock.advance(MIN);
      expect(await other.cycle()).toBeNull();
      // The lease outlives an interval; a holder gone for good hands over once it expires.
      await s.clock.advance(2 * HOUR);
      expect(await other.cycle()).toMatchObject({ runs: 0 });
      expect(await s.cycle()).toBeNull();
    });

    it('deletes log lines, ledger rows, audit entries and gone workers past their own ages', async () => {
      const s = await setup();
      await s.create({ name: 'j', trigger: { kind: 'manual' } });
      const [runId] = await s.jobs.trigger('j', [{}]);
      await s.finishAll();
      await s.store.appendRunLogs(
        'w',
        {
          logs: [{ runId: runId!, attempt: 1, level: 'info', message: 'x', fields: null, time: T0 }],
          progress: [],
        },
        100,
        T0,
      );
      await s.store.appendAudit({ at: T0, actor: 'a', action: 'x', target: 't', details: {} });
      await s.worker('gone');
      await s.store.unregisterWorker('gone', T0);
      await s.clock.advance(2 * HOUR - 1);
      expect(await s.cycle()).toEqual({
        runs: 0,
        run_logs: 0,
        skipped_fires: 0,
        audit_log: 0,
        workers: 0,
        workflow_instances: 0,
        workflow_map_items: 0,
      });
      await s.clock.advance(2);
      expect(await s.cycle()).toMatchObject({ run_logs: 1, audit_log: 0 });
      await s.clock.advance(4 * HOUR);
      expect(await s.cycle()).toMatchObject({ audit_log: 1, workers: 1 });
      expect(await s.store.runLogs(runId!, 0, 10)).toEqual([]);
      // The run itself is its job's newest: kept.
      expect((await s.store.getRun(runId!))?.status).toBe('succeeded');
    });

    // What reads old runs, and goes on working when they are gone.

    it('fixed delay: the job fires `delay` after each run ends while its old runs are pruned', async () => {
      const s = await setup();
      await s.create({ name: 'd', trigger: { kind: 'delay', delay: '1m' }, retention: { keepLast: 1 } });
      let ended = 0;
      for (let i = 0; i < 30; i++) {
        await s.clock.advance(30_000);
        await s.loop.tick();
        ended += (await s.finishAll()).length;
        await s.cycle();
      }
      // Each run ends at the tick that fired it: a fire every minute, 15 in 15 minutes.
      expect(ended).toBe(15);
      const left = await s.runsOf('d');
      expect(left.length).toBeLessThanOrEqual(3);
      expect((await s.jobs.get('d')).nextFireAt).not.toBeNull();
    });

    it('after: a dependent job fires for each parent run that ends while the parent’s old runs are pruned', async () => {
      const s = await setup();
      await s.create({ name: 'parent', trigger: { kind: 'manual' }, retention: { keepLast: 1 } });
      await s.create({
        name: 'child',
        trigger: { kind: 'after', job: 'parent' },
        retention: { keepLast: 1 },
      });
      let children = 0;
      for (let i = 0; i < 5; i++) {
        await s.jobs.trigger('parent', [{}]);
        await s.finishAll(); // the parent's run; its child is queued in the same write
        children += (await s.finishAll()).length;
        await s.clock.advance(2 * MIN);
        await s.cycle();
      }
      expect(children).toBe(5);
      expect((await s.runsOf('parent')).length).toBeLessThanOrEqual(2);
    });

    it('overlap skip: a long-running run older than every retention stays, and later fires are still skipped', async () => {
      const s = await setup();
      await s.create({
        name: 'o',
        trigger: { kind: 'every', every: '1m' },
        schedule: { overlap: 'skip' },
        retention: { finished: '1m' },
      });
      await s.clock.advance(MIN);
      await s.loop.tick();
      const [long] = await s.store.claimRuns('w', 1, s.clock.now());
      for (let i = 0; i < 30; i++) {
        await s.clock.advance(MIN);
        await s.loop.tick();
        await s.cycle();
      }
      const runs = await s.runsOf('o');
      expect(runs.map((r) => [r.id, r.status])).toEqual([[long!.runId, 'running']]);
      const ledger = await s.store.listSkipped((await s.jobs.get('o')).id, { limit: 10 });
      expect(ledger.map((r) => r.reason)).toContain('overlap');
    });

    it('maxRuns: the cap counts fires, not the runs that are left', async () => {
      const s = await setup();
      await s.create({
        name: 'capped',
        trigger: { kind: 'every', every: '1m' },
        schedule: { maxRuns: 4 },
        retention: { keepLast: 1 },
      });
      let fired = 0;
      for (let i = 0; i < 12; i++) {
        await s.clock.advance(MIN);
        await s.loop.tick();
        fired += (await s.finishAll()).length;
        await s.cycle();
      }
      expect(fired).toBe(4);
      expect((await s.jobs.get('capped')).runsFired).toBe(4);
      expect((await s.runsOf('capped')).length).toBeLessThan(4);
    });

    it('backfill: a fire time whose run was pruned gets a new run; one whose run is kept is answered as existing', async () => {
      const s = await setup();
      await s.create({ name: 'b', trigger: { kind: 'every', every: '1h' }, paused: true });
      const from = new Date(T0 + HOUR).toISOString();
      const to = new Date(T0 + 2 * HOUR).toISOString();
      await s.clock.advance(3 * HOUR);
      const first = await s.jobs.backfill('b', { from, to, overlap: 'allow' });
      expect(first.runs).toHaveLength(2);
      await s.finishAll();
      await s.clock.advance(7 * HOUR);
      await s.cycle();
      // The older run is gone, the newest (its job's last) stays.
      const again = await s.jobs.backfill('b', { from, to, overlap: 'allow' });
      expect(again.runs.map((r) => r.fireTime)).toEqual([from]);
      expect(again.existing).toEqual([to]);
    });

    it('idempotency keys live as long as their run: a key used again after its run was pruned makes a new run', async () => {
      const s = await setup();
      await s.create({ name: 'k', trigger: { kind: 'manual' } });
      const [a] = await s.jobs.trigger('k', [{ idempotencyKey: 'order-1' }]);
      await s.finishAll();
      expect(await s.jobs.trigger('k', [{ idempotencyKey: 'order-1' }])).toEqual([a]);
      await s.jobs.trigger('k', [{}]);
      await s.finishAll();
      await s.clock.advance(7 * HOUR);
      await s.cycle();
      expect(await s.store.getRun(a!)).toBeNull();
      const [b] = await s.jobs.trigger('k', [{ idempotencyKey: 'order-1' }]);
      expect(b).not.toBe(a);
    });

    it('workflow instances: ended ones go after their state’s age with their steps and map items, in batches; step runs of an unfinished instance stay', async () => {
      const s = await setup({ batch: 3 });
      const define = (name: string, steps: Parameters<typeof compileWorkflow>[0]['steps']) =>
        s.store.workflows.put(compileWorkflow({ name, steps }), 'default', s.clock.now());
      const start = async (name: string, context = {}) =>
        (await s.store.workflows.start('default', name, { context }, s.clock.now()))!;
      await define('fan', [
        { id: 'one', handler: 'h', map: { from: '$context', path: 'items', maxParallel: 2 } },
      ]);
      await define('solo', [{ id: 'a', handler: 'h' }]);
      await define('chain', [
        { id: 'a', handler: 'h' },
        { id: 'b', handler: 'h', after: ['a'] },
      ]);
      const fan = await start('fan', { items: [1, 2, 3, 4, 5, 6, 7] });
      const failed = await start('solo');
      const paused = await start('chain');
      await s.store.workflows.repairInstance(paused.id, { kind: 'pause' }, s.clock.now());
      const failedRun = failed.steps[0]!.runId;
      while ((await s.finishAll((id) => (id === failedRun ? 'failed' : 'succeeded'))).length > 0);
      expect((await s.store.workflows.getInstance(fan.id))!.state).toBe('succeeded');
      expect((await s.store.workflows.getInstance(failed.id))!.state).toBe('failed');
      const pausedA = (await s.store.workflows.getInstance(paused.id))!.steps[0]!;
      expect(pausedA).toMatchObject({ state: 'succeeded' });
      expect(await s.count('workflow_map_items')).toBe(7);

      await s.clock.advance(7 * HOUR);
      expect(await s.cycle()).toMatchObject({ workflow_instances: 1, workflow_map_items: 7 });
      expect(await s.store.workflows.getInstance(fan.id)).toBeNull();
      expect(await s.count('workflow_map_items')).toBe(0);
      expect(await s.count('workflow_instances')).toBe(2);
      expect(await s.count('workflow_steps')).toBe(3);
      // The paused instance's ended step keeps its run, however old.
      expect(await s.store.getRun(pausedA.runId!)).not.toBeNull();
      await s.clock.advance(6 * HOUR);
      expect(await s.cycle()).toMatchObject({ workflow_instances: 1 });
      expect(await s.store.workflows.getInstance(failed.id)).toBeNull();

      await s.store.workflows.repairInstance(paused.id, { kind: 'resume' }, s.clock.now());
      while ((await s.finishAll()).length > 0);
      expect((await s.store.workflows.getInstance(paused.id))!.state).toBe('succeeded');
      const running = await start('solo');
      await s.clock.advance(7 * HOUR);
      expect(await s.cycle()).toMatchObject({ workflow_instances: 1 });
      expect(await s.store.getRun(pausedA.runId!)).toBeNull();
      // The running instance stays, its queued run too, whatever its age.
      await s.clock.advance(30 * DAY);
      await s.cycle();
      expect((await s.store.workflows.getInstance(running.id))!.state).toBe('running');
      expect(await s.store.getRun(running.steps[0]!.runId!)).toMatchObject({ status: 'queued' });
    });
  });
}
