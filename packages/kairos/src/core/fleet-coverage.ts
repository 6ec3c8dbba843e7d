import type { WaitWorker } from './queue-wait.ts';

/** What the coverage check reads of a job. */
export interface CoverageJob {
  namespace: string;
  name: string;
  group: string;
  handler: string;
  paused: boolean;
}

/** Jobs no live worker can run, and groups of live workers that no job routes to. */
export interface FleetCoverage {
  /** Jobs (not paused) whose group has no live worker: `job (group g)`. */
  jobsWithoutWorkerGroup: string[];
  /** Jobs (not paused) whose group has live workers, none declaring the handler: `job (group g, handler h)`. */
  jobsWithoutHandler: string[];
  /** Groups served by live workers that no job uses, in name order (`namespace/group` outside `default`). */
  groupsWithoutJobs: string[];
}

/**
 * Which jobs the live workers (active, lease not expired at `now`) cannot run, and which of their
 * groups no job routes to: `kairos doctor`'s fleet checks. A paused job is left out (it creates no
 * runs); a job with a built-in task needs a worker that enabled the task (its built-in handler).
 * A group is a pool of one namespace: only that namespace's workers serve its jobs.
 */
export function fleetCoverage(
  jobs: readonly CoverageJob[],
  workers: readonly WaitWorker[],
  now: number,
): FleetCoverage {
  // Keyed by `namespace/group` (`group` alone in `default`): a namespace name holds no `/`.
  const handlersByGroup = new Map<string, Set<string>>();
  for (const w of workers) {
    if (w.status !== 'active' || w.leaseExpiresAt <= now) continue;
    const key = groupKey(w.namespace, w.group);
    const handlers = handlersByGroup.get(key) ?? new Set<string>();
    for (const h of w.handlers) handlers.add(h);
    handlersByGroup.set(key, handlers);
  }
  const coverage: FleetCoverage = {
    jobsWithoutWorkerGroup: [],
    jobsWithoutHandler: [],
    groupsWithoutJobs: [],
  };
  const usedGroups = new Set<string>();
  for (const job of jobs) {
    const key = groupKey(job.namespace, job.group);
    usedGroups.add(key);
    if (job.paused) continue;
    const handlers = handlersByGroup.get(key);
    if (!handlers) coverage.jobsWithoutWorkerGroup.push(`${job.name} (group ${key})`);
    else if (!handlers.has(job.handler))
      coverage.jobsWithoutHandler.push(`${job.name} (group ${key}, handler ${job.handler})`);
  }
  coverage.groupsWithoutJobs = [...handlersByGroup.keys()].filter((g) => !usedGroups.has(g)).sort();
  return coverage;
}

function groupKey(namespace: string, group: string): string {
  return namespace === 'default' ? group : `${namespace}/${group}`;
}
