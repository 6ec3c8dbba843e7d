// Steady load: workers consume while a producer enqueues jobs one by one, each call awaited, as fast as
// it can for a fixed window. Completed/s counts the jobs the store completed within the window; the
// latency covers every job enqueued in the window (the backlog left at its end is drained and counted).
import type { Produced } from '../producer.ts';
import { latencyStats, round } from '../stats.ts';
import { type RunContext, startWorkers, waitProcessed } from '../workers.ts';

/** Figures of one steady-load run. */
export interface SteadyResult {
  seconds: number;
  enqueued: number;
  enqueuePerSecond: number;
  completedPerSecond: number;
  /** Jobs not completed yet when the window closed. */
  backlogAtEnd: number;
  p50: number;
  p99: number;
  max: number;
  duplicates: number;
  missing: number;
  enqueueErrors: number;
  complete: boolean;
  /** The node's CPU per 1,000 jobs enqueued in the window (user + system), where the node runs in the harness. */
  nodeCpuMsPer1k?: number;
  /** The worker processes' CPU per 1,000 jobs enqueued in the window. */
  workersCpuMsPer1k: number;
}

/** Runs the steady-load scenario for `seconds` on queue `steady`. */
export async function steady(ctx: RunContext, seconds: number, timeoutMs = 60_000): Promise<SteadyResult> {
  const workers = await startWorkers(ctx, 'steady');
  await workers.go();
  const cpuBefore = process.cpuUsage();
  const workersBefore = workers.cpuMs();
  const produced = await ctx.client.call<Produced>('flood', { queue: 'steady', seconds });
  const cpu = process.cpuUsage(cpuBefore);
  const workersCpuMs = workers.cpuMs() - workersBefore;
  const backlog = await ctx.contestant.unfinished('steady');
  const window = produced.ms / 1000;
  const done = await waitProcessed(ctx, workers, 'steady', produced.count, timeoutMs);
  const handled = await workers.finish();
  const latency = latencyStats(handled.latencies);
  return {
    seconds: round(window),
    enqueued: produced.count,
    enqueuePerSecond: Math.round(produced.count / window),
    completedPerSecond: Math.round((produced.count - backlog) / window),
    backlogAtEnd: backlog,
    p50: latency.p50,
    p99: latency.p99,
    max: latency.max,
    duplicates: handled.calls - handled.distinct,
    missing: produced.count - handled.distinct,
    enqueueErrors: produced.errors,
    complete: done.complete,
    ...(ctx.contestant.nodeInHarness
      ? { nodeCpuMsPer1k: round((cpu.user + cpu.system) / produced.count) }
      : {}),
    workersCpuMsPer1k: round((workersCpuMs * 1000) / produced.count),
  };
}
