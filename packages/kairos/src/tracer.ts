import { trace } from '@opentelemetry/api';
import { VERSION } from './version.ts';

/**
 * The node's OpenTelemetry tracer (docs/tracing.md), read at each use so that an SDK registered
 * after the node started is used. With no SDK registered it is the API's no-op tracer.
 */
export const nodeTracer = () => trace.getTracer('@kairos/server', VERSION);
