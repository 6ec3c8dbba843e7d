import { describe, expect, it } from 'vitest';
import { WorkerLease } from './lease.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS, requestTimeoutFor } from './nodes.ts';

describe('WorkerLease', () => {
  it('is trusted for the lease minus a margin after the send of the last acknowledged heartbeat', () => {
    let now = 1000;
    const lease = new WorkerLease(() => now);
    expect(lease.live()).toBe(false);
    const sent = lease.mark();
    now = 1400;
    // Acknowledged late: the lease still counts from the send.
    lease.registered(sent, 5000, 1000);
    expect(lease.live()).toBe(true);
    now = sent + 3749;
    expect(lease.live()).toBe(true);
    now = sent + 3750;
    expect(lease.live()).toBe(false);
    // An answer to an older heartbeat does not move it back.
    lease.renewed(sent - 500, 5000, 1000);
    expect(lease.live()).toBe(false);
    // After the lapse, the first answer does not do: the reaper may have been ending attempts meanwhile.
    const again = lease.mark();
    now += 10;
    lease.renewed(again, 5000, 1000);
    expect(lease.live()).toBe(false);
    // The next heartbeat, sent after that answer came back, names them; its answer does.
    now += 1;
    const next = lease.mark();
    lease.renewed(next, 5000, 1000);
    expect(lease.live()).toBe(true);
    // A new registration is live at once.
    now += 10_000;
    expect(lease.live()).toBe(false);
    lease.registered(lease.mark(), 5000, 1000);
    expect(lease.live()).toBe(true);
    lease.reset();
    expect(lease.live()).toBe(false);
  });

  it('keeps a beat of margin when the beat is long against the lease', () => {
    let now = 0;
    const lease = new WorkerLease(() => now);
    lease.registered(0, 3000, 2000);
    now = 999;
    expect(lease.live()).toBe(true);
    now = 1000;
    expect(lease.live()).toBe(false);
  });
});

describe('requestTimeoutFor', () => {
  it('lets two requests time out and a beat pass well within the lease', () => {
    for (const [leaseMs, heartbeatMs] of [
      [5000, 1000],
      [3000, 1000],
      [60_000, 5000],
      [1000, 200],
    ] as const) {
      const limit = requestTimeoutFor(leaseMs, heartbeatMs);
      expect(heartbeatMs + 3 * limit).toBeLessThanOrEqual(leaseMs);
      expect(limit).toBeGreaterThan(0);
    }
    expect(DEFAULT_REQUEST_TIMEOUT_MS).toBe(1333);
  });
});
