import { tracerFor } from '@kairos/client';
import { VERSION } from './version.ts';

/**
 * The node's OpenTelemetry tracer (docs/tracing.md), from the tracer provider registered when a
 * span starts: an SDK registered after the node started is used too; with none, the API's no-op.
 */
export const nodeTracer = tracerFor('@kairos/server', VERSION);
