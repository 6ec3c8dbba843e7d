import type { Me, Workflow } from '@kairos/client';
import { Suspense, useState } from 'react';
import { can, errorText } from '../api.ts';
import { Dialog, Empty, ErrorBox, ListTable, Section, StatusBadge } from '../components.tsx';
import { ago, duration, time } from '../format.ts';
import { usePoll } from '../hooks.ts';
import { navigate } from '../router.ts';
import { workflowApi } from '../workflow-api.ts';
import { WorkflowGraph } from './workflow-instance.tsx';

/** Every workflow of the namespace (read page by page). */
async function allWorkflows(): Promise<Workflow[]> {
  const workflows: Workflow[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 20; page++) {
    const result = await workflowApi.list(cursor);
    workflows.push(...result.items);
    if (!result.nextCursor) break;
    cursor = result.nextCursor;
  }
  return workflows;
}

export function WorkflowsPage() {
  const workflows = usePoll(allWorkflows, [], 5000);
  return (
    <>
      <div className="page-head">
        <h1>Workflows</h1>
      </div>
      <p className="muted">
        Graphs of steps, defined through the API (<code>PUT /v1/workflows/:name</code>); start and watch their
        instances here.
      </p>
      <ErrorBox error={workflows.error} />
      <ListTable
        label="Workflows"
        items={workflows.data}
        empty="No workflow in this namespace."
        headers={
          <>
            <th>Name</th>
            <th>Steps</th>
            <th>Version</th>
            <th>Updated</th>
          </>
        }
        row={(w) => (
          <tr key={w.name}>
            <td>
              <a href={`#/workflows/${encodeURIComponent(w.name)}`}>{w.name}</a>
              {w.description && <div className="muted clip">{w.description}</div>}
            </td>
            <td>{w.steps.length}</td>
            <td>{w.version}</td>
            <td>
              {time(w.updatedAt)} <span className="muted">({ago(w.updatedAt)})</span>
            </td>
          </tr>
        )}
      />
    </>
  );
}

/** One workflow: its definition as a graph, its instances, and a Start button for operators. */
export function WorkflowPage({ me, name }: { me: Me; name: string }) {
  const workflow = usePoll(() => workflowApi.get(name), [name], 10_000);
  const instances = usePoll(() => workflowApi.instances(name), [name], 2000);
  const [starting, setStarting] = useState(false);
  const w = workflow.data;
  return (
    <>
      <div className="page-head">
        <h1>{name}</h1>
        {w && can(me, 'operator') && (
          <button type="button" className="primary" onClick={() => setStarting(true)}>
            Start
          </button>
        )}
      </div>
      {w && (
        <p className="muted">
          Version {w.version} · {w.steps.length} steps · updated {time(w.updatedAt)}
          {w.description && ` · ${w.description}`}
        </p>
      )}
      <ErrorBox error={workflow.error} />
      {starting && <StartDialog name={name} onClose={() => setStarting(false)} />}
      {w && (
        <Section title="Graph">
          <Suspense fallback={<div className="wf-graph wf-graph-loading">Loading the graph…</div>}>
            <WorkflowGraph steps={w.steps} />
          </Suspense>
        </Section>
      )}
      <Section title="Instances">
        <ErrorBox error={instances.error} />
        {instances.data && instances.data.items.length === 0 ? (
          <Empty>No instance yet.</Empty>
        ) : (
          <ListTable
            label="Instances"
            items={instances.data?.items}
            empty=""
            headers={
              <>
                <th>Instance</th>
                <th>State</th>
                <th>Version</th>
                <th>Started</th>
                <th>Finished</th>
                <th>Duration</th>
              </>
            }
            row={(i) => (
              <tr key={i.id} data-state={i.state}>
                <td>
                  <a href={`#/workflows/${encodeURIComponent(name)}/instances/${i.id}`}>#{i.id}</a>
                </td>
                <td>
                  <StatusBadge status={i.state} />
                </td>
                <td>{i.version}</td>
                <td>{time(i.startedAt)}</td>
                <td>{time(i.finishedAt)}</td>
                <td>{i.finishedAt ? duration(Date.parse(i.finishedAt) - Date.parse(i.startedAt)) : ''}</td>
              </tr>
            )}
          />
        )}
      </Section>
    </>
  );
}

/** Starts an instance with an optional context (a JSON object), then opens it. */
function StartDialog({ name, onClose }: { name: string; onClose: () => void }) {
  const [text, setText] = useState('{}');
  const [error, setError] = useState<string>();
  let parseError: string | undefined;
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      parseError = 'the context must be a JSON object';
  } catch (e) {
    parseError = `not JSON: ${(e as Error).message}`;
  }
  const submit = async () => {
    try {
      const instance = await workflowApi.start(name, JSON.parse(text));
      onClose();
      navigate(`/workflows/${encodeURIComponent(name)}/instances/${instance.id}`);
    } catch (e) {
      setError(errorText(e));
    }
  };
  return (
    <Dialog title={`Start ${name}`} open onClose={onClose}>
      <label>
        Context (JSON)
        <textarea rows={6} value={text} onChange={(e) => setText(e.target.value)} spellCheck={false} />
      </label>
      <p className="muted">
        Every step reads it as <code>params.$workflow.context</code>.
      </p>
      {(parseError ?? error) && (
        <div className="error" role="alert">
          {parseError ?? error}
        </div>
      )}
      <div className="actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="primary" disabled={!!parseError} onClick={submit}>
          Start instance
        </button>
      </div>
    </Dialog>
  );
}
