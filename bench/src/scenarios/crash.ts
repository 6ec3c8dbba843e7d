// Worker crash: one worker process takes `jobs` jobs (or as many as it holds) whose handlers never finish; a second worker
// process waits beside it; then the first is killed with SIGKILL. The clock runs from the kill until
// the store counts every job completed, which takes the contestant's own recovery of a dead worker's jobs.
// It runs twice: on queue `crash` with the contestant's defaults, and on queue `crash-tuned` with its
// settings for fast recovery (see Contestant.fastRecovery). Nothing else runs during its wait.
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

/** Runs the worker-crash scenario on `queue` (`crash` or `crash-tuned`). */
export async function crash(
  ctx: RunContext,
  jobs: number,
  limitSeconds: number,
  queue = 'crash',
): Promise<CrashResult> {
  const doomed = await startWorkers({ ...ctx, workers: 1, extra: { ...ctx.extra, BENCH_HANG: '1' } }, queue);
  await doomed.go();
  await ctx.client.call('bulk', { queue, n: jobs });
  // The first worker takes what it will: all of them, or as many as it runs at once while it holds
  // the rest (Graphile Worker runs 24 and keeps the others locked in its local queue). Either way
  // every job is then held by a process that is about to die.
  let taken = 0;
  let steadySince = now();
  const settled = await until(
    async () => {
      const n = await doomed.distinct();
      if (n !== taken) [taken, steadySince] = [n, now()];
      return n >= jobs || (n > 0 && now() - steadySince > 2000);
    },
    20,
    30_000,
  );
  if (!settled) throw new Error(`the first worker took no job within 30 s`);
  const rescuers = await startWorkers({ ...ctx, workers: 1 }, queue);
  await rescuers.go();
  await doomed.kill();
  const killedAt = now();
  const done = await waitProcessed(ctx, rescuers, queue, jobs, limitSeconds * 1000);
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
