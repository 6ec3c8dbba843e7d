import { contextOfTrace, type TraceContext, traceContextOf } from '@kairos/client';
import {
  type Attributes,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ClaimedRun } from '../store/store.ts';
import { nodeTracer } from '../tracer.ts';

// Tracing of the node with the OpenTelemetry API only (docs/tracing.md): the SDK and exporter are
// the operator's. With none registered every span is the API's non-recording one, and nothing
// below builds attributes, names or contexts for it (`isRecording()` is checked first).

declare module 'fastify' {
  interface FastifyRequest {
    /** The server span of this request (tracing); null for the probes. */
    traceSpan: Span | null;
  }
}

/** Paths with no span: probes, metrics and the worker heartbeat (once a second per worker). */
const UNTRACED = /^\/(livez|readyz|metrics|v1\/health)(\?|$)|^\/v1\/worker\/[^/]+\/heartbeat/;

/**
 * A server span per API request, the child of the W3C context its headers carry (the registered
 * propagator), named after the route template (`POST /v1/jobs/:name/trigger`), ended when the
 * answer is sent with its status code; 5xx answers are errors.
 */
export function installTracing(app: FastifyInstance): void {
  app.decorateRequest('traceSpan', null);
  app.addHook('onRequest', (request, _reply, done) => {
    if (UNTRACED.test(request.url)) return done();
    const parent = propagation.extract(ROOT_CONTEXT, request.headers);
    const span = nodeTracer().startSpan('HTTP', { kind: SpanKind.SERVER }, parent);
    if (span.isRecording()) {
      const route = request.routeOptions.url;
      span.updateName(route ? `${request.method} ${route}` : request.method);
      span.setAttributes({
        'http.request.method': request.method,
        'url.path': request.url.split('?', 1)[0]!,
        ...(route ? { 'http.route': route } : {}),
      });
    }
    request.traceSpan = span;
    done();
  });
  // A client that hangs up (a worker stopping mid-poll) gets no answer: the span ends here.
  app.addHook('onRequestAbort', (request, done) => {
    const span = request.traceSpan;
    request.traceSpan = null;
    if (span) {
      if (span.isRecording()) span.setAttribute('kairos.request.aborted', true);
      span.end();
    }
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const span = request.traceSpan;
    if (span) {
      if (span.isRecording()) {
        span.setAttribute('http.response.status_code', reply.statusCode);
        if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    }
    done();
  });
}

/** The trace context of a request's span, for the runs it creates; null when it is not traced. */
export function requestTraceContext(request: FastifyRequest): TraceContext | null {
  const span = request.traceSpan;
  return span ? traceContextOf(trace.setSpan(ROOT_CONTEXT, span)) : null;
}

/**
 * A `kairos.dispatch` span for each claimed run that is traced: the child of the run's trace
 * context, linked to the poll request that claimed it; the assignment carries the dispatch span's
 * context, so the worker's attempt span is its child. Runs with no trace context cost nothing.
 */
export function traceDispatch(runs: ClaimedRun[], workerId: string, request: FastifyRequest): ClaimedRun[] {
  if (request.traceSpan?.isRecording()) {
    request.traceSpan.setAttributes({ 'kairos.worker.id': workerId, 'kairos.runs.claimed': runs.length });
  }
  if (!runs.some((run) => run.traceContext)) return runs;
  const poll = request.traceSpan?.spanContext();
  return runs.map((run) => {
    if (!run.traceContext) return run;
    const span = nodeTracer().startSpan(
      'kairos.dispatch',
      { kind: SpanKind.PRODUCER, ...(poll ? { links: [{ context: poll }] } : {}) },
      contextOfTrace(run.traceContext),
    );
    if (span.isRecording()) span.setAttributes(dispatchAttributes(run, workerId));
    const traceContext = traceContextOf(trace.setSpan(ROOT_CONTEXT, span)) ?? run.traceContext;
    span.end();
    return { ...run, traceContext };
  });
}

function dispatchAttributes(run: ClaimedRun, workerId: string): Attributes {
  return {
    'kairos.job': run.jobName,
    'kairos.run.id': run.runId,
    'kairos.attempt': run.attempt,
    'kairos.worker.id': workerId,
    ...(run.startAt !== undefined ? { 'kairos.attempt.start_at': new Date(run.startAt).toISOString() } : {}),
  };
}
