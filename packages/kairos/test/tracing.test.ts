import type { KairosClient, Run } from '@kairos/client';
import type { Worker } from '@kairos/worker';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  NodeTracerProvider,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, testWorker } from './helpers.ts';

// One process: a node and a worker, with an in-memory exporter registered as the application's SDK
// would be (provider.register(): the global tracer provider, AsyncLocalStorage context, W3C
// propagator). With no SDK registered: tracing-off.test.ts.

async function finished(client: KairosClient, id: number): Promise<Run> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const run = await client.getRun(id);
    if (['succeeded', 'failed', 'timed_out', 'cancelled'].includes(run.status)) return run;
    if (Date.now() > deadline) throw new Error(`run ${id} still ${run.status} after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('tracing with an SDK registered: one trace from the producer to the handler', async () => {
  const started = await startTestNode();
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const app = trace.getTracer('app');
  let admin: KairosClient;
  let worker: Worker;

  beforeAll(async () => {
    provider.register();
    admin = started.admin;
    await admin.createJob({ name: 'traced', handler: 'traced', trigger: { kind: 'manual' } });
    await admin.createJob({ name: 'failing', handler: 'failing', trigger: { kind: 'manual' } });
    worker = testWorker(started.node, 'default')
      .handle('traced', async (ctx) => {
        await app.startActiveSpan('handler-step', async (span) => {
          span.setAttribute('run', ctx.runId);
          span.end();
        });
        return 'done';
      })
      .handle('failing', () => {
        throw new Error('boom');
      })
      .handle('ticking', async (ctx) => {
        app.startActiveSpan('tick-step', (span) => {
          span.setAttribute('run', ctx.runId);
          span.end();
        });
      });
    await worker.start();
  });
  afterAll(async () => {
    await worker?.stop();
    await provider.shutdown();
    trace.disable();
  });

  /** The finished spans, once `ready` finds what it needs in them (spans end after the run's report). */
  async function spansWhen(ready: (spans: ReadableSpan[]) => boolean): Promise<ReadableSpan[]> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const spans = exporter.getFinishedSpans();
      if (ready(spans)) return spans;
      if (Date.now() > deadline) throw new Error(`spans not there after 30 s: ${spans.map((s) => s.name)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  const parentOf = (span: ReadableSpan, spans: ReadableSpan[]) =>
    spans.find((s) => s.spanContext().spanId === span.parentSpanContext?.spanId);
  const attemptOf = (runId: number) => (s: ReadableSpan) =>
    s.name === 'kairos.attempt' && s.attributes['kairos.run.id'] === runId;

  it('producer span → client trigger → server request → dispatch → attempt → handler span, one trace', async () => {
    const queued = await app.startActiveSpan('producer', async (span) => {
      try {
        return await admin.triggerJob('traced');
      } finally {
        span.end();
      }
    });
    expect((await finished(admin, queued.id)).status).toBe('succeeded');
    const spans = await spansWhen(
      (all) => all.some(attemptOf(queued.id)) && all.some((s) => s.name === 'handler-step'),
    );

    const handler = spans.find((s) => s.name === 'handler-step' && s.attributes.run === queued.id)!;
    const chain = [handler];
    for (let span = parentOf(handler, spans); span; span = parentOf(span, spans)) chain.push(span);
    expect(chain.map((s) => s.name)).toEqual([
      'handler-step',
      'kairos.attempt',
      'kairos.dispatch',
      'POST /v1/jobs/:name/trigger',
      'kairos.trigger',
      'producer',
    ]);
    expect(new Set(chain.map((s) => s.spanContext().traceId)).size).toBe(1);
    const [, attempt, dispatch, request, client] = chain as [ReadableSpan, ...ReadableSpan[]];
    expect(attempt!.kind).toBe(SpanKind.CONSUMER);
    expect(attempt!.attributes).toMatchObject({
      'kairos.job': 'traced',
      'kairos.run.id': queued.id,
      'kairos.attempt': 1,
      'kairos.attempt.outcome': 'succeeded',
    });
    expect(dispatch!.attributes).toMatchObject({ 'kairos.job': 'traced', 'kairos.attempt': 1 });
    expect(dispatch!.attributes['kairos.worker.id']).toEqual(expect.any(String));
    // The dispatch links to the worker's poll request that claimed the run.
    const poll = spans.find((s) => s.spanContext().spanId === dispatch!.links[0]?.context.spanId);
    expect(poll?.name).toBe('POST /v1/worker/:id/poll');
    expect(request!.kind).toBe(SpanKind.SERVER);
    expect(request!.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/v1/jobs/:name/trigger',
      'http.response.status_code': 201,
    });
    expect(client!.kind).toBe(SpanKind.CLIENT);
  });

  it('a backfill: each run it creates continues the request → client span → producer, one trace', async () => {
    await admin.createJob({ name: 'backfilled', handler: 'traced', trigger: { kind: 'every', every: '1h' } });
    const result = await app.startActiveSpan('backfill-producer', async (span) => {
      try {
        return await admin.backfill('backfilled', {
          from: '2026-03-28T00:00:00Z',
          to: '2026-03-28T02:00:00Z',
          overlap: 'allow',
        });
      } finally {
        span.end();
      }
    });
    expect(result.runs).toHaveLength(3);
    for (const { runId } of result.runs) expect((await finished(admin, runId)).status).toBe('succeeded');
    const spans = await spansWhen((all) =>
      result.runs.every(({ runId }) =>
        all.some((s) => s.name === 'handler-step' && s.attributes.run === runId),
      ),
    );
    for (const { runId } of result.runs) {
      const handler = spans.find((s) => s.name === 'handler-step' && s.attributes.run === runId)!;
      const chain = [handler];
      for (let span = parentOf(handler, spans); span; span = parentOf(span, spans)) chain.push(span);
      expect(chain.map((s) => s.name)).toEqual([
        'handler-step',
        'kairos.attempt',
        'kairos.dispatch',
        'POST /v1/jobs/:name/backfill',
        'kairos.backfill',
        'backfill-producer',
      ]);
      expect(new Set(chain.map((s) => s.spanContext().traceId)).size).toBe(1);
      expect(chain[4]!.kind).toBe(SpanKind.CLIENT);
      expect(chain[4]!.attributes).toMatchObject({ 'kairos.job': 'backfilled' });
    }
  });

  it('a failed attempt records the exception and an error status', async () => {
    const queued = await admin.triggerJob('failing');
    expect((await finished(admin, queued.id)).status).toBe('failed');
    const spans = await spansWhen((all) => all.some(attemptOf(queued.id)));
    const attempt = spans.find(attemptOf(queued.id))!;
    expect(attempt.status.code).toBe(SpanStatusCode.ERROR);
    expect(attempt.events.map((e) => e.name)).toContain('exception');
    expect(attempt.attributes['kairos.attempt.outcome']).toBe('failed');
  });

  it('a scheduled job: each fire is the root of its trace → dispatch → attempt → handler span', async () => {
    await admin.createJob({ name: 'ticking', handler: 'ticking', trigger: { kind: 'every', every: '1s' } });
    const spans = await spansWhen((all) =>
      all.some((s) => s.name === 'tick-step' && parentOf(s, all) !== undefined),
    );
    const step = spans.find((s) => s.name === 'tick-step' && parentOf(s, spans) !== undefined)!;
    const chain = [step];
    for (let span = parentOf(step, spans); span; span = parentOf(span, spans)) chain.push(span);
    expect(chain.map((s) => s.name)).toEqual([
      'tick-step',
      'kairos.attempt',
      'kairos.dispatch',
      'kairos.fire',
    ]);
    expect(new Set(chain.map((s) => s.spanContext().traceId)).size).toBe(1);
    const fire = chain[3]!;
    expect(fire.parentSpanContext).toBeUndefined();
    expect(fire.attributes).toMatchObject({ 'kairos.job': 'ticking' });
    expect(fire.attributes['kairos.fire.time']).toEqual(expect.any(String));
    expect(fire.attributes['kairos.fire.lateness_ms']).toEqual(expect.any(Number));
    await admin.pauseJob('ticking');
  });
});
