/**
 * Why a workflow step failed without a failed run of its own (docs/errors.md#workflow-step-failures):
 * kept on the step's row and shown with the instance. Stable codes, as API errors have.
 */
export const STEP_FAILURE_CODES = [
  'STEP_JOB_MISSING',
  'MAP_NOT_A_LIST',
  'MAP_TOO_WIDE',
  'MAP_ITEMS_FAILED',
  'CONTEXT_INVALID',
  'CONTEXT_TOO_LARGE',
  'PARENTS_TOO_LARGE',
  'STEP_RUN_CONFLICT',
] as const;

export type StepFailureCode = (typeof STEP_FAILURE_CODES)[number];

export interface StepFailure {
  code: StepFailureCode;
  message: string;
}

export function stepFailure(code: StepFailureCode, message: string): StepFailure {
  return { code, message };
}
