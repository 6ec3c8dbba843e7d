import { api } from '../api.ts';
import { Empty, ErrorBox, StatusBadge } from '../components.tsx';
import { ago } from '../format.ts';
import { usePoll } from '../hooks.ts';

export function WorkersPage() {
  const workers = usePoll(() => api.listWorkers(), []);
  const items = workers.data?.items ?? [];
  return (
    <>
      <h1>Workers</h1>
      <ErrorBox error={workers.error} />
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
              <th>Labels</th>
              <th>Version</th>
              <th>Host</th>
              <th>Last heartbeat</th>
              <th>Handlers</th>
            </tr>
          </thead>
          <tbody>
            {items.map((w) => (
              <tr key={w.id} className={w.status === 'lost' ? 'lost' : ''}>
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
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
