import type { Me } from '@kairos/client';
import { type FormEvent, useState } from 'react';
import { api } from '../api.ts';
import { ErrorBox } from '../components.tsx';

export function LoginPage({ onLogin }: { onLogin: (me: Me) => void }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      onLogin(await api.login({ name, password }));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="login">
      <form onSubmit={submit} className="login-box">
        <h1>Kairos</h1>
        <label>
          User
          <input value={name} onChange={(e) => setName(e.target.value)} autoComplete="username" />
        </label>
        <label>
          Password
          <input
            type="password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            autoComplete="current-password"
          />
        </label>
        <ErrorBox error={error} />
        <button type="submit" className="primary" disabled={busy || !name || !password}>
          Log in
        </button>
      </form>
    </div>
  );
}
