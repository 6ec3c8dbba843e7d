import {
  type KairosClient,
  type Workflow,
  type WorkflowSpec,
  WorkflowSpecSchema,
  type WorkflowStepSpec,
  WorkflowStepSpecSchema,
} from '@kairos/client';
import { compileWorkflow, workflowSpecOf } from '../core/workflow.ts';
import { KairosError } from '../errors.ts';
import { type Change, diff } from './change.ts';
import { UsageError } from './options.ts';

/**
 * Workflows in definition files (`workflows:` of `kairos apply`, `kairos workflows apply`): checked
 * before anything is sent, diffed step by step with what the node holds, put, and exported with
 * their defaults left out.
 */

/** Compiles every workflow of a file; the first that does not compile, or a name listed twice, is a usage error. */
export function checkWorkflows(list: readonly unknown[], file: string): WorkflowSpec[] {
  const specs = list as WorkflowSpec[];
  for (const spec of specs) {
    if (typeof spec !== 'object' || spec === null || !Array.isArray(spec.steps))
      throw new UsageError(`-f: ${file}: a workflow is an object with a name and steps`);
    // The node refuses an unknown key: a file that one put would refuse sends nothing.
    const unknown = [
      ...unknownKeys(spec, WORKFLOW_KEYS),
      ...spec.steps.flatMap((step, i) => unknownKeys(step, STEP_KEYS).map((key) => `steps[${i}].${key}`)),
    ];
    if (unknown.length > 0)
      throw new UsageError(`-f: ${file}: workflow ${String(spec.name)}: unknown key ${unknown[0]}`);
    try {
      compileWorkflow(spec);
    } catch (error) {
      if (!(error instanceof KairosError)) throw error;
      throw new UsageError(`-f: ${file}: workflow ${String(spec.name)}: ${error.code}: ${error.message}`);
    }
  }
  const names = specs.map((spec) => spec.name);
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice !== undefined) throw new UsageError(`-f: ${file}: workflow ${twice} is listed twice`);
  return specs;
}

/**
 * What putting each workflow would change: `description`, `trigger`, `schedule`,
 * `steps.<id>: added | removed`, and
 * `steps.<id>.<field>: before → after`, both sides read the same way (`30s` equals `30000`).
 */
export async function planWorkflows(client: KairosClient, specs: readonly WorkflowSpec[]): Promise<Change[]> {
  const changes: Change[] = [];
  for (const spec of specs) {
    const current = await client.getWorkflow(spec.name).catch((error: { code?: string }) => {
      if (error.code === 'WORKFLOW_NOT_FOUND') return undefined;
      throw error;
    });
    if (!current) {
      changes.push(diff('workflow', spec.name, undefined, spec));
      continue;
    }
    const before = workflowSpecOf(compileWorkflow(specOfWorkflow(current)));
    const after = workflowSpecOf(compileWorkflow(spec));
    const fields = diff(
      'workflow',
      spec.name,
      { description: before.description, trigger: before.trigger, schedule: before.schedule },
      { description: after.description, trigger: after.trigger, schedule: after.schedule },
    ).fields;
    const steps = (s: WorkflowSpec) => new Map(s.steps.map(({ id, ...step }) => [id, step]));
    const was = steps(before);
    const will = steps(after);
    for (const [id, step] of will) {
      const old = was.get(id);
      if (!old) fields.push(`steps.${id}: added`);
      else fields.push(...diff('workflow', id, old, step).fields.map((field) => `steps.${id}.${field}`));
    }
    for (const id of was.keys()) if (!will.has(id)) fields.push(`steps.${id}: removed`);
    changes.push({
      kind: 'workflow',
      name: spec.name,
      action: fields.length ? 'update' : 'unchanged',
      fields,
    });
  }
  return changes;
}

/** Puts the workflows the plan creates or updates (a replace bumps `version`; unchanged ones keep theirs). */
export async function putWorkflows(
  client: KairosClient,
  specs: readonly WorkflowSpec[],
  plan: readonly Change[],
): Promise<void> {
  for (const spec of specs)
    if (plan.some((c) => c.kind === 'workflow' && c.name === spec.name && c.action !== 'unchanged'))
      await client.putWorkflow(spec);
}

/** A stored workflow as a file holds it: every field at its default left out. */
export function exportWorkflow(workflow: Workflow): WorkflowSpec {
  const canonical = workflowSpecOf(compileWorkflow(specOfWorkflow(workflow)));
  const steps = canonical.steps.map((step) => {
    const bare = workflowSpecOf(
      compileWorkflow({
        name: workflow.name,
        steps: [
          step.job !== undefined
            ? { id: step.id, job: step.job }
            : step.task !== undefined
              ? { id: step.id, task: step.task }
              : { id: step.id, handler: step.handler },
        ],
      }),
    ).steps[0] as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(step)) {
      if (key === 'after') continue;
      if (
        key === 'id' ||
        key === 'handler' ||
        key === 'job' ||
        key === 'task' ||
        JSON.stringify(value) !== JSON.stringify(bare[key])
      )
        out[key] = value;
    }
    // An edge on success is its parent's id alone.
    const after = (step.after ?? []).map((edge) =>
      typeof edge !== 'string' && edge.on === 'success' ? edge.step : edge,
    );
    if (after.length > 0) out.after = after;
    return out as WorkflowStepSpec;
  });
  const defaults = workflowSpecOf(compileWorkflow({ name: workflow.name, steps: canonical.steps }));
  const schedule: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(canonical.schedule ?? {}))
    if (JSON.stringify(value) !== JSON.stringify((defaults.schedule as Record<string, unknown>)[key]))
      schedule[key] = value;
  return {
    name: workflow.name,
    ...(workflow.description ? { description: workflow.description } : {}),
    ...(canonical.trigger && canonical.trigger.kind !== 'manual' ? { trigger: canonical.trigger } : {}),
    ...(Object.keys(schedule).length > 0 ? { schedule: schedule as WorkflowSpec['schedule'] } : {}),
    steps,
  };
}

const WORKFLOW_KEYS = new Set(Object.keys(WorkflowSpecSchema.properties));
const STEP_KEYS = new Set(Object.keys(WorkflowStepSpecSchema.properties));

function unknownKeys(value: unknown, known: ReadonlySet<string>): string[] {
  return typeof value === 'object' && value !== null
    ? Object.keys(value).filter((key) => !known.has(key))
    : [];
}

/** The spec of a workflow as the node answers it: its trigger and its schedule policy included. */
function specOfWorkflow(workflow: Workflow): WorkflowSpec {
  const { schedule } = workflow;
  return {
    name: workflow.name,
    description: workflow.description,
    trigger: workflow.trigger as WorkflowSpec['trigger'],
    schedule: {
      misfire:
        schedule.misfire.policy === 'catch-up'
          ? { ...schedule.misfire }
          : { policy: schedule.misfire.policy },
      overlap: schedule.overlap,
      jitter: schedule.jitter,
      ...(schedule.startAt === null ? {} : { startAt: schedule.startAt }),
      ...(schedule.endAt === null ? {} : { endAt: schedule.endAt }),
      ...(schedule.maxRuns === null ? {} : { maxRuns: schedule.maxRuns }),
      ...(schedule.calendars.length === 0 ? {} : { calendars: schedule.calendars }),
    } as WorkflowSpec['schedule'],
    steps: workflow.steps as WorkflowStepSpec[],
  };
}
