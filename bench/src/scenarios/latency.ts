// Latency at a fixed rate: workers wait; the producer enqueues `rate` jobs per second, each at its due
// instant, for a fixed time; each handler records start − enqueue, both read on the machine's clock.
import type { Produced } from '../producer.ts';
import { latencyStats } from '../stats.ts';
import { type RunContext, startWorkers, waitProcessed } from '../workers.ts';

/** Figures of one fixed-rate latency run (milliseconds). */
export interface LatencyResult {
  rate: number;
  seconds: number;
  jobs: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  duplicates: number;
  missing: number;
  enqueueErrors: number;
  complete: boolean;
}

/** Runs the fixed-rate latency scenario on queue `latency`. */
export async function latency(
  ctx: RunContext,
  rate: number,
  seconds: number,
  timeoutMs = 60_000,
): Promise<LatencyResult> {
  const workers = await startWorkers(ctx, 'latency');
  await workers.go();
  const produced = await ctx.client.call<Produced>('paced', { queue: 'latency', rate, seconds });
  const done = await waitProcessed(ctx, workers, 'latency', produced.count, timeoutMs);
  const handled = await workers.finish();
  const stats = latencyStats(handled.latencies);
  return {
    rate,
    seconds,
    jobs: produced.count,
    p50: stats.p50,
    p95: stats.p95,
    p99: stats.p99,
    max: stats.max,
    duplicates: handled.calls - handled.distinct,
    missing: produced.count - handled.distinct,
    enqueueErrors: produced.errors,
    complete: done.complete,
  };
}
