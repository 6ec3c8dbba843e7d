import type { TraceContext } from '@kairos/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob } from '../../src/core/job.ts';
import { decideOutcome } from '../../src/core/outcome.ts';
import type { Store } from '../../src/store/store.ts';

/**
 * The tracing part of the store conformance suite, run by `describeStoreConformance` on every
 * dialect, unchanged: the trace context a run is created with comes back with every claim of it.
 */
export function describeTracingConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, trace context: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);
    const LEASE = 5000;
    const A: TraceContext = { traceparent: `00-${'a'.repeat(32)}-${'1'.repeat(16)}-01`, tracestate: 'k=v' };
    const B: TraceContext = { traceparent: `00-${'b'.repeat(32)}-${'2'.repeat(16)}-01` };
    const RETRY_NONE = {
      maxAttempts: 1,
      backoff: 'fixed' as const,
      delay: 0,
      maxDelay: 0,
      jitter: false,
      nonRetryable: [],
    };

    beforeEach(async () => {
      store = await open();
      await store.migrate();
      await store.registerWorker(
        {
          id: 'w1',
          name: 'w1',
          group: 'default',
          handlers: ['h'],
          capacity: 10,
          labels: {},
          version: 't',
          host: 'h',
        },
        LEASE,
        T0,
      );
    });
    afterEach(async () => {
      await store.close();
    });

    const job = (name: string, extra: Partial<Parameters<typeof compileJob>[0]> = {}) =>
      store.createJob(compileJob({ name, handler: 'h', trigger: { kind: 'manual' }, ...extra }), null, T0);

    it('a manual run keeps its trace context; a run without one has none', async () => {
      await job('m');
      const traced = await store.triggerRun('m', { params: null, priority: null, traceContext: A }, T0);
      const plain = await store.triggerRun('m', { params: null, priority: null }, T0);
      const claimed = await store.dispatchRuns('w1', 10, T0, 0);
      const byRun = new Map(claimed.map((c) => [c.runId, c]));
      expect(byRun.get(traced!.id)?.traceContext).toEqual(A);
      expect(byRun.get(plain!.id)).not.toHaveProperty('traceContext');
    });

    it('enqueued runs keep theirs, through the poll claim and the plain claim', async () => {
      const created = await job('e');
      const [a, b] = await store.enqueueRuns(
        created.id,
        [
          { params: {}, priority: 0, traceContext: A },
          { params: {}, priority: 0, traceContext: B, idempotencyKey: 'k' },
        ],
        T0,
      );
      const { runs } = await store.dispatchForPoll('w1', 1, T0, 0, 1);
      const rest = await store.claimRuns('w1', 10, T0);
      const byRun = new Map([...runs, ...rest].map((c) => [c.runId, c.traceContext]));
      expect(byRun.get(a!)).toEqual(A);
      expect(byRun.get(b!)).toEqual(B);
    });

    it('a fire keeps each fire time its own trace context, with and without policy steps', async () => {
      const at = T0 + 1000;
      const plain = await store.createJob(
        compileJob({ name: 'p', handler: 'h', trigger: { kind: 'every', every: '1s' } }),
        at,
        T0,
      );
      const skip = await store.createJob(
        compileJob({
          name: 's',
          handler: 'h',
          trigger: { kind: 'every', every: '1s' },
          schedule: { overlap: 'skip' },
        }),
        at,
        T0,
      );
      await store.fire(
        [
          { jobId: plain.id, expected: at, next: at + 2000, fires: [at, at + 1000], traceContexts: [A, B] },
          { jobId: skip.id, expected: at, next: at + 1000, fires: [at], overlap: 'skip', traceContexts: [B] },
        ],
        null,
        at,
      );
      const claimed = await store.dispatchRuns('w1', 10, at + 1000, 0);
      expect(claimed.map((c) => [c.jobName, c.fireTime, c.traceContext]).sort()).toEqual([
        ['p', at, A],
        ['p', at + 1000, B],
        ['s', at, B],
      ]);
    });

    it('backfill runs keep the trace context they were created with, buffered ones too', async () => {
      const daily = await job('b', { trigger: { kind: 'every', every: '1d' } });
      const serial = await job('bs', { trigger: { kind: 'every', every: '1d' } });
      const plain = await job('bp', { trigger: { kind: 'every', every: '1d' } });
      const fires = [T0 - 2000, T0 - 1000];
      const traced = await store.backfillRuns(daily.id, fires, 'allow', T0, A);
      const buffered = await store.backfillRuns(serial.id, fires, 'buffer-all', T0, B);
      const untraced = await store.backfillRuns(plain.id, fires, 'allow', T0);
      const byRun = new Map((await store.dispatchRuns('w1', 10, T0, 0)).map((c) => [c.runId, c]));
      for (const { runId } of traced.created) expect(byRun.get(runId)?.traceContext).toEqual(A);
      expect(byRun.get(buffered.created[0]!.runId)?.traceContext).toEqual(B);
      for (const { runId } of untraced.created) expect(byRun.get(runId)).not.toHaveProperty('traceContext');
      // The buffered one is claimed once the first ends, with its own context.
      const first = byRun.get(buffered.created[0]!.runId)!;
      const decision = decideOutcome(RETRY_NONE, 1, { kind: 'succeeded', result: null }, T0, 0);
      await store.finishAttempts(
        [{ ...decision, runId: first.runId, attempt: first.attempt, group: 'default' }],
        T0 + 10,
      );
      const [next] = await store.dispatchRuns('w1', 10, T0 + 20, 0);
      expect(next).toMatchObject({ runId: buffered.created[1]!.runId, traceContext: B });
    });

    it("a run of a job after another continues its parent run's trace context", async () => {
      const parent = await job('parent');
      await job('child', { trigger: { kind: 'after', job: 'parent' } });
      await store.enqueueRuns(parent.id, [{ params: {}, priority: 0, traceContext: A }], T0);
      const [claimed] = await store.dispatchRuns('w1', 10, T0, 0);
      const decision = decideOutcome(RETRY_NONE, 1, { kind: 'succeeded', result: null }, T0, 0);
      await store.finishAttempts(
        [{ ...decision, runId: claimed!.runId, attempt: claimed!.attempt, group: 'default' }],
        T0 + 10,
      );
      const [child] = await store.dispatchRuns('w1', 10, T0 + 20, 0);
      expect(child).toMatchObject({ jobName: 'child', traceContext: A });
    });

    it('a routed job claimed through its plan and a run claimed ahead keep theirs', async () => {
      await job('r', { routing: { strategy: 'round-robin' } });
      const routed = await store.triggerRun('r', { params: null, priority: null, traceContext: A }, T0);
      const ahead = await job('a');
      const [held] = await store.enqueueRuns(
        ahead.id,
        [{ params: {}, priority: 0, traceContext: B, availableAt: T0 + 300 }],
        T0,
      );
      const claimed = await store.dispatchRuns('w1', 10, T0, 0);
      expect(claimed.find((c) => c.runId === routed!.id)?.traceContext).toEqual(A);
      const early = await store.dispatchAhead('w1', 5, T0 + 500, T0);
      expect(early.find((c) => c.runId === held)?.traceContext).toEqual(B);
    });
  });
}
