import { KairosApiError, type Report, type ReportResponse } from '@kairos/client';
import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.ts';
import { formatDuration, parseDuration } from './duration.ts';
import { CancelledError, NonRetryableError, RetryAfterError, TimeoutError } from './errors.ts';
import type { LogFields, WorkerLogger } from './logger.ts';
import { classifyOutcome } from './outcome.ts';
import { Reporter } from './reporter.ts';
import { Worker } from './worker.ts';

const ref = { runId: 7, attempt: 2 };
const inTime = { timedOut: false, timeoutMs: 30_000 };

type LogLine = { level: string; message: string; fields?: LogFields };

function recordingLogger(): WorkerLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (message: string, fields?: LogFields) =>
    lines.push({ level, message, fields });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

describe('Worker options', () => {
  const valid = { url: 'http://127.0.0.1:7070', handleSignals: false, logger: recordingLogger() };

  it('accepts valid options, one URL or several', () => {
    expect(() => new Worker(valid)).not.toThrow();
    expect(
      () => new Worker({ ...valid, url: ['http://a:7070', 'https://b:7070/'], concurrency: 1 }),
    ).not.toThrow();
    expect(new Worker(valid).id).toBeNull();
    expect(new Worker(valid).running).toBe(0);
  });

  it.each([
    [{ url: '' }, /options\.url/],
    [{ url: [] }, /options\.url/],
    [{ url: 'not a url' }, /options\.url/],
    [{ url: 'ftp://host' }, /http: or https:/],
    [{ url: ['http://a:7070', ''] }, /options\.url\[1\]/],
    [{ concurrency: 0 }, /options\.concurrency/],
    [{ concurrency: 1.5 }, /options\.concurrency/],
    [{ concurrency: '4' }, /options\.concurrency/],
    [{ group: '' }, /options\.group/],
    [{ group: "' OR 1=1--" }, /options\.group/],
    [{ group: 'a b' }, /options\.group/],
    [{ name: '  ' }, /options\.name/],
    [{ pollWaitMs: -1 }, /options\.pollWaitMs/],
    [{ prefetch: -1 }, /options\.prefetch/],
    [{ prefetch: 10_001 }, /options\.prefetch/],
    [{ shutdownGraceMs: Number.NaN }, /options\.shutdownGraceMs/],
    [{ labels: { team: 3 } }, /options\.labels\.team/],
    [{ handleSignals: 'yes' }, /options\.handleSignals/],
    [{ logger: { info() {} } }, /options\.logger\.debug/],
  ])('rejects %j', (bad, message) => {
    expect(() => new Worker({ ...valid, ...(bad as object) })).toThrow(TypeError);
    expect(() => new Worker({ ...valid, ...(bad as object) })).toThrow(message);
  });

  it('refuses a handler name twice, and a handler that is not a function', () => {
    const worker = new Worker(valid).handle('a', () => null);
    expect(() => worker.handle('a', () => null)).toThrow(/already registered/);
    expect(() => worker.handle('b', 'nope' as never)).toThrow(TypeError);
  });

  it('refuses a handler name no job could name (the node would refuse it at registration)', () => {
    const worker = new Worker(valid);
    for (const name of ['a b', '-a', 'a\u0000', 'é', 'x'.repeat(201)]) {
      expect(() => worker.handle(name, () => null)).toThrow(/letters, digits/);
    }
    expect(() => worker.handle('mail:send/v2.a_b-c', () => null)).not.toThrow();
  });

  it('refuses to start without handlers', async () => {
    await expect(new Worker(valid).start()).rejects.toThrow(/no handlers/);
  });

  it('keeps retrying an unreachable node without throwing, and stops cleanly', async () => {
    const logger = recordingLogger();
    const worker = new Worker({ ...valid, url: ['http://127.0.0.1:1', 'http://127.0.0.1:2'], logger });
    worker.handle('job', () => null);
    const started = worker.start();
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(() => worker.handle('late', () => null)).toThrow(/before start/);
    await worker.stop();
    await expect(started).resolves.toBeUndefined();
    expect(worker.id).toBeNull();
    // Several failures, one warning for the whole streak.
    expect(logger.lines.filter((line) => line.level === 'warn')).toHaveLength(1);
    await worker.stop();
  });
});

