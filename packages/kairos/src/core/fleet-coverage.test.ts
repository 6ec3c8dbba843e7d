import { describe, expect, it } from 'vitest';
import { type CoverageJob, fleetCoverage } from './fleet-coverage.ts';
import type { WaitWorker } from './queue-wait.ts';

const NOW = Date.UTC(2026, 0, 1);
const job = (name: string, group: string, handler: string, paused = false): CoverageJob => ({
  namespace: 'default',
  name,
  group,
  handler,
  paused,
});
const worker = (
  id: string,
  group: string,
  handlers: string[],
  extra: Partial<WaitWorker> = {},
): WaitWorker => ({
  id,
  namespace: 'default',
  group,
  handlers,
  status: 'active',
  capacity: 1,
  running: 0,
  leaseExpiresAt: NOW + 5000,
  ...extra,
});

describe('fleet coverage', () => {
  it('names jobs without a live worker in their group, jobs whose handler none declares, and idle groups', () => {
    const coverage = fleetCoverage(
      [job('a', 'g', 'h'), job('b', 'g', 'missing'), job('c', 'empty', 'h'), job('d', 'empty', 'h', true)],
      [
        worker('w1', 'g', ['h']),
        worker('w2', 'idle', ['h']),
        worker('w3', 'gone', ['h'], { leaseExpiresAt: NOW }),
      ],
      NOW,
    );
    expect(coverage).toEqual({
      jobsWithoutWorkerGroup: ['c (group empty)'],
      jobsWithoutHandler: ['b (group g, handler missing)'],
      groupsWithoutJobs: ['idle'],
    });
  });

  it("a group is a pool of one namespace: another namespace's workers of the same group name serve none of its jobs", () => {
    const coverage = fleetCoverage(
      [job('a', 'g', 'h'), { ...job('b', 'g', 'h'), namespace: 'blue' }],
      [worker('w1', 'g', ['h'], { namespace: 'blue' })],
      NOW,
    );
    expect(coverage).toEqual({
      jobsWithoutWorkerGroup: ['a (group g)'],
      jobsWithoutHandler: [],
      groupsWithoutJobs: [],
    });
  });

  it('a draining worker serves nothing new; a paused job still uses its group', () => {
    const coverage = fleetCoverage(
      [job('a', 'g', 'h'), job('p', 'quiet', 'h', true)],
      [worker('w1', 'g', ['h'], { status: 'draining' }), worker('w2', 'quiet', ['h'])],
      NOW,
    );
    expect(coverage).toEqual({
      jobsWithoutWorkerGroup: ['a (group g)'],
      jobsWithoutHandler: [],
      groupsWithoutJobs: [],
    });
  });
});
