export type { Json, JsonObject } from '@kairos/client';
export type { Handler, RunContext, RunLogger } from './context.ts';
export { CancelledError, NonRetryableError, RetryAfterError, TimeoutError } from './errors.ts';
export type { IsolatedHandler } from './isolated.ts';
export type { LogFields, WorkerLogger } from './logger.ts';
export { createKairosLogger, fromPino, type KairosLoggerOptions } from './logger.ts';
export type { WorkerOptions } from './options.ts';
export { Worker } from './worker.ts';
export { type WorkflowStepParams, withContext, workflowOf } from './workflow.ts';
