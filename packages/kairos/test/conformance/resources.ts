import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob } from '../../src/core/job.ts';
import { compileResources } from '../../src/core/resources.ts';
import { compileWorkflow } from '../../src/core/workflow.ts';
import { queuedByRequest } from '../../src/store/access.ts';
import type { AttemptOutcome, ClaimedRun, Store } from '../../src/store/store.ts';

/**
 * The resource-based scheduling part of the store conformance suite (docs/workers.md#resource-based-scheduling),
 * run by `describeStoreConformance` on every dialect, unchanged.
 */
export function describeResourceConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, resources: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);
    const LEASE = 60_000;

    beforeEach(async () => {
      store = await open();
      await store.migrate();
    });
    afterEach(async () => {
      await store.close();
    });

    async function worker(id: string, resources: Record<string, number | string> | null, capacity = 10) {
      await store.registerWorker(
        {
          id,
          name: id,
          group: 'default',
          handlers: ['h'],
          capacity,
          labels: {},
          version: 't',
          host: 'h',
          resources: compileResources(resources, 'resources', { zero: true }),
        },
        LEASE,
        T0,
      );
    }

    async function job(name: string, resources?: Record<string, number | string>) {
      return store.createJob(
        compileJob({ name, handler: 'h', trigger: { kind: 'manual' }, ...(resources ? { resources } : {}) }),
        null,
        T0,
      );
    }

    async function queue(jobId: number, count: number, at = T0): Promise<number[]> {
      return store.enqueueRuns(
        jobId,
        Array.from({ length: count }, () => ({ params: {}, priority: 0 })),
        at,
      );
    }

    const succeed = (run: ClaimedRun): AttemptOutcome => ({
      runId: run.runId,
      attempt: run.attempt,
      group: 'default',
      attemptStatus: 'succeeded',
      error: null,
      result: null,
      run: { status: 'succeeded' },
    });
    const ids = (runs: ClaimedRun[]) => runs.map((r) => r.runId);

    it('a run is placed only where its request fits the free capacity; runs without one take slots only', async () => {
      const big = await job('big', { cpu: 1.5, memory: '1Gi' });
      const plain = await job('plain');
      const bigRuns = await queue(big.id, 3);
      const plainRuns = await queue(plain.id, 2, T0 + 1);
      await worker('small', { cpu: 1, memory: '8Gi' });
      await worker('large', { cpu: 4, memory: '2Gi' });
      // The small worker has too little cpu: it passes over the big runs and takes the plain ones.
      expect(ids(await store.dispatchRuns('small', 10, T0 + 10, 0))).toEqual(plainRuns);
      // The large one has memory for two (2 GiB), cpu for two (4 cores): two, not three.
      const first = await store.dispatchRuns('large', 10, T0 + 20, 0);
      expect(ids(first)).toEqual(bigRuns.slice(0, 2));
      expect(await store.dispatchRuns('large', 10, T0 + 30, 0)).toEqual([]);
      // One ends: its request is free again.
      await store.finishAttempts([succeed(first[0]!)], T0 + 40);
      expect(ids(await store.dispatchRuns('large', 10, T0 + 50, 0))).toEqual([bigRuns[2]]);
    });

    it('a worker that advertised nothing takes only runs that request nothing', async () => {
      const gpu = await job('gpu', { gpu: 1 });
      const [run] = await queue(gpu.id, 1);
      await worker('old', null);
      expect(await store.dispatchRuns('old', 10, T0 + 10, 0)).toEqual([]);
      await worker('cuda', { gpu: 2 });
      expect(ids(await store.dispatchRuns('cuda', 10, T0 + 20, 0))).toEqual([run]);
      expect((await store.listWorkers()).find((w) => w.id === 'cuda')?.resources).toEqual({ gpu: 2 });
    });

    it('concurrent claims for one worker never place more than its capacity', async () => {
      const one = await job('one', { cpu: 1 });
      // More runs than the claims' windows together: each claim locks other rows (SKIP LOCKED).
      await queue(one.id, 600);
      await worker('w', { cpu: 4 });
      // Eight claims at once (on PostgreSQL each on its own connection, as polls on several nodes).
      const claims = await Promise.all(
        Array.from({ length: 8 }, (_, i) => store.dispatchRuns('w', 4, T0 + 10 + i, 0)),
      );
      expect(claims.flat()).toHaveLength(4);
      const running = await store.listRuns({ jobId: one.id, status: 'running', limit: 100 });
      expect(running).toHaveLength(4);
    });

    it('the oldest run that fits no free capacity gets a reservation after reserveAfterMs; runs that request nothing still run', async () => {
      store.reserveAfterMs = 10_000;
      const small = await job('small', { cpu: 1 });
      const big = await job('big', { cpu: 4 });
      const plain = await job('plain');
      await worker('w', { cpu: 4 });
      const [s1] = await queue(small.id, 1, T0);
      const first = await store.dispatchRuns('w', 1, T0 + 1, 0);
      expect(ids(first)).toEqual([s1]);
      const [b] = await queue(big.id, 1, T0 + 2);
      // A stream of small runs behind the big one.
      const smalls = await queue(small.id, 20, T0 + 3);
      // Before the big run waited long enough, the small ones backfill.
      const early = await store.dispatchRuns('w', 1, T0 + 1000, 0);
      expect(ids(early)).toEqual([smalls[0]]);
      // After: the worker reserves its cpu for the big run and takes no more cpu runs…
      const late = T0 + 2 + 10_000;
      expect(await store.dispatchRuns('w', 5, late, 0)).toEqual([]);
      // …but a run that requests nothing still runs there.
      const [p] = await queue(plain.id, 1, late);
      expect(ids(await store.dispatchRuns('w', 5, late + 1, 0))).toEqual([p]);
      // The small runs end: the big one fits, and is claimed before the small ones behind it.
      await store.finishAttempts([succeed(first[0]!), succeed(early[0]!)], late + 2);
      expect(ids(await store.dispatchRuns('w', 5, late + 3, 0))).toEqual([b]);
    });

    it('a reservation is on one worker only: the others keep taking small runs', async () => {
      store.reserveAfterMs = 0;
      const small = await job('small', { cpu: 1 });
      const big = await job('big', { cpu: 4 });
      await worker('a', { cpu: 4 });
      await worker('b', { cpu: 4 });
      // a holds 3 cores and b 1: b lacks 1 core for the big run and a lacks 3, so b reserves.
      await queue(small.id, 4, T0);
      expect(await store.dispatchRuns('a', 3, T0 + 1, 0)).toHaveLength(3);
      expect(await store.dispatchRuns('b', 1, T0 + 2, 0)).toHaveLength(1);
      const [bigRun] = await queue(big.id, 1, T0 + 3);
      await queue(small.id, 5, T0 + 4);
      expect(await store.dispatchRuns('b', 5, T0 + 5, 0)).toEqual([]);
      expect(await store.dispatchRuns('a', 5, T0 + 6, 0)).toHaveLength(1);
      const running = await store.listRuns({ status: 'running', limit: 100 });
      const onB = running.filter((r) => r.workerId === 'b');
      expect(onB).toHaveLength(1);
      expect((await store.getRun(bigRun!))?.status).toBe('queued');
    });

    it('runs that request resources are never claimed ahead of their instant', async () => {
      const created = await store.createJob(
        compileJob({
          name: 'ahead',
          handler: 'h',
          trigger: { kind: 'every', every: '1s' },
          resources: { cpu: 1 },
        }),
        T0 + 1000,
        T0,
      );
      await store.fire(
        [{ jobId: created.id, expected: T0 + 1000, next: T0 + 2000, fires: [T0 + 1000] }],
        null,
        T0,
      );
      await worker('w', { cpu: 2 });
      expect(await store.dispatchAhead('w', 5, T0 + 1500, T0 + 600)).toEqual([]);
      expect(await store.dispatchRuns('w', 5, T0 + 1000, 0)).toHaveLength(1);
    });

    it('a heartbeat keeps the load the worker reports; one without keeps the last', async () => {
      await worker('w', { cpu: 2 });
      const load = { loadAverage: 1.5, cpus: 2, freeMemory: 1024, totalMemory: 4096 };
      expect(await store.heartbeat('w', [], LEASE, T0 + 1, null, load)).not.toBeNull();
      expect(await store.heartbeat('w', [], LEASE, T0 + 2, null)).not.toBeNull();
      expect((await store.listWorkers()).find((w) => w.id === 'w')?.load).toEqual(load);
    });

    it("a workflow step's own request: queue counts and alert facts carry it, and workers' runs use it", async () => {
      const big = await job('big', { cpu: 2 });
      const [bigRun] = await queue(big.id, 1);
      await store.workflows.put(
        compileWorkflow({
          name: 'gpu-flow',
          steps: [
            { id: 'a', handler: 'h', resources: { gpu: 2 } },
            { id: 'b', handler: 'h', after: ['a'] },
          ],
        }),
        'default',
        T0,
      );
      await store.workflows.start('default', 'gpu-flow', { context: {} }, T0 + 1);
      await store.workflows.start('default', 'gpu-flow', { context: {} }, T0 + 2);

      const counts = await store.queuedRunCounts(T0 + 10, 100);
      const bigCount = counts.find((c) => c.jobName === 'big')!;
      expect(bigCount).toMatchObject({ queued: 1, resources: { cpu: 2000 } });
      expect(queuedByRequest(bigCount)).toEqual([{ resources: { cpu: 2000 }, queued: 1 }]);
      const flowCount = counts.find((c) => c.jobName !== 'big')!;
      expect(flowCount).toMatchObject({ queued: 2, handler: 'h', resources: null });
      expect(queuedByRequest(flowCount)).toEqual([{ resources: { gpu: 2 }, queued: 2 }]);

      // The alert rule judges each job's oldest queued run: the step's request, else the job's.
      const facts = await store.alerts.jobFacts(null, T0 + 10);
      expect(facts.find((f) => f.name === 'big')?.oldestQueued).toEqual({
        group: 'default',
        handler: 'h',
        resources: { cpu: 2000 },
      });
      expect(facts.find((f) => f.name !== 'big')?.oldestQueued).toEqual({
        group: 'default',
        handler: 'h',
        resources: { gpu: 2 },
      });

      // What running runs use, per worker: the job's request on one, the step's own on the other.
      await worker('w', { cpu: 4, gpu: 1 });
      await worker('g', { gpu: 2 });
      expect(await store.resourcesInUse(['w', 'g'])).toEqual(new Map());
      expect(ids(await store.dispatchRuns('w', 10, T0 + 20, 0))).toEqual([bigRun]);
      expect(await store.dispatchRuns('g', 10, T0 + 30, 0)).toHaveLength(1);
      expect(await store.resourcesInUse(['w', 'g', 'nobody'])).toEqual(
        new Map([
          ['w', { cpu: 2000 }],
          ['g', { gpu: 2 }],
        ]),
      );
      expect(await store.resourcesInUse([])).toEqual(new Map());
      const left = (await store.queuedRunCounts(T0 + 40, 100)).find((c) => c.jobName !== 'big')!;
      expect(queuedByRequest(left)).toEqual([{ resources: { gpu: 2 }, queued: 1 }]);
    });
  });
}
