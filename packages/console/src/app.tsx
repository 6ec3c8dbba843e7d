import type { Me, Namespace } from '@kairos/client';
import { useCallback, useEffect, useState } from 'react';
import { api, can, currentNamespace, errorText, onSessionExpired, setNamespace, setSession } from './api.ts';
import { AlertsPage } from './pages/alerts.tsx';
import { CalendarsPage } from './pages/calendars.tsx';
import { ClusterPage } from './pages/cluster.tsx';
import { JobDetailPage } from './pages/job-detail.tsx';
import { JobFormPage } from './pages/job-form.tsx';
import { JobsPage } from './pages/jobs.tsx';
import { LoginPage } from './pages/login.tsx';
import { OverviewPage } from './pages/overview.tsx';
import { RunDetailPage } from './pages/run-detail.tsx';
import { RunsPage } from './pages/runs.tsx';
import { RetentionSettingsPage } from './pages/settings.tsx';
import { UsersPage } from './pages/users.tsx';
import { WorkersPage } from './pages/workers.tsx';
import { WorkflowInstancePage } from './pages/workflow-instance.tsx';
import { WorkflowPage, WorkflowsPage } from './pages/workflows.tsx';
import { type Route, useRoute } from './router.ts';

const NAV: Array<{ path: string; label: string; admin?: boolean }> = [
  { path: 'overview', label: 'Overview' },
  { path: 'jobs', label: 'Jobs' },
  { path: 'calendars', label: 'Calendars' },
  { path: 'workflows', label: 'Workflows' },
  { path: 'runs', label: 'Runs' },
  { path: 'workers', label: 'Workers' },
  { path: 'cluster', label: 'Cluster' },
  { path: 'alerts', label: 'Alerts' },
  { path: 'settings', label: 'Settings' },
  { path: 'users', label: 'Users & tokens', admin: true },
];

export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [namespaces, setNamespaces] = useState<Namespace[] | string | undefined>(undefined);
  const [namespace, switchTo] = useState(currentNamespace());
  const route = useRoute();

  // The namespaces the user may see, for the switch; the one shown must be among them.
  useEffect(() => {
    if (!me) return;
    api.listNamespaces().then(
      ({ items }) => {
        setNamespaces(items);
        if (items.length > 0 && !items.some((n) => n.name === currentNamespace())) {
          const first = items.find((n) => n.name === 'default') ?? items[0]!;
          setNamespace(first.name);
          switchTo(first.name);
        }
      },
      (error: unknown) => setNamespaces(errorText(error)),
    );
  }, [me]);

  useEffect(() => {
    api.me().then(
      (who) => {
        setSession(who);
        setMe(who);
      },
      () => setMe(null),
    );
  }, []);

  // Any 401 later (session expired, user deleted, password changed) brings the login page back.
  useEffect(
    () =>
      onSessionExpired(() => {
        setSession(null);
        setMe(null);
      }),
    [],
  );

  const logout = useCallback(async () => {
    await api.logout().catch(() => undefined);
    setSession(null);
    setMe(null);
  }, []);

  if (me === undefined) return <div className="loading">Loading…</div>;
  if (me === null)
    return (
      <LoginPage
        onLogin={(who) => {
          setSession(who);
          setMe(who);
        }}
      />
    );

  if (namespaces === undefined) return <div className="loading">Loading…</div>;
  if (typeof namespaces === 'string') return <p className="error">{namespaces}</p>;
  const shown = namespaces.find((n) => n.name === namespace);
  if (!shown) return <p>No namespace is open to {me.user ?? me.actor}: ask an admin for a role in one.</p>;
  // Pages judge what to show by the user's role in the namespace shown.
  const here: Me = { ...me, role: shown.role };
  const section = route.path[0] ?? 'overview';
  return (
    <div className="shell">
      <header className="top">
        <a className="brand" href="#/overview">
          Kairos
        </a>
        <nav aria-label="main">
          {NAV.filter((item) => !item.admin || can(here, 'admin')).map((item) => (
            <a key={item.path} href={`#/${item.path}`} className={section === item.path ? 'active' : ''}>
              {item.label}
            </a>
          ))}
        </nav>
        <label className="namespace">
          Namespace{' '}
          <select
            aria-label="namespace"
            value={namespace}
            onChange={(event) => {
              setNamespace(event.target.value);
              switchTo(event.target.value);
            }}
          >
            {namespaces.map((n) => (
              <option key={n.name} value={n.name}>
                {n.name}
              </option>
            ))}
          </select>
        </label>
        <div className="who">
          <span title={me.actor}>
            {me.user ?? me.actor} · <span className="role">{here.role}</span>
          </span>
          <button type="button" onClick={logout}>
            Log out
          </button>
        </div>
      </header>
      <main>
        {/* A new namespace mounts every page afresh: nothing of the last one stays on screen. */}
        <Page key={namespace} route={route} me={here} />
      </main>
    </div>
  );
}

function Page({ route, me }: { route: Route; me: Me }) {
  const [section, id, sub, subId] = route.path;
  switch (section) {
    case undefined:
    case 'overview':
      return <OverviewPage query={route.query} />;
    case 'jobs':
      if (id === 'new') return <JobFormPage me={me} cloneOf={route.query.get('clone') ?? undefined} />;
      if (id && sub === 'edit') return <JobFormPage me={me} name={id} />;
      if (id) return <JobDetailPage me={me} name={id} />;
      return <JobsPage me={me} query={route.query} />;
    case 'runs':
      if (id) return <RunDetailPage me={me} id={Number(id)} />;
      return <RunsPage query={route.query} />;
    case 'workflows':
      if (id && sub === 'instances' && subId)
        return <WorkflowInstancePage me={me} name={id} id={Number(subId)} />;
      if (id) return <WorkflowPage me={me} name={id} />;
      return <WorkflowsPage />;
    case 'workers':
      return <WorkersPage me={me} />;
    case 'cluster':
      return <ClusterPage />;
    case 'alerts':
      return <AlertsPage me={me} />;
    case 'calendars':
      return <CalendarsPage me={me} />;
    case 'settings':
      return <RetentionSettingsPage />;
    case 'users':
      return can(me, 'admin') ? <UsersPage me={me} /> : <p>Only admins manage users.</p>;
    default:
      return (
        <p>
          No page here. Go to the <a href="#/overview">overview</a>.
        </p>
      );
  }
}
