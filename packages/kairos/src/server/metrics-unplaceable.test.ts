import { describe, expect, it } from 'vitest';
import type { Resources } from '../core/resources.ts';
import { Metrics } from './metrics.ts';

describe('kairos_runs_unplaceable', () => {
  it('counts the queued runs whose job requests more than any live worker of the group has in all', async () => {
    const now = 1_000_000;
    const worker = (group: string, resources: Record<string, number> | null, status = 'active') => ({
      id: `${group}-${status}`,
      namespace: 'default',
      group,
      handlers: ['h'],
      status,
      capacity: 4,
      running: 0,
      leaseExpiresAt: now + 5000,
      resources,
    });
    const count = (group: string, resources: Record<string, number> | null, queued: number) => ({
      namespace: 'default',
      group,
      jobName: `${group}-job`,
      handler: 'h',
      queued,
      oldestAvailableAt: now - 1000,
      groupServed: true,
      handlerServed: true,
      resources,
    });
    const metrics = new Metrics(undefined, async () => ({
      now,
      counts: [count('gpu', { gpu: 1 }, 3), count('cpu', { cpu: 2000 }, 2), count('plain', null, 5)],
      // gpu: only a draining worker has one; cpu: a live worker has 4 cores.
      workers: [
        worker('gpu', { gpu: 1 }, 'draining'),
        worker('gpu', { cpu: 8000 }),
        worker('cpu', { cpu: 4000 }),
      ],
    }));
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^kairos_runs_unplaceable\{namespace="default",group="gpu"\} 3$/m);
    expect(text).not.toMatch(/^kairos_runs_unplaceable\{[^}]*group="cpu"/m);
    expect(text).not.toMatch(/^kairos_runs_unplaceable\{[^}]*group="plain"/m);
  });

  it("counts a workflow step's run by its own request, not its job's", async () => {
    const now = 1_000_000;
    const live = {
      id: 'w',
      namespace: 'default',
      group: 'ml',
      handlers: ['train'],
      status: 'active',
      capacity: 4,
      running: 0,
      leaseExpiresAt: now + 5000,
      resources: { cpu: 8000 },
    };
    const metrics = new Metrics(undefined, async () => ({
      now,
      counts: [
        {
          namespace: 'default',
          group: 'ml',
          jobName: 'workflow-job',
          handler: 'train',
          // Five queued: two steps ask for a GPU, one for 4 cores, two request what the job does (nothing).
          queued: 5,
          oldestAvailableAt: now - 1000,
          groupServed: true,
          handlerServed: true,
          resources: null,
          ownRequests: [
            { resources: { gpu: 1 } as Resources, queued: 2 },
            { resources: { cpu: 4000 } as Resources, queued: 1 },
          ],
        },
      ],
      workers: [live],
    }));
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^kairos_runs_unplaceable\{namespace="default",group="ml"\} 2$/m);
  });
});
