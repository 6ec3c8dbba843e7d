import type { Me, Workflow, WorkflowInstance } from '@kairos/client';
import { lazy, Suspense, useState } from 'react';
import { can } from '../api.ts';
import { Confirm, ErrorBox, JsonView, Section, StatusBadge } from '../components.tsx';
import { duration, time } from '../format.ts';
import { usePoll } from '../hooks.ts';
import {
  type InstanceAction,
  type InstanceStep,
  type StepAction,
  type WorkflowStep,
  workflowApi,
} from '../workflow-api.ts';
import { stepLook, stepRuns } from '../workflow-states.ts';
import { StepTimeline } from './workflow-timeline.tsx';

/** ELK and React Flow come with the graph, on the first workflow page opened. */
export const WorkflowGraph = lazy(() => import('./workflow-graph.tsx'));

const ENDED_STEP = ['succeeded', 'failed', 'skipped', 'cancelled'];
const SKIPPABLE_STEP = ['waiting', 'ready', 'failed'];

/** What each action asks before it acts, and when it applies. */
const INSTANCE_ACTIONS: Record<
  InstanceAction,
  { label: string; when: string[]; confirm?: string; danger?: boolean }
> = {
  pause: { label: 'Pause', when: ['running'] },
  resume: { label: 'Resume', when: ['paused'] },
  retry: {
    label: 'Retry',
    when: ['failed', 'cancelled'],
    confirm: 'Its failed and cancelled steps run again, and the instance goes on from there.',
  },
  cancel: {
    label: 'Cancel',
    when: ['running', 'paused'],
    danger: true,
    confirm:
      'Its queued and running step runs are cancelled (their workers are told at the next heartbeat), its waiting steps never run.',
  },
};

const STEP_ACTIONS: Record<StepAction, { label: string; confirm: string }> = {
  rerun: {
    label: 'Re-run',
    confirm: 'The step runs again with a new run; the steps after it follow its new end.',
  },
  skip: {
    label: 'Skip',
    confirm:
      'The step is marked succeeded without running (its run, if any, is cancelled); its children go on.',
  },
};

type Pending =
  | { kind: 'instance'; action: InstanceAction }
  | { kind: 'step'; action: StepAction; step: string }
  | undefined;

/** The steps to draw: the definition's, or (the workflow was replaced since) the instance's. */
function drawnSteps(workflow: Workflow | undefined, instance: WorkflowInstance): WorkflowStep[] {
  const defined = new Map((workflow?.steps ?? []).map((s) => [s.id, s]));
  const ids = new Set(instance.steps.map((s) => s.id));
  return instance.steps.map((s): WorkflowStep => {
    const step = defined.get(s.id);
    if (!step) return { id: s.id, params: {}, after: [], join: 'all' };
    return { ...step, after: step.after.filter((e) => ids.has(e.step)) };
  });
}

