import type { AuthProviders, Me } from '@kairos/client';
import { type FormEvent, useEffect, useState } from 'react';
import { api } from '../api.ts';
import { ErrorBox } from '../components.tsx';

/**
 * The login page: the password form, and a "Sign in with …" button when the node has single
 * sign-on (GET /v1/auth/providers). The button is a link: the browser goes to the provider and
 * comes back to the console with its session cookie.
 */
export function LoginPage({ onLogin }: { onLogin: (me: Me) => void }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [providers, setProviders] = useState<AuthProviders>();

  useEffect(() => {
    api.authProviders().then(setProviders, () =>
      // An older node without the route: the password form alone.
      setProviders({ password: true, sso: null }),
    );
  }, []);

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

  if (!providers) return <div className="loading">Loading…</div>;
  return (
    <div className="login">
      <form onSubmit={submit} className="login-box">
        <h1>Kairos</h1>
        {providers.sso && (
          <a className="button primary sso" href={providers.sso.loginUrl}>
            Sign in with {providers.sso.name}
          </a>
        )}
        {providers.sso && providers.password && <p className="login-or">or</p>}
        {providers.password && (
          <>
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
            <button
              type="submit"
              className={providers.sso ? undefined : 'primary'}
              disabled={busy || !name || !password}
            >
              Log in
            </button>
          </>
        )}
      </form>
    </div>
  );
}
