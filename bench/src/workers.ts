// A contestant's worker processes for one scenario, and the wait for a queue to be fully processed.
import type { Contestant, Env } from './contestant.ts';
import type { ProbeReport } from './probe.ts';
import { type Child, spawnChild } from './processes.ts';
import { processTreeCpuMs } from './server-cpu.ts';
import type { Timings } from './timings.ts';
import { now, until } from './util.ts';

/** Everything a scenario needs to drive one contestant in one run. */
export interface RunContext {
  contestant: Contestant;
  env: Env;
  /** The client process (producer). */
  client: Child;
  /** The node binary for client and worker processes. */
  execPath: string;
  /** Worker processes per scenario. */
  workers: number;
  /** Extra environment for the child processes. */
  extra: Record<string, string>;
  /** Every worker process forked in this run, so that none outlives it (see run.ts). */
  spawned: Child[];
  /** Where the run adds up the time its worker processes take to start and to stop. */
  timings: Timings;
}

/** What the worker processes of a scenario saw, merged. */
export interface Handled {
  /** Handler calls, duplicates included. */
  calls: number;
  /** Distinct jobs that ran. */
  distinct: number;
  latencies: number[];
  /** Scheduled jobs: `[schedule number, nominal fire time, lateness ms]`, one per handler call. */
  fires: [number, number, number][];
  /** When each distinct job first started, per process (see Probe), not sorted. */
  starts: number[];
  malformed: number;
}

/** The worker processes of one scenario. */
export interface WorkerSet {
  /** Lets every process start consuming. */
  go(): Promise<void>;
  /** Sum over processes of the distinct jobs each ran (a cheap progress figure). */
  distinct(): Promise<number>;
  /** How many schedules fired at a nominal instant at or after `since` (epoch ms), in any process. */
  firedSince(since: number): Promise<number>;
  /** CPU time so far of the processes, all their threads, summed (ms); the processes must be alive. */
  cpuMs(): number;
  /** Collects the reports and stops the processes. */
  finish(): Promise<Handled>;
  /** `kill -9` of every process of the set. */
  kill(): Promise<void>;
}

/** Forks the worker processes for `queue`; each is connected but idle until `go()`. */
export async function startWorkers(ctx: RunContext, queue: string): Promise<WorkerSet> {
  const children = await ctx.timings.time('worker start', () =>
    Promise.all(
      Array.from({ length: ctx.workers }, () =>
        spawnChild({
          execPath: ctx.execPath,
          role: 'worker',
          contestant: ctx.contestant.name,
          env: ctx.env,
          queues: [queue],
          extra: ctx.extra,
        }),
      ),
    ),
  );
  ctx.spawned.push(...children);
  return {
    async go() {
      await Promise.all(children.map((child) => child.call('go')));
    },
    async distinct() {
      const counts = await Promise.all(children.map((child) => child.call<number>('distinct')));
      return counts.reduce((sum, n) => sum + n, 0);
    },
    async firedSince(since) {
      const fired = await Promise.all(children.map((child) => child.call<number[]>('firedSince', { since })));
      return new Set(fired.flat()).size;
    },
    cpuMs() {
      return children.reduce((sum, child) => sum + (processTreeCpuMs(child.pid) ?? 0), 0);
    },
    async finish() {
      const reports = await Promise.all(
        children.map((child) => child.call<ProbeReport & { malformed: number }>('report')),
      );
      await ctx.timings.time('worker stop', () => Promise.all(children.map((child) => child.stop())));
      const ids = new Set(reports.flatMap((r) => r.ids));
      return {
        calls: reports.reduce((sum, r) => sum + r.calls, 0),
        distinct: ids.size,
        latencies: reports.flatMap((r) => r.latencies),
        fires: reports.flatMap((r) => r.fires),
        starts: reports.flatMap((r) => r.starts),
        malformed: reports.reduce((sum, r) => sum + r.malformed, 0),
      };
    },
    async kill() {
      await Promise.all(children.map((child) => child.kill()));
    },
  };
}

/** Waits until the handlers ran `expected` distinct jobs and the store counts none of `queue` as
 * unfinished, asking the workers every `everyMs`. Resolves with the instant the store was seen empty,
 * or `complete: false` after `timeoutMs`. */
export async function waitProcessed(
  ctx: RunContext,
  workers: WorkerSet,
  queue: string,
  expected: number,
  timeoutMs: number,
  everyMs = 10,
): Promise<{ complete: boolean; at: number }> {
  const deadline = now() + timeoutMs;
  const ran = await until(async () => (await workers.distinct()) >= expected, everyMs, timeoutMs);
  const stored =
    ran && (await until(async () => (await ctx.contestant.unfinished(queue)) === 0, 5, deadline - now()));
  return { complete: ran && stored, at: now() };
}
