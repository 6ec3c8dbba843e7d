import { expect, it } from 'vitest';
import type { StallEvent } from './history-log.ts';
import { startStallProbe } from './stall-probe.ts';

it('the stall probe records a gap in which its process ran no timer, with the CPU it spent', async () => {
  const stalls: StallEvent[] = [];
  let recorded = () => {};
  const stop = startStallProbe('p', (stall) => {
    stalls.push(stall);
    recorded();
  });
  let blockedAt = 0;
  try {
    // Let the probe tick, then block the event loop with 600 ms of busy work.
    await new Promise((resolve) => setTimeout(resolve, 150));
    blockedAt = Date.now();
    while (Date.now() < blockedAt + 600) {
      // busy
    }
    // The probe's next tick records the gap.
    await new Promise<void>((resolve) => {
      recorded = resolve;
    });
  } finally {
    stop();
  }
  // (a few ms of give: the start is the end on the wall clock minus the gap on the monotonic one)
  const stall = stalls.find((s) => s.end >= blockedAt + 600 && s.end - s.start >= 595);
  expect(stall).toMatchObject({ t: 'stall', process: 'p' });
  expect(stall!.cpuMs).toBeGreaterThan(0);
  // Linux says how long the main thread waited for a CPU meanwhile; elsewhere it is null.
  if (process.platform === 'linux') expect(stall!.waitMs).toEqual(expect.any(Number));
});
