// Worker crash: one worker process takes `jobs` jobs whose handlers never finish; a second worker
// process waits beside it; then the first is killed with SIGKILL. The clock runs from the kill until
// the store counts every job completed, which takes the contestant's own recovery of a dead worker's jobs.
import { round } from '../stats.ts';
import { now, until } from '../util.ts';
import { type RunContext, startWorkers, waitProcessed } from '../workers.ts';

/** Figures of one worker-crash run. */
export interface CrashResult {
  jobs: number;
  /** From the kill to the last job completed elsewhere; NaN when not within the time limit. */
  seconds: number;
  limitSeconds: number;
  duplicates: number;
  missing: number;
  complete: boolean;
}

/** Runs the worker-crash scenario on queue `crash`. */
export async function crash(ctx: RunContext, jobs: number, limitSeconds: number): Promise<CrashResult> {
  const doomed = await startWorkers(
    { ...ctx, workers: 1, extra: { ...ctx.extra, BENCH_HANG: '1' } },
    'crash',
  );
  await doomed.go();
  await ctx.client.call('bulk', { queue: 'crash', n: jobs });
  if (!(await until(async () => (await doomed.distinct()) >= jobs, 10, 30_000)))
    throw new Error(`the first worker took ${await doomed.distinct()} of ${jobs} jobs`);
  const rescuers = await startWorkers({ ...ctx, workers: 1 }, 'crash');
  await rescuers.go();
  await doomed.kill();
  const killedAt = now();
  const done = await waitProcessed(ctx, rescuers, 'crash', jobs, limitSeconds * 1000);
  const handled = await rescuers.finish();
  return {
    jobs,
    seconds: done.complete ? round((done.at - killedAt) / 1000) : Number.NaN,
    limitSeconds,
    duplicates: handled.calls - handled.distinct,
    missing: jobs - handled.distinct,
    complete: done.complete,
  };
}
