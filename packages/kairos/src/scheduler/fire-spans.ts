import { type TraceContext, traceContextOf } from '@kairos/client';
import { ROOT_CONTEXT, type Span, SpanKind, trace } from '@opentelemetry/api';
import type { DueJob, FireEntry } from '../store/store.ts';
import { nodeTracer } from '../tracer.ts';

/**
 * The `kairos.fire` spans of one fire batch: one root span per fire time, started when the batch is
 * planned and ended when its transaction is over, whose trace context the fire's run keeps (its
 * dispatch and attempts continue that trace). With no tracing SDK registered, the first span tells
 * (not recording, no valid context) and the rest of the batch makes none.
 */
export class FireSpans {
  private readonly spans: Span[] = [];
  private enabled = true;

  /** Starts the spans of `entry`'s fires and sets its `traceContexts`; `now` gives each its lateness. */
  add(job: DueJob, entry: FireEntry, now: number): void {
    if (!this.enabled || entry.fires.length === 0) return;
    const contexts: Array<TraceContext | null> = [];
    for (const fireTime of entry.fires) {
      const span = nodeTracer().startSpan(
        'kairos.fire',
        { kind: SpanKind.INTERNAL, root: true },
        ROOT_CONTEXT,
      );
      const traceContext = traceContextOf(trace.setSpan(ROOT_CONTEXT, span));
      if (!traceContext && !span.isRecording()) {
        this.enabled = false;
        return;
      }
      if (span.isRecording()) {
        span.setAttributes({
          'kairos.job': job.name,
          'kairos.job.id': job.id,
          'kairos.fire.time': new Date(fireTime).toISOString(),
          'kairos.fire.lateness_ms': Math.max(0, now - fireTime),
        });
      }
      this.spans.push(span);
      contexts.push(traceContext);
    }
    entry.traceContexts = contexts;
  }

  /** Ends every span of the batch; `error` when its transaction failed (fenced out, store error). */
  end(error?: unknown): void {
    for (const span of this.spans) {
      if (error !== undefined && span.isRecording()) span.recordException(error as Error);
      span.end();
    }
    this.spans.length = 0;
  }
}