describe('durations', () => {
  it.each([
    [250, 250],
    ['100ms', 100],
    ['30s', 30_000],
    ['1.5m', 90_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    [' 5 s ', 5000],
  ])('parses %j', (input, ms) => {
    expect(parseDuration(input, 'x')).toBe(ms);
  });

  it.each([['soon'], ['-1s'], ['10'], ['5 minutes'], [-5], [Number.NaN], [Number.POSITIVE_INFINITY]])(
    'rejects %j',
    (input) => {
      expect(() => parseDuration(input, 'delay')).toThrow(TypeError);
    },
  );

  it('formats for messages', () => {
    expect(formatDuration(250)).toBe('250ms');
    expect(formatDuration(1500)).toBe('1.5s');
    expect(formatDuration(300_000)).toBe('5m');
  });

  it('gives RetryAfterError its delay in ms, and refuses a bad one', () => {
    expect(new RetryAfterError('rate limited', '30s').retryAfterMs).toBe(30_000);
    expect(new RetryAfterError('rate limited', 1200).retryAfterMs).toBe(1200);
    expect(() => new RetryAfterError('rate limited', 'later')).toThrow(/RetryAfterError delay/);
  });

  it('names the errors', () => {
    expect(new NonRetryableError('x').name).toBe('NonRetryableError');
    expect(new RetryAfterError('x', 1).name).toBe('RetryAfterError');
    expect(new TimeoutError('x', 5).name).toBe('TimeoutError');
    expect(new CancelledError('x').name).toBe('CancelledError');
    expect(new NonRetryableError('x')).toBeInstanceOf(Error);
  });
});

describe('classifyOutcome', () => {
  it('reports a returned value as the result', () => {
    expect(classifyOutcome(ref, { ok: true, value: { sent: 3 } }, inTime)).toEqual({
      ...ref,
      outcome: 'succeeded',
      result: { sent: 3 },
    });
  });

  it('reports undefined as null', () => {
    expect(classifyOutcome(ref, { ok: true, value: undefined }, inTime)).toEqual({
      ...ref,
      outcome: 'succeeded',
      result: null,
    });
  });

  it('copies the result as JSON at completion', () => {
    const value = { when: new Date(0), list: [1] };
    const report = classifyOutcome(ref, { ok: true, value }, inTime);
    value.list.push(2);
    expect(report).toEqual({
      ...ref,
      outcome: 'succeeded',
      result: { when: '1970-01-01T00:00:00.000Z', list: [1] },
    });
  });

  it('fails an attempt whose result is not JSON', () => {
    const report = classifyOutcome(ref, { ok: true, value: { n: 1n } }, inTime);
    expect(report).toMatchObject({ outcome: 'failed', error: { name: 'InvalidResult' } });
  });

  it('fails without retry on NonRetryableError', () => {
    const report = classifyOutcome(ref, { ok: false, error: new NonRetryableError('bad input') }, inTime);
    expect(report).toMatchObject({
      ...ref,
      outcome: 'failed',
      retryable: false,
      error: { name: 'NonRetryableError', message: 'bad input' },
    });
    expect(report).not.toHaveProperty('retryAfterMs');
  });

  it('asks for a delay on RetryAfterError', () => {
    const report = classifyOutcome(
      ref,
      { ok: false, error: new RetryAfterError('rate limited', '45s') },
      inTime,
    );
    expect(report).toMatchObject({
      outcome: 'failed',
      retryAfterMs: 45_000,
      error: { name: 'RetryAfterError' },
    });
    expect(report).not.toHaveProperty('retryable');
  });

  it('reports a timeout, whether the handler then threw or returned', () => {
    const timedOut = { timedOut: true, timeoutMs: 5000 };
    const thrown = classifyOutcome(ref, { ok: false, error: new TimeoutError('late', 5000) }, timedOut);
    const returned = classifyOutcome(ref, { ok: true, value: 'done anyway' }, timedOut);
    for (const report of [thrown, returned]) {
      expect(report).toEqual({
        ...ref,
        outcome: 'timed_out',
        error: { name: 'Timeout', message: 'the attempt passed its time limit of 5s' },
      });
    }
  });

  it('keeps the name, message and stack of any other error', () => {
    const error = new RangeError('out of range');
    const report = classifyOutcome(ref, { ok: false, error }, inTime);
    expect(report).toEqual({
      ...ref,
      outcome: 'failed',
      error: { name: 'RangeError', message: 'out of range', stack: error.stack },
    });
  });

  it.each([
    ['a string', 'a string'],
    [42, '42'],
    [{ code: 'E1' }, '{"code":"E1"}'],
    [undefined, 'undefined'],
    [null, 'null'],
  ])('turns a thrown non-Error %j into a message', (thrown, message) => {
    expect(classifyOutcome(ref, { ok: false, error: thrown }, inTime)).toEqual({
      ...ref,
      outcome: 'failed',
      error: { name: 'Error', message },
    });
  });

  it('clips fields to the bounds the node accepts', () => {
    const error = new Error('x'.repeat(20_000));
    error.name = 'N'.repeat(500);
    const report = classifyOutcome(ref, { ok: false, error }, inTime);
    if (report.outcome === 'succeeded') throw new Error('expected a failure');
    expect(report.error.name.length).toBeLessThanOrEqual(200);
    expect(report.error.message.length).toBeLessThanOrEqual(8192);
    expect(report.error.stack?.length ?? 0).toBeLessThanOrEqual(16_384);
  });
});

describe('Reporter', () => {
  const succeeded = (runId: number): Report => ({ runId, attempt: 1, outcome: 'succeeded', result: null });
  const ok = (reports: Report[]): ReportResponse => ({
    results: reports.map(({ runId, attempt }) => ({ runId, attempt, ok: true })),
  });

  const turn = () => new Promise((resolve) => setImmediate(resolve));
  /** A reporter whose node acknowledges every report; `batches` records the run ids of each request. */
  const acknowledging = () => {
    const batches: number[][] = [];
    const reporter = new Reporter(async (reports) => {
      batches.push(reports.map((r) => r.runId));
      return ok(reports);
    }, recordingLogger());
    return { reporter, batches };
  };

  it('sends in the next turn of the event loop, one request at a time, coalescing what piles up meanwhile', async () => {
    const batches: number[][] = [];
    let release: () => void = () => {};
    const reporter = new Reporter(async (reports) => {
      batches.push(reports.map((r) => r.runId));
      if (batches.length === 1) await new Promise<void>((resolve) => (release = resolve));
      return ok(reports);
    }, recordingLogger());
    reporter.add(succeeded(1));
    reporter.add(succeeded(2));
    expect(batches).toEqual([]);
    await turn();
    expect(batches).toEqual([[1, 2]]);
    reporter.add(succeeded(3));
    reporter.add(succeeded(4));
    await turn();
    expect(batches).toEqual([[1, 2]]);
    expect(reporter.pending().map((r) => r.runId)).toEqual([1, 2, 3, 4]);
    release();
    expect(await reporter.flush(1000)).toBe(true);
    expect(batches).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(reporter.pending()).toEqual([]);
  });

  it('lets a poll carry the queued reports: pending until the poll is answered, not sent again', async () => {
    const { reporter, batches } = acknowledging();
    reporter.add(succeeded(1));
    reporter.add(succeeded(2));
    const carried = reporter.take();
    expect(carried.map((r) => r.runId)).toEqual([1, 2]);
    expect(reporter.take()).toEqual([]);
    await turn();
    expect(batches).toEqual([]);
    expect(reporter.pending().map((r) => r.runId)).toEqual([1, 2]);
    reporter.carried(carried, ok(carried).results);
    expect(reporter.pending()).toEqual([]);
    expect(await reporter.flush(1000)).toBe(true);
    expect(batches).toEqual([]);
  });

  it("sends on its own what a failed poll carried, and what a poll's answer did not acknowledge", async () => {
    const { reporter, batches } = acknowledging();
    reporter.add(succeeded(1));
    const failed = reporter.take();
    reporter.giveBack(failed);
    // Given back, a report is this queue's alone: the next poll does not take it again.
    expect(reporter.take()).toEqual([]);
    expect(reporter.pending().map((r) => r.runId)).toEqual([1]);
    expect(await reporter.flush(1000)).toBe(true);
    reporter.add(succeeded(2));
    const unacknowledged = reporter.take();
    reporter.carried(unacknowledged, undefined);
    expect(await reporter.flush(1000)).toBe(true);
    expect(batches).toEqual([[1], [2]]);
    expect(reporter.pending()).toEqual([]);
  });

  it('retries a batch that failed to reach the node, without dropping it', async () => {
    let calls = 0;
    const reporter = new Reporter(async (reports) => {
      calls++;
      if (calls < 3) throw new TypeError('fetch failed');
      return ok(reports);
    }, recordingLogger());
    reporter.add(succeeded(1));
    expect(await reporter.flush(5000)).toBe(true);
    expect(calls).toBe(3);
  });

  it('isolates a report the node refuses and replaces it with a failure', async () => {
    const sent: Report[] = [];
    const reporter = new Reporter(async (reports) => {
      if (reports.some((r) => r.runId === 2 && r.outcome === 'succeeded')) {
        throw new KairosApiError(413, 'PAYLOAD_TOO_LARGE', 'request body too large');
      }
      sent.push(...reports);
      return ok(reports);
    }, recordingLogger());
    for (const runId of [1, 2, 3, 4]) reporter.add(succeeded(runId));
    expect(await reporter.flush(1000)).toBe(true);
    expect(sent.map((r) => [r.runId, r.outcome])).toEqual(
      expect.arrayContaining([
        [1, 'succeeded'],
        [2, 'failed'],
        [3, 'succeeded'],
        [4, 'succeeded'],
      ]),
    );
    expect(sent).toHaveLength(4);
    expect(sent.find((r) => r.runId === 2)).toMatchObject({
      error: { name: 'ReportRejected' },
      retryable: false,
    });
  });

  it('gives up at close and counts what was left', async () => {
    const reporter = new Reporter(async () => {
      throw new TypeError('fetch failed');
    }, recordingLogger());
    reporter.add(succeeded(1));
    reporter.add(succeeded(2));
    expect(await reporter.flush(150)).toBe(false);
    expect(reporter.close()).toBe(2);
    reporter.add(succeeded(3));
    expect(reporter.pending()).toEqual([]);
  });
});

describe('Backoff', () => {
  it('doubles from 100 ms up to 5 s and starts over after a reset', () => {
    const backoff = new Backoff(100, 5000, () => 1);
    const delays = Array.from({ length: 8 }, () => backoff.next());
    expect(delays).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    backoff.reset();
    expect(backoff.next()).toBe(100);
  });
});
