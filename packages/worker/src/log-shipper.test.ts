import { KairosApiError, type WorkerLogEntry, type WorkerLogsRequest } from '@kairos/client';
import { describe, expect, it } from 'vitest';
import { LogShipper } from './log-shipper.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const line = (message: string, runId = 1): WorkerLogEntry => ({
  runId,
  attempt: 1,
  level: 'info',
  message,
  time: '2026-01-01T00:00:00.000Z',
});

describe('LogShipper', () => {
  it('coalesces a burst into one request and keeps the order', async () => {
    const sent: WorkerLogsRequest[] = [];
    const shipper = new LogShipper(async (request) => sent.push(request), quiet);
    for (let i = 0; i < 2500; i++) shipper.log(line(`l${i}`));
    shipper.progress({ runId: 1, attempt: 1, value: 0.1 });
    shipper.progress({ runId: 1, attempt: 1, value: 0.2, message: 'last wins' });
    expect(await shipper.flush(5000)).toBe(true);
    expect(sent.map((r) => r.logs.length)).toEqual([1000, 1000, 500]);
    expect(sent.flatMap((r) => r.logs.map((l) => l.message))).toEqual(
      Array.from({ length: 2500 }, (_, i) => `l${i}`),
    );
    expect(sent[0]?.progress).toEqual([{ runId: 1, attempt: 1, value: 0.2, message: 'last wins' }]);
  });

  it('retries a failed request without losing lines; drops a batch the node refuses', async () => {
    const sent: string[] = [];
    let calls = 0;
    const shipper = new LogShipper(async (request) => {
      calls++;
      if (calls === 1) throw new Error('connection refused');
      if (request.logs.some((l) => l.message === 'poison'))
        throw new KairosApiError(400, 'VALIDATION_FAILED', 'bad');
      sent.push(...request.logs.map((l) => l.message));
    }, quiet);
    shipper.log(line('a'));
    expect(await shipper.flush(5000)).toBe(true);
    expect(sent).toEqual(['a']);
    shipper.log(line('poison'));
    expect(await shipper.flush(5000)).toBe(true);
    shipper.log(line('b'));
    expect(await shipper.flush(5000)).toBe(true);
    expect(sent).toEqual(['a', 'b']);
  });

  it('a flush waits for the lines queued before it, not for lines logged after', async () => {
    let release: () => void = () => {};
    const sent: string[] = [];
    const shipper = new LogShipper(async (request) => {
      sent.push(...request.logs.map((l) => l.message));
      // The second request hangs: lines logged after the flush began must not hold it.
      if (sent.length > 1) await new Promise<void>((resolve) => (release = resolve));
    }, quiet);
    shipper.log(line('mine'));
    const flushed = shipper.flush(5000);
    await new Promise((resolve) => setImmediate(resolve));
    shipper.log(line('theirs', 2));
    expect(await flushed).toBe(true);
    expect(sent[0]).toBe('mine');
    release();
    shipper.close();
  });
});
