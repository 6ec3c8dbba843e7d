import {
  type Context,
  context,
  createTraceState,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';

// Tracing with the OpenTelemetry API only: users register the SDK and exporter they want. With none
// registered, the API's tracer makes non-recording spans and every function here costs a few calls.

/** The W3C trace context of a run: where its trace continues (see docs/tracing.md). */
export interface TraceContext {
  /** `00-<trace id>-<parent span id>-<flags>`, as the W3C `traceparent` header. */
  traceparent: string;
  /** Vendor entries, as the W3C `tracestate` header. */
  tracestate?: string;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The trace context of the span active in `ctx`, or null when it has none (no SDK, or not traced). */
export function traceContextOf(ctx: Context): TraceContext | null {
  const span = trace.getSpanContext(ctx);
  if (!span || !isSpanContextValid(span)) return null;
  const flags = (span.traceFlags & 0xff).toString(16).padStart(2, '0');
  const out: TraceContext = { traceparent: `00-${span.traceId}-${span.spanId}-${flags}` };
  const state = span.traceState?.serialize();
  if (state) out.tracestate = state;
  return out;
}

/** A context whose parent is the (remote) span of `traceContext`; the root context when it does not parse. */
export function contextOfTrace(traceContext: TraceContext | null | undefined): Context {
  const match = traceContext ? TRACEPARENT.exec(traceContext.traceparent) : null;
  if (!match) return ROOT_CONTEXT;
  const span: SpanContext = {
    traceId: match[1]!,
    spanId: match[2]!,
    traceFlags: Number.parseInt(match[3]!, 16),
    isRemote: true,
  };
  if (traceContext?.tracestate) span.traceState = createTraceState(traceContext.tracestate);
  return isSpanContextValid(span) ? trace.setSpanContext(ROOT_CONTEXT, span) : ROOT_CONTEXT;
}

/**
 * The tracer `name` of the tracer provider registered now. Looked up at each use, not kept from
 * import time: an application whose `@opentelemetry/api` is another copy than Kairos's registers its
 * SDK in the API's global slot, which each use reads; the tracer is made again only when the
 * provider changed (`getTracer` makes a new object at each call).
 */
export function tracerFor(name: string, version?: string): () => Tracer {
  let provider: TracerProvider | undefined;
  let tracer: Tracer | undefined;
  return () => {
    const current = trace.getTracerProvider();
    if (current !== provider || !tracer) {
      provider = current;
      tracer = current.getTracer(name, version);
    }
    return tracer;
  };
}

const tracer = tracerFor('@kairos/client');

/**
 * Runs one API call in a client span named `name`, with the active context injected into its
 * request headers (the registered propagator, W3C `traceparent`/`tracestate` by default).
 */
export async function inClientSpan<T>(
  name: string,
  jobName: string,
  call: (headers: Record<string, string>) => Promise<T>,
): Promise<T> {
  const span = tracer().startSpan(name, { kind: SpanKind.CLIENT });
  if (span.isRecording()) span.setAttribute('kairos.job', jobName);
  const ctx = trace.setSpan(context.active(), span);
  const headers: Record<string, string> = {};
  propagation.inject(ctx, headers);
  try {
    return await context.with(ctx, () => call(headers));
  } catch (error) {
    if (span.isRecording()) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
    }
    throw error;
  } finally {
    span.end();
  }
}
