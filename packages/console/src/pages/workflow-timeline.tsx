import { duration, time } from '../format.ts';
import type { InstanceStep } from '../workflow-api.ts';
import { stepLook } from '../workflow-states.ts';

/**
 * The instance's step runs on one time axis: a bar per step from its run's first start to its end
 * (now, while it runs), coloured by the step's state. Steps without a run (waiting, skipped, or
 * whose run retention deleted) are listed without a bar.
 */
export function StepTimeline({ steps, now }: { steps: readonly InstanceStep[]; now: number }) {
  const started = steps.filter((s) => s.startedAt !== null);
  if (started.length === 0) return <p className="muted">No step has started yet.</p>;
  const from = (s: InstanceStep) => Date.parse(s.startedAt!);
  const to = (s: InstanceStep) => (s.finishedAt ? Date.parse(s.finishedAt) : now);
  const start = Math.min(...started.map(from));
  const span = Math.max(1, Math.max(...started.map(to)) - start);
  return (
    <ol className="timeline" aria-label="Step timeline">
      {steps.map((step) => {
        const look = stepLook(step);
        return (
          <li key={step.id} data-step={step.id}>
            <div className="timeline-label">
              <strong>{step.id}</strong> <span className={`badge wf-badge-${look.key}`}>{look.label}</span>
              {step.runId && (
                <>
                  {' '}
                  · <a href={`#/runs/${step.runId}`}>run #{step.runId}</a>
                </>
              )}
              {step.startedAt && (
                <span className="muted">
                  {' '}
                  · {time(step.startedAt)} · {duration(to(step) - from(step))}
                  {step.finishedAt ? '' : ' so far'} · {step.attempts}{' '}
                  {step.attempts === 1 ? 'attempt' : 'attempts'}
                </span>
              )}
            </div>
            <div className="timeline-track">
              {step.startedAt && (
                <div
                  className={`timeline-bar wf-bar-${look.key}`}
                  style={{
                    left: `${((from(step) - start) / span) * 100}%`,
                    width: `${Math.max(0.5, ((to(step) - from(step)) / span) * 100)}%`,
                  }}
                />
              )}
            </div>
          </li>
        );
      })}
    </ol>
  );
}