export function WorkflowInstancePage({ me, name, id }: { me: Me; name: string; id: number }) {
  const [pending, setPending] = useState<Pending>();
  const [error, setError] = useState<unknown>();
  const workflow = usePoll(() => workflowApi.get(name), [name], 0);
  // Polled while it may still change (once more when it ended); an action reloads it.
  const [live, setLive] = useState(true);
  const instance = usePoll(
    async () => {
      const answer = await workflowApi.instance(id);
      const state: string = answer.state;
      setLive(state === 'running' || state === 'paused');
      return answer;
    },
    [id],
    live ? 1000 : 0,
  );
  const i = instance.data;
  const operator = can(me, 'operator');

  const act = async (action: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await action();
    } catch (e) {
      setError(e);
    }
    instance.reload();
  };
  const run = (p: NonNullable<Pending>) =>
    act(() =>
      p.kind === 'instance' ? workflowApi.act(id, p.action) : workflowApi.actOnStep(id, p.step, p.action),
    );
  const ask = (p: NonNullable<Pending>) => {
    const confirm = p.kind === 'step' ? STEP_ACTIONS[p.action].confirm : INSTANCE_ACTIONS[p.action].confirm;
    if (confirm) setPending(p);
    else void run(p);
  };

  const steps = i?.steps as InstanceStep[] | undefined;
  const current: string = i?.state ?? '';
  return (
    <>
      <div className="page-head">
        <h1>
          Instance #{id} {i && <StatusBadge status={i.state} />}
        </h1>
        {i && operator && (
          <div className="actions">
            {(Object.keys(INSTANCE_ACTIONS) as InstanceAction[])
              .filter((action) => INSTANCE_ACTIONS[action].when.includes(current))
              .map((action) => (
                <button
                  key={action}
                  type="button"
                  className={INSTANCE_ACTIONS[action].danger ? 'danger' : ''}
                  onClick={() => ask({ kind: 'instance', action })}
                >
                  {INSTANCE_ACTIONS[action].label}
                </button>
              ))}
          </div>
        )}
      </div>
      <p className="muted">
        Workflow <a href={`#/workflows/${encodeURIComponent(name)}`}>{name}</a>
        {i && ` · version ${i.version}`}
      </p>
      <ErrorBox error={instance.error ?? error} />
      <PendingConfirm
        pending={pending}
        id={id}
        onConfirm={(p) => void run(p)}
        onClose={() => setPending(undefined)}
      />
      {i && steps && (
        <>
          <Section title="Graph">
            {workflow.data && workflow.data.version !== i.version && (
              <p className="muted">
                The workflow was replaced since (version {workflow.data.version}): the edges drawn are its
                current ones.
              </p>
            )}
            {workflow.data || workflow.error ? (
              <Suspense fallback={<div className="wf-graph wf-graph-loading">Loading the graph…</div>}>
                <WorkflowGraph
                  steps={drawnSteps(workflow.data, i)}
                  live={new Map(steps.map((s) => [s.id, s]))}
                />
              </Suspense>
            ) : null}
          </Section>
          <Section title="Timeline">
            <StepTimeline steps={steps} now={Date.now()} />
          </Section>
          <Section title="Steps">
            <table aria-label="Steps">
              <thead>
                <tr>
                  <th>Step</th>
                  <th>Runs</th>
                  <th>State</th>
                  <th>Run</th>
                  <th>Attempts</th>
                  <th>Started</th>
                  <th>Finished</th>
                  {operator && <th />}
                </tr>
              </thead>
              <tbody>
                {steps.map((step) => {
                  const def = workflow.data?.steps.find((s) => s.id === step.id);
                  const look = stepLook(step);
                  return (
                    <tr key={step.id} data-step={step.id} data-state={look.key}>
                      <td>{step.id}</td>
                      <td>{def && <code>{stepRuns(def)}</code>}</td>
                      <td>
                        <span className={`badge wf-badge-${look.key}`}>{look.label}</span>
                      </td>
                      <td>{step.runId ? <a href={`#/runs/${step.runId}`}>#{step.runId}</a> : ''}</td>
                      <td>{step.attempts || ''}</td>
                      <td>{time(step.startedAt)}</td>
                      <td>
                        {time(step.finishedAt)}
                        {step.startedAt && step.finishedAt && (
                          <span className="muted">
                            {' '}
                            ({duration(Date.parse(step.finishedAt) - Date.parse(step.startedAt))})
                          </span>
                        )}
                      </td>
                      {operator && (
                        <td>
                          <div className="actions">
                            {ENDED_STEP.includes(step.state) && (
                              <button
                                type="button"
                                onClick={() => ask({ kind: 'step', action: 'rerun', step: step.id })}
                              >
                                Re-run
                              </button>
                            )}
                            {SKIPPABLE_STEP.includes(step.state) && !step.skipped && (
                              <button
                                type="button"
                                onClick={() => ask({ kind: 'step', action: 'skip', step: step.id })}
                              >
                                Skip
                              </button>
                            )}
                          </div>
                        </td>
                      )}
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </Section>
          <div className="two-columns">
            <Section title="Instance">
              <dl className="facts">
                <dt>State</dt>
                <dd data-testid="instance-state">{i.state}</dd>
                <dt>Started</dt>
                <dd>{time(i.startedAt)}</dd>
                <dt>Finished</dt>
                <dd>{time(i.finishedAt)}</dd>
                <dt>Duration</dt>
                <dd>
                  {duration((i.finishedAt ? Date.parse(i.finishedAt) : Date.now()) - Date.parse(i.startedAt))}
                </dd>
              </dl>
            </Section>
            <Section title="Context">
              <JsonView value={i.context} />
            </Section>
          </div>
        </>
      )}
    </>
  );
}

function PendingConfirm({
  pending,
  id,
  onConfirm,
  onClose,
}: {
  pending: Pending;
  id: number;
  onConfirm: (p: NonNullable<Pending>) => void;
  onClose: () => void;
}) {
  const what =
    pending?.kind === 'step' ? STEP_ACTIONS[pending.action] : pending && INSTANCE_ACTIONS[pending.action];
  const label = what?.label ?? '';
  return (
    <Confirm
      open={!!pending}
      title={pending?.kind === 'step' ? `${label} step ${pending.step}?` : `${label} instance #${id}?`}
      message={what?.confirm ?? ''}
      confirmLabel={pending?.kind === 'step' ? `${label} step` : `${label} instance`}
      onConfirm={() => pending && onConfirm(pending)}
      onClose={onClose}
    />
  );
}
