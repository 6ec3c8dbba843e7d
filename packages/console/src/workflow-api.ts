import type { JsonObject, Page, Workflow, WorkflowInstance } from '@kairos/client';
import { api } from './api.ts';

/**
 * The workflow routes (docs/workflows.md) as the console calls them: `@kairos/client` has no typed
 * methods for workflows yet, so these go through its `request`, with the same session and errors.
 */
const enc = encodeURIComponent;

export type WorkflowStep = Workflow['steps'][number];
/** An instance's step as answered; `skipped` marks a step an operator skipped by hand. */
export type InstanceStep = WorkflowInstance['steps'][number] & { skipped?: boolean };

/** Instance actions: `cancel` always; pause, resume and retry with the repair routes. */
export type InstanceAction = 'cancel' | 'pause' | 'resume' | 'retry';
export type StepAction = 'rerun' | 'skip';

export const workflowApi = {
  list: (cursor?: string) =>
    api.request<Page<Workflow>>('GET', '/v1/workflows', undefined, { limit: 200, cursor }),
  get: (name: string) => api.request<Workflow>('GET', `/v1/workflows/${enc(name)}`),
  instances: (name: string, cursor?: string) =>
    api.request<Page<WorkflowInstance>>('GET', `/v1/workflows/${enc(name)}/instances`, undefined, {
      limit: 50,
      cursor,
    }),
  start: (name: string, context: JsonObject) =>
    api.request<WorkflowInstance>('POST', `/v1/workflows/${enc(name)}/instances`, { context }),
  instance: (id: number) => api.request<WorkflowInstance>('GET', `/v1/workflow-instances/${id}`),
  act: (id: number, action: InstanceAction) =>
    api.request<WorkflowInstance>('POST', `/v1/workflow-instances/${id}/${action}`, {}),
  actOnStep: (id: number, step: string, action: StepAction) =>
    api.request<WorkflowInstance>('POST', `/v1/workflow-instances/${id}/steps/${enc(step)}/${action}`, {}),
};
