export {
  type ClientOptions,
  fetchTransport,
  type JobEditOptions,
  KairosClient,
  type PageFilter,
  type Transport,
  type TransportRequest,
  type TransportResponse,
} from './client.ts';
export { ERROR_CODES, type ErrorCode, KairosApiError } from './errors.ts';
export { jobToSpec } from './job-spec.ts';
export * from './schemas/index.ts';
export { type RunLogEvent, readRunLogEvents } from './sse.ts';
export {
  checkTaskParams,
  defineTask,
  type StandardSchemaV1,
  type Task,
  type TaskOptions,
  type TaskParams,
  TaskParamsError,
  type TaskResult,
  type TaskReturn,
  type TaskRun,
} from './tasks.ts';
export { contextOfTrace, type TraceContext, traceContextOf, tracerFor } from './tracing.ts';
export type * from './wire.ts';
export {
  WORKFLOW_CONTEXT_SOURCE,
  type WorkflowBuilder,
  type WorkflowBuilderOptions,
  type WorkflowEdge,
  type WorkflowMapOptions,
  type WorkflowStepOptions,
  workflow,
} from './workflow-builder.ts';
