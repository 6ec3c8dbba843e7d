import type { ApiTokenSpec, CreatedApiToken, Me, UserRole } from '@kairos/client';
import { type FormEvent, useState } from 'react';
import { api } from '../api.ts';
import { Confirm, Dialog, ErrorBox, Section } from '../components.tsx';
import { time } from '../format.ts';
import { usePoll } from '../hooks.ts';

const ROLES: UserRole[] = ['admin', 'operator', 'viewer'];

export function UsersPage({ me }: { me: Me }) {
  const users = usePoll(() => api.listUsers(), [], 5000);
  const tokens = usePoll(() => api.listTokens(), [], 5000);
  const audit = usePoll(() => api.listAudit({ limit: 50 }), [], 3000);
  const [error, setError] = useState<unknown>();
  const [deleting, setDeleting] = useState<string>();
  const [revoking, setRevoking] = useState<number>();
  const [resetting, setResetting] = useState<string>();

  const act = async (action: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await action();
      users.reload();
      tokens.reload();
      audit.reload();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <>
      <h1>Users & tokens</h1>
      <ErrorBox error={error ?? users.error ?? tokens.error} />
      <Section title="Users">
        <table aria-label="Users">
          <thead>
            <tr>
              <th>Name</th>
              <th>Role</th>
              <th>Created</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {users.data?.items.map((u) => (
              <tr key={u.name}>
                <td>{u.name}</td>
                <td>
                  <select
                    className="role-select"
                    aria-label={`Role of ${u.name}`}
                    value={u.role}
                    onChange={(e) => act(() => api.updateUser(u.name, { role: e.target.value as UserRole }))}
                  >
                    {ROLES.map((r) => (
                      <option key={r}>{r}</option>
                    ))}
                  </select>
                </td>
                <td>{time(u.createdAt)}</td>
                <td className="actions">
                  <button type="button" onClick={() => setResetting(u.name)}>
                    Set password
                  </button>
                  {u.name !== me.user && (
                    <button type="button" className="danger" onClick={() => setDeleting(u.name)}>
                      Delete
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <NewUserForm onCreated={() => act(async () => undefined)} />
      </Section>
      <Section title="API tokens">
        <table aria-label="API tokens">
          <thead>
            <tr>
              <th>Name</th>
              <th>Role</th>
              <th>Groups</th>
              <th>Created by</th>
              <th>Created</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {tokens.data?.items.map((t) => (
              <tr key={t.id}>
                <td>{t.name}</td>
                <td>{t.role}</td>
                <td>{t.groups?.join(', ') ?? (t.role === 'worker' ? 'all' : '–')}</td>
                <td>{t.createdBy}</td>
                <td>{time(t.createdAt)}</td>
                <td>
                  <button type="button" className="danger" onClick={() => setRevoking(t.id)}>
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <NewTokenForm onCreated={() => act(async () => undefined)} />
      </Section>
      <Section title="Audit log">
        <table aria-label="Audit log">
          <thead>
            <tr>
              <th>When</th>
              <th>Who</th>
              <th>What</th>
              <th>Target</th>
              <th>Details</th>
            </tr>
          </thead>
          <tbody>
            {audit.data?.items.map((e) => (
              <tr key={e.id}>
                <td>{time(e.at)}</td>
                <td>{e.actor}</td>
                <td>{e.action}</td>
                <td>{e.target}</td>
                <td className="clip">
                  <code>{Object.keys(e.details).length ? JSON.stringify(e.details) : ''}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Confirm
        open={deleting !== undefined}
        title={`Delete user ${deleting}?`}
        message="Their sessions end at once."
        confirmLabel="Delete user"
        onConfirm={() => deleting && act(() => api.deleteUser(deleting))}
        onClose={() => setDeleting(undefined)}
      />
      <PasswordDialog
        name={resetting}
        onClose={() => setResetting(undefined)}
        onSave={(name, password) => act(() => api.updateUser(name, { password }))}
      />
      <Confirm
        open={revoking !== undefined}
        title="Revoke this token?"
        message="Scripts and workers using it get 401 from now on."
        confirmLabel="Revoke"
        onConfirm={() => revoking !== undefined && act(() => api.deleteToken(revoking))}
        onClose={() => setRevoking(undefined)}
      />
    </>
  );
}

function NewUserForm({ onCreated }: { onCreated: () => void }) {
  const [name, setName] = useState('');
  const [role, setRole] = useState<UserRole>('viewer');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    try {
      await api.createUser({ name, role, password });
      setName('');
      setPassword('');
      onCreated();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <form className="inline-form" onSubmit={submit} aria-label="New user">
      <input
        aria-label="New user name"
        placeholder="name"
        value={name}
        onChange={(e) => setName(e.target.value)}
      />
      <select aria-label="New user role" value={role} onChange={(e) => setRole(e.target.value as UserRole)}>
        {ROLES.map((r) => (
          <option key={r}>{r}</option>
        ))}
      </select>
      <input
        aria-label="New user password"
        type="password"
        placeholder="password (8+ characters)"
        autoComplete="new-password"
        value={password}
        onChange={(e) => setPassword(e.target.value)}
      />
      <button type="submit" className="primary" disabled={!name || password.length < 8}>
        Add user
      </button>
      <ErrorBox error={error} />
    </form>
  );
}

function NewTokenForm({ onCreated }: { onCreated: () => void }) {
  const [name, setName] = useState('');
  const [role, setRole] = useState<ApiTokenSpec['role']>('operator');
  const [groups, setGroups] = useState('');
  const [created, setCreated] = useState<CreatedApiToken>();
  const [error, setError] = useState<unknown>();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    const list = groups
      .split(',')
      .map((g) => g.trim())
      .filter(Boolean);
    try {
      setCreated(
        await api.createToken({ name, role, ...(role === 'worker' && list.length ? { groups: list } : {}) }),
      );
      setName('');
      setGroups('');
      onCreated();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      <form className="inline-form" onSubmit={submit} aria-label="New token">
        <input
          aria-label="Token name"
          placeholder="name"
          value={name}
          onChange={(e) => setName(e.target.value)}
        />
        <select
          aria-label="Token role"
          value={role}
          onChange={(e) => setRole(e.target.value as ApiTokenSpec['role'])}
        >
          {[...ROLES, 'worker'].map((r) => (
            <option key={r}>{r}</option>
          ))}
        </select>
        {role === 'worker' && (
          <input
            aria-label="Token groups"
            placeholder="groups, comma-separated (empty: all)"
            value={groups}
            onChange={(e) => setGroups(e.target.value)}
          />
        )}
        <button type="submit" className="primary" disabled={!name}>
          Create token
        </button>
      </form>
      <ErrorBox error={error} />
      {created && (
        <div className="notice" role="status">
          Token <strong>{created.name}</strong> ({created.role}) — copy it now, it is not shown again:
          <pre className="secret">{created.token}</pre>
        </div>
      )}
    </>
  );
}

function PasswordDialog({
  name,
  onClose,
  onSave,
}: {
  name: string | undefined;
  onClose: () => void;
  onSave: (name: string, password: string) => void;
}) {
  const [password, setPassword] = useState('');
  return (
    <Dialog title={`New password for ${name}`} open={name !== undefined} onClose={onClose}>
      <p className="muted">Their sessions end; they log in again with the new password.</p>
      <label>
        Password
        <input
          type="password"
          autoComplete="new-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
      </label>
      {password.length > 0 && password.length < 8 && <p className="field-error">At least 8 characters.</p>}
      <div className="actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button
          type="button"
          className="primary"
          disabled={password.length < 8 || !name}
          onClick={() => {
            if (name) onSave(name, password);
            setPassword('');
            onClose();
          }}
        >
          Set password
        </button>
      </div>
    </Dialog>
  );
}
