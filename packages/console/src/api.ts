import { KairosApiError, KairosClient, type Me } from '@kairos/client';

/** The CSRF token of the current session, sent on every request (the node checks it on changes). */
let csrfToken: string | null = null;

export function setSession(me: Me | null): void {
  csrfToken = me?.csrfToken ?? null;
}

const NAMESPACE_KEY = 'kairos.namespace';

/** The namespace every page shows (docs/tenancy.md), kept across reloads; `default` at first. */
let namespace = window.localStorage.getItem(NAMESPACE_KEY) ?? 'default';

export function currentNamespace(): string {
  return namespace;
}

export function setNamespace(name: string): void {
  namespace = name;
  window.localStorage.setItem(NAMESPACE_KEY, name);
}

/**
 * The console talks to the node that served it, with the session cookie, the CSRF header and the
 * namespace of the header's switch.
 */
export const api = new KairosClient({
  url: window.location.origin,
  headers: (): Record<string, string> => ({
    'kairos-namespace': namespace,
    ...(csrfToken ? { 'x-csrf-token': csrfToken } : {}),
  }),
});

export type Level = 'viewer' | 'operator' | 'admin';

const RANK: Record<string, number> = { viewer: 1, operator: 2, admin: 3 };

/** Whether the signed-in user's role reaches `level` (buttons the role cannot use are not shown). */
export function can(me: Me, level: Level): boolean {
  return (RANK[me.role] ?? 0) >= (RANK[level] ?? 99);
}

export function errorText(error: unknown): string {
  if (error instanceof KairosApiError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

export function isUnauthorized(error: unknown): boolean {
  return error instanceof KairosApiError && error.status === 401;
}

const expiredListeners = new Set<() => void>();

/** Called by the app: a 401 anywhere (session expired, user deleted) shows the login page again. */
export function onSessionExpired(listener: () => void): () => void {
  expiredListeners.add(listener);
  return () => expiredListeners.delete(listener);
}

export function noticeError(error: unknown): void {
  if (isUnauthorized(error)) for (const listener of expiredListeners) listener();
}
