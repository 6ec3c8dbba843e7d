import type { GroupInfo, Me, WorkerInfo } from '@kairos/client';
import { useState } from 'react';
import { api, can } from '../api.ts';
import { Confirm, Empty, ErrorBox, StatusBadge } from '../components.tsx';
import { ago, amountText, duration, time } from '../format.ts';
import { usePoll } from '../hooks.ts';

export function WorkersPage({ me }: { me: Me }) {
  // Lost and stopped workers stay listed until the reaper prunes them: hidden unless asked for.
  const [showGone, setShowGone] = useState(false);
  const workers = usePoll(() => api.listWorkers({ all: showGone }), [showGone]);
  // The group limits of the namespace shown: a group of another namespace is another pool.
  const groups = usePoll(() => api.listGroups(), []);
  const [draining, setDraining] = useState<WorkerInfo | null>(null);
  const [actionError, setActionError] = useState<unknown>();
  const items = workers.data?.items ?? [];
  const mayDrain = can(me, 'operator');
  const drain = async (worker: WorkerInfo) => {
    setActionError(undefined);
    try {
      await api.drainWorker(worker.id);
    } catch (e) {
      setActionError(e);
    }
    workers.reload();
  };
  const resume = async (worker: WorkerInfo) => {
    setActionError(undefined);
    try {
      await api.resumeWorker(worker.id);
    } catch (e) {
      setActionError(e);
    }
    workers.reload();
  };
  return (
    <>
      <h1>Workers</h1>
      <label>
        <input type="checkbox" checked={showGone} onChange={(e) => setShowGone(e.target.checked)} /> Show lost
        and stopped workers
      </label>
      <ErrorBox error={workers.error ?? actionError} />
      {workers.data && items.length === 0 && (
        <Empty>No workers. Start one with `kairos worker --handlers ./handlers.ts`.</Empty>
      )}
      {items.length > 0 && (
        <table aria-label="Workers">
          <thead>
            <tr>
              <th>Name</th>
              <th>Group</th>
              <th>Status</th>
              <th>Slots</th>
              <th>Resources (in use / has)</th>
              <th>Host load</th>
              <th>Labels</th>
              <th>Version</th>
              <th>Host</th>
              <th>Last heartbeat</th>
              <th>Handlers</th>
              {mayDrain && <th />}
            </tr>
          </thead>
          <tbody>
            {items.map((w) => (
              <tr key={w.id} className={w.status === 'lost' ? 'lost' : ''} data-worker={w.name}>
                <td title={w.id}>{w.name}</td>
                <td>{w.group}</td>
                <td>
                  <StatusBadge status={w.status} />
                </td>
                <td>
                  <div className="slots" title={`${w.running} of ${w.capacity} slots used`}>
                    <div
                      className="slots-used"
                      style={{ width: `${Math.min(100, (w.running / w.capacity) * 100)}%` }}
                    />
                  </div>
                  {w.running}/{w.capacity}
                </td>
                <td data-testid="worker-resources">
                  <WorkerResources worker={w} />
                </td>
                <td data-testid="worker-load">{loadText(w.load)}</td>
                <td>
                  {Object.entries(w.labels).map(([k, v]) => (
                    <span key={k} className="label">
                      {k}={v}
                    </span>
                  ))}
                </td>
                <td>{w.version || '–'}</td>
                <td>{w.host}</td>
                <td>{ago(w.lastHeartbeatAt)}</td>
                <td className="clip">{w.handlers.join(', ')}</td>
                {mayDrain && (
                  <td>
                    {/* Only an active worker can start draining; lost and stopped ones stay as they are. */}
                    {w.status === 'active' && (
                      <button type="button" onClick={() => setDraining(w)}>
                        Drain
                      </button>
                    )}
                    {w.status === 'draining' && (
                      <button type="button" onClick={() => void resume(w)}>
                        Resume
                      </button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <GroupLimits groups={groups.data?.items} error={groups.error} />
      <Confirm
        open={draining !== null}
        title={`Drain ${draining?.name ?? ''}?`}
        message="The worker finishes the runs it has, takes no new ones and keeps heartbeating; runs assigned to it go to other workers."
        confirmLabel="Drain worker"
        onConfirm={() => {
          if (draining) void drain(draining);
        }}
        onClose={() => setDraining(null)}
      />
    </>
  );
}

/**
 * Each resource the worker advertised, with what its running runs request of it when the node
 * says (`resourcesInUse`): `cpu 1.5 / 2`. Reservations for a starved run are decided anew at each
 * claim and kept nowhere, so they are not shown.
 */
function WorkerResources({ worker }: { worker: WorkerInfo }) {
  const has = Object.entries(worker.resources ?? {});
  if (has.length === 0) return <span className="muted">none (runs that request nothing only)</span>;
  const used = worker.resourcesInUse;
  return (
    <>
      {has.map(([name, amount]) => {
        const inUse = used?.[name];
        const text =
          inUse === undefined && used === undefined
            ? `${name} ${amountText(name, amount)}`
            : `${name} ${amountText(name, inUse ?? 0)} / ${amountText(name, amount)}`;
        return (
          <span key={name} className="label" data-resource={name}>
            {text}
          </span>
        );
      })}
    </>
  );
}

/** The host's load the worker last reported: load average per CPU and memory in use. */
function loadText(load: WorkerInfo['load']): string {
  if (!load) return '–';
  const perCpu = load.loadAverage / load.cpus;
  const memory = load.totalMemory > 0 ? (1 - load.freeMemory / load.totalMemory) * 100 : null;
  return `${perCpu.toFixed(2)} per CPU (${load.loadAverage.toFixed(2)} on ${load.cpus})${
    memory === null ? '' : `, memory ${Math.round(memory)}% used`
  }`;
}

/** The limits of the namespace's groups (`kairos groups set`); only groups that have limits are listed. */
function GroupLimits({ groups, error }: { groups: GroupInfo[] | undefined; error: unknown }) {
  const limited = (groups ?? []).filter((g) => g.maxConcurrency !== null || g.rateLimit !== null);
  return (
    <section aria-label="Group limits">
      <h2>Group limits</h2>
      <ErrorBox error={error} />
      {groups && limited.length === 0 && (
        <p className="muted">
          No group of this namespace has limits. Set them with `kairos groups set GROUP --max-concurrency N`.
        </p>
      )}
      {limited.length > 0 && (
        <table aria-label="Group limits">
          <thead>
            <tr>
              <th>Group</th>
              <th>Runs at once</th>
              <th>Starts</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {limited.map((g) => (
              <tr key={g.group} data-group={g.group}>
                <td>{g.group}</td>
                <td>{g.maxConcurrency ?? 'no limit'}</td>
                <td>{g.rateLimit ? `${g.rateLimit.limit} per ${duration(g.rateLimit.per)}` : 'no limit'}</td>
                <td>{time(g.updatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
