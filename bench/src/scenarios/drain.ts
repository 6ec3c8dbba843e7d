// Drain: N jobs are enqueued through the bulk API while no worker runs; then the workers start and the
// clock runs until the store counts every job completed. The comparison drains 20,000 jobs (queue
// `drain`) and 100,000 (queue `large-drain`). Besides the rate over the whole drain, the steady-state
// rate: jobs per second between the first starts of 10 % and of 90 % of the jobs, which leaves out the
// workers' start-up and the last reports.
import type { Produced } from '../producer.ts';
import { serverCpuMs } from '../server-cpu.ts';
import { middleRate, round } from '../stats.ts';
import { now } from '../util.ts';
import { type RunContext, startWorkers, waitProcessed } from '../workers.ts';

/** Figures of one drain run. */
export interface DrainResult {
  jobs: number;
  enqueuePerSecond: number;
  processPerSecond: number;
  /** From the workers' start to the last job completed in the store. */
  seconds: number;
  /** Handler calls that ran, duplicates included. */
  handled: number;
  duplicates: number;
  /** Jobs enqueued that no handler ran. */
  missing: number;
  complete: boolean;
  /** Jobs per second between the first starts of 10 % and of 90 % of the jobs (absent in older files). */
  steadyPerSecond?: number;
  /** When 10 % and 90 % of the jobs had started, in ms after the workers were told to start. */
  tenthAtMs?: number;
  ninetiethAtMs?: number;
  /**
   * CPU time of the harness process during the drain, per 1,000 jobs (ms). For Kairos the node runs
   * in the harness, so this is the node's cost per run, steadier than the wall clock on a shared machine.
   */
  harnessCpuMsPer1k: number;
  /** The harness's CPU per 1,000 jobs where it is the contestant's node (Kairos; see
   * {@link Contestant.nodeInHarness}); absent for peers and in older files. */
  nodeCpuMsPer1k?: number;
  /**
   * CPU time of the worker processes during the drain (all their threads: the handlers' side, the
   * driver or HTTP client, GC), per 1,000 jobs (ms); absent in older files.
   */
  workersCpuMsPer1k?: number;
  /**
   * CPU time of the contestant's database server (PostgreSQL, Redis) during the drain, per 1,000 jobs
   * (ms); absent for an embedded store (SQLite runs inside the node) or where it cannot be read.
   */
  serverCpuMsPer1k?: number;
}

/** Runs the drain scenario with `jobs` jobs on `queue` (`drain` or `large-drain`). */
export async function drain(
  ctx: RunContext,
  jobs: number,
  queue = 'drain',
  timeoutMs = 300_000,
): Promise<DrainResult> {
  const enqueued = await ctx.client.call<Produced>('bulk', { queue, n: jobs });
  const workers = await startWorkers({ ...ctx, extra: { ...ctx.extra, BENCH_RECORD_STARTS: '1' } }, queue);
  const start = now();
  const { server, nodeInHarness } = ctx.contestant;
  const serverBefore = server ? serverCpuMs(server) : null;
  const cpuBefore = process.cpuUsage();
  const workersBefore = workers.cpuMs();
  await workers.go();
  const done = await waitProcessed(ctx, workers, queue, jobs, timeoutMs);
  const cpu = process.cpuUsage(cpuBefore);
  const harnessCpuMsPer1k = round((cpu.user + cpu.system) / jobs);
  const workersCpuMs = workers.cpuMs() - workersBefore;
  const serverAfter = server ? serverCpuMs(server) : null;
  const seconds = (done.at - start) / 1000;
  const handled = await workers.finish();
  const middle = middleRate(handled.starts, start);
  return {
    jobs,
    enqueuePerSecond: Math.round(jobs / (enqueued.ms / 1000)),
    processPerSecond: done.complete ? Math.round(jobs / seconds) : Number.NaN,
    seconds: round(seconds),
    handled: handled.calls,
    duplicates: handled.calls - handled.distinct,
    missing: jobs - handled.distinct,
    complete: done.complete,
    steadyPerSecond: middle.perSecond,
    tenthAtMs: middle.fromMs,
    ninetiethAtMs: middle.toMs,
    harnessCpuMsPer1k,
    ...(nodeInHarness ? { nodeCpuMsPer1k: harnessCpuMsPer1k } : {}),
    workersCpuMsPer1k: round((workersCpuMs * 1000) / jobs),
    ...(serverBefore !== null && serverAfter !== null
      ? { serverCpuMsPer1k: round(((serverAfter - serverBefore) * 1000) / jobs) }
      : {}),
  };
}
