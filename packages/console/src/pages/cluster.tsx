import { api } from '../api.ts';
import { Empty, ErrorBox, StatusBadge } from '../components.tsx';
import { ago, time } from '../format.ts';
import { usePoll } from '../hooks.ts';

export function ClusterPage() {
  const nodes = usePoll(() => api.listNodes(), []);
  const items = nodes.data?.items ?? [];
  return (
    <>
      <h1>Cluster</h1>
      <ErrorBox error={nodes.error} />
      {nodes.data && items.length === 0 && <Empty>No nodes have reported yet.</Empty>}
      {items.length > 0 && (
        <table aria-label="Nodes">
          <thead>
            <tr>
              <th>Node</th>
              <th>Address</th>
              <th>Status</th>
              <th>Partitions owned</th>
              <th>Version</th>
              <th>Clock skew</th>
              <th>Last heartbeat</th>
              <th>Started</th>
            </tr>
          </thead>
          <tbody>
            {items.map((n) => (
              <tr key={n.instance}>
                <td title={`instance ${n.instance}`}>{n.id}</td>
                <td>{n.address}</td>
                <td>
                  <StatusBadge status={n.status === 'alive' ? 'active' : 'lost'} />
                </td>
                <td title={n.partitions.join(', ')}>
                  {n.partitions.length} <span className="muted">({n.partitions.join(', ') || 'none'})</span>
                </td>
                <td>{n.version}</td>
                <td className={Math.abs(n.clockSkewMs) > 1000 ? 'warn' : ''}>
                  {n.clockSkewMs.toFixed(1)} ms
                </td>
                <td>{ago(n.lastHeartbeatAt)}</td>
                <td>{time(n.startedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
