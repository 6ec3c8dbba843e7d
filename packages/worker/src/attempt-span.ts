import {
  type Assignment,
  contextOfTrace,
  type Report,
  type TraceContext,
  traceContextOf,
  tracerFor,
} from '@kairos/client';
import {
  type Context,
  isSpanContextValid,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';

// The attempt's span (docs/tracing.md), with the OpenTelemetry API only: the application registers
// the SDK and exporter. With none registered the span is the API's non-recording one and no
// attributes are built.

/** The tracer of the worker SDK, from the provider registered when a span starts. */
const tracer = tracerFor('@kairos/worker');

/** One attempt's span and the context its handler runs in. */
export interface AttemptSpan {
  span: Span;
  /** The assignment's context with the attempt span active: the handler runs in it. */
  context: Context;
  /** The attempt span's W3C context (null when not traced), for `RunContext.trace`, HTTP and shell tasks. */
  trace: TraceContext | null;
}

/**
 * Starts the `kairos.attempt` span (consumer) of an assignment, the child of the dispatch span whose
 * context the assignment carries; a root span when the run is not traced by the node.
 */
export function startAttemptSpan(assignment: Assignment, workerName: string): AttemptSpan {
  const { traceparent, tracestate } = assignment;
  const parent = contextOfTrace(traceparent ? { traceparent, ...(tracestate ? { tracestate } : {}) } : null);
  const span = tracer().startSpan('kairos.attempt', { kind: SpanKind.CONSUMER }, parent);
  // No SDK and no trace from the node: nothing to make active or to pass on.
  if (!span.isRecording() && !isSpanContextValid(span.spanContext()))
    return { span, context: parent, trace: null };
  if (span.isRecording()) {
    span.setAttributes({
      'kairos.job': assignment.jobName,
      'kairos.handler': assignment.handler,
      'kairos.run.id': assignment.runId,
      'kairos.attempt': assignment.attempt,
      'kairos.worker.name': workerName,
      ...(assignment.fireTime !== null ? { 'kairos.fire.time': assignment.fireTime } : {}),
    });
  }
  const context = trace.setSpan(parent, span);
  return { span, context, trace: traceContextOf(context) };
}

/**
 * Ends an attempt's span with how it ended: the report's outcome (an error status and the exception
 * for a failure), or `abandoned` when the node took the attempt back or the worker shut down.
 */
export function endAttemptSpan(span: Span, report: Report | 'abandoned', thrown?: unknown): void {
  if (span.isRecording()) {
    if (report === 'abandoned') {
      span.setAttribute('kairos.attempt.outcome', 'abandoned');
    } else {
      span.setAttribute('kairos.attempt.outcome', report.outcome);
      if (report.outcome !== 'succeeded') {
        if (thrown instanceof Error) span.recordException(thrown);
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: `${report.error.name}: ${report.error.message}`,
        });
      }
    }
  }
  span.end();
}
