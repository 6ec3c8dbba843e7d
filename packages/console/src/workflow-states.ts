import type { InstanceStep, WorkflowStep } from './workflow-api.ts';

/**
 * How a step's state shows (docs/workflows.md#states): a class for its colour and a label. A step
 * an operator skipped by hand reads `succeeded` with `skipped: true`: it shows as skipped by hand.
 */
export function stepLook(step: InstanceStep | undefined): { key: string; label: string } {
  if (!step) return { key: 'plain', label: '' };
  if (step.skipped) return { key: 'hand-skipped', label: 'skipped by hand' };
  return { key: step.state, label: step.state };
}

/** What an edge waits for, in words; empty for the default (the parent's success). */
export function edgeText(on: WorkflowStep['after'][number]['on']): string {
  if (on === 'success') return '';
  if (typeof on === 'string') return `on ${on}`;
  return `${on.path} = ${JSON.stringify(on.equals)}`;
}

/** What a step runs: its handler, its task by kind (`shell backup.sh`, `http POST https://…`), or the job it names. */
export function stepRuns(step: WorkflowStep): string {
  if (step.job) return `job ${step.job}`;
  if (step.task?.kind === 'shell') return `shell ${step.task.command}`;
  if (step.task?.kind === 'http') return `http ${step.task.method ?? 'GET'} ${step.task.url}`;
  return step.handler ?? '';
}
