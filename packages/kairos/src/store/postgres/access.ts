// Access on PostgreSQL (the Store contract's "Access" section): users, sessions, OpenID logins, API
// tokens, the audit log, and the identity of a worker. Writes that change access take an optional
// audit entry and write it in the same transaction.

import type pg from 'pg';
import { KairosError } from '../../errors.ts';
import {
  type ApiTokenRecord,
  type ApiTokenRow,
  type AuditEntry,
  type AuditRecord,
  type AuditRow,
  apiTokenFromRow,
  auditFromRow,
  EXTERNAL_PASSWORD_HASH,
  type ExternalUser,
  type NewApiToken,
  type NewOidcLogin,
  type NewSession,
  type NewUser,
  type OidcLoginRecord,
  type OidcLoginRow,
  oidcLoginFromRow,
  type SessionRecord,
  type SessionRow,
  sessionFromRow,
  tokenNameTaken,
  type UserPatch,
  type UserRecord,
  type UserRow,
  userFromRow,
} from '../access.ts';
import { DEFAULT_NAMESPACE } from '../namespaces.ts';
import type { WorkerIdentity } from '../store.ts';
import type { PostgresConnection } from './connection.ts';

/** Serializes changes that could remove the last admin user (two deletes in parallel). */
export const ADMIN_LOCK = 7_245_100_005;

/** Inserts a user. $1 name, $2 role, $3 password hash, $4 now. */
export const CREATE_USER = `
  INSERT INTO users (name, role, password_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
  RETURNING *`;

/** Changes role and/or password. $1 role or null, $2 password hash or null, $3 now, $4 name. */
export const UPDATE_USER = `
  UPDATE users SET role = coalesce($1, role), password_hash = coalesce($2, password_hash), updated_at = $3
  WHERE name = $4 RETURNING *`;

/**
 * Signs in an external user: found by (issuer, subject), never by name; their name and role are the
 * provider's now. A name held by another user violates users.name's UNIQUE constraint.
 * $1 name, $2 role, $3 password hash (`external`), $4 issuer, $5 subject, $6 now.
 */
export const UPSERT_EXTERNAL_USER = `
  INSERT INTO users (name, role, password_hash, issuer, subject, created_at, updated_at)
  VALUES ($1, $2, $3, $4, $5, $6, $6)
  ON CONFLICT (issuer, subject) DO UPDATE SET name = excluded.name, role = excluded.role, updated_at = excluded.updated_at
  RETURNING *`;

/** A session with its user, unless expired. $1 id hash, $2 now. */
export const GET_SESSION = `
  SELECT s.id_hash, s.user_id, s.csrf_token, s.created_at AS s_created_at, s.expires_at,
    u.id, u.name, u.role, u.password_hash, u.issuer, u.subject, u.created_at, u.updated_at
  FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1 AND s.expires_at > $2`;

/** Inserts a session. $1 id hash, $2 user id, $3 csrf token, $4 now, $5 expiry. */
export const CREATE_SESSION = `
  INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`;

/** Records a login under way at the provider. $1 id hash, $2 state, $3 nonce, $4 code verifier, $5 now, $6 expiry. */
export const CREATE_OIDC_LOGIN = `
  INSERT INTO oidc_logins (id_hash, state, nonce, code_verifier, created_at, expires_at)
  VALUES ($1, $2, $3, $4, $5, $6)`;

/** Takes a login under way: deleted whether or not it expired, answered only when it did not. $1 id hash. */
export const TAKE_OIDC_LOGIN = `
  DELETE FROM oidc_logins WHERE id_hash = $1 RETURNING *`;

/** Inserts an API token. $1 name, $2 hash, $3 role, $4 groups (jsonb text or null), $5 created by, $6 now, $7 namespace. */
export const CREATE_API_TOKEN = `
  INSERT INTO api_tokens (name, token_hash, role, groups, created_by, created_at, namespace)
  VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7) RETURNING *`;

/** Appends one audit entry. $1 at, $2 actor, $3 action, $4 target, $5 details (jsonb text), $6 namespace. */
export const APPEND_AUDIT = `
  INSERT INTO audit_log (at, actor, action, target, details, namespace) VALUES ($1, $2, $3, $4, $5::jsonb, $6)`;

/**
 * Appends one audit entry in a transaction of its own that does not wait for its WAL flush
 * (asynchronous commit, for this transaction only): the entry of a change that the API committed in
 * an earlier transaction, which a crash between the two may lose anyway (server/audit.ts). A crash
 * within the next WAL writer round may lose it too; the change stays. $1..$6 as APPEND_AUDIT.
 */
export const APPEND_AUDIT_AFTER = `
  WITH async AS (SELECT set_config('synchronous_commit', 'off', true))
  INSERT INTO audit_log (at, actor, action, target, details, namespace)
  SELECT $1::bigint, $2::text, $3::text, $4::text, $5::jsonb, $6::text FROM async`;

/** Audit entries newest first. $1 before id or null, $2 limit, $3 namespaces or null (all). */
export const LIST_AUDIT = `
  SELECT * FROM audit_log WHERE ($1::bigint IS NULL OR id < $1) AND ($3::text[] IS NULL OR namespace = ANY($3::text[]))
  ORDER BY id DESC LIMIT $2`;

export async function createUser(
  c: PostgresConnection,
  user: NewUser,
  now: number,
  audit?: AuditEntry,
): Promise<UserRecord> {
  try {
    return await c.transaction('createUser', async (client) => {
      const { rows } = await client.query<UserRow>(CREATE_USER, [
        user.name,
        user.role,
        user.passwordHash,
        now,
      ]);
      await writeAudit(client, audit);
      return userFromRow(rows[0]!);
    });
  } catch (error) {
    if ((error as { cause?: { code?: string } }).cause?.code === '23505') {
      throw new KairosError('USER_NAME_TAKEN', `a user named ${JSON.stringify(user.name)} exists`);
    }
    throw error;
  }
}

export async function getUser(c: PostgresConnection, name: string): Promise<UserRecord | null> {
  const [row] = await c.query<UserRow>('getUser', 'SELECT * FROM users WHERE name = $1', [name]);
  return row ? userFromRow(row) : null;
}

export async function listUsers(c: PostgresConnection): Promise<UserRecord[]> {
  return (await c.query<UserRow>('listUsers', 'SELECT * FROM users ORDER BY name', [])).map(userFromRow);
}

export async function updateUser(
  c: PostgresConnection,
  name: string,
  patch: UserPatch,
  now: number,
  audit?: AuditEntry,
): Promise<UserRecord | null> {
  return c.transaction('updateUser', async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [ADMIN_LOCK]);
    const before = await client.query<{ role: string }>('SELECT role FROM users WHERE name = $1', [name]);
    if (before.rows.length === 0) return null;
    const { rows } = await client.query<UserRow>(UPDATE_USER, [
      patch.role ?? null,
      patch.passwordHash ?? null,
      now,
      name,
    ]);
    const row = rows[0]!;
    await checkAdminsLeft(client, before.rows[0]!.role === 'admin' && row.role !== 'admin');
    if (patch.passwordHash !== undefined)
      await client.query('DELETE FROM sessions WHERE user_id = $1', [row.id]);
    await writeAudit(client, audit);
    return userFromRow(row);
  });
}

export async function upsertExternalUser(
  c: PostgresConnection,
  user: ExternalUser,
  now: number,
  audit?: AuditEntry,
): Promise<UserRecord> {
  try {
    return await c.transaction('upsertExternalUser', async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [ADMIN_LOCK]);
      const before = await client.query<{ role: string }>(
        'SELECT role FROM users WHERE issuer = $1 AND subject = $2',
        [user.issuer, user.subject],
      );
      const { rows } = await client.query<UserRow>(UPSERT_EXTERNAL_USER, [
        user.name,
        user.role,
        EXTERNAL_PASSWORD_HASH,
        user.issuer,
        user.subject,
        now,
      ]);
      await checkAdminsLeft(client, before.rows[0]?.role === 'admin' && user.role !== 'admin');
      await writeAudit(client, audit);
      return userFromRow(rows[0]!);
    });
  } catch (error) {
    if ((error as { cause?: { code?: string } }).cause?.code === '23505') {
      throw new KairosError('USER_NAME_TAKEN', `a user named ${JSON.stringify(user.name)} exists`);
    }
    throw error;
  }
}

export async function deleteUser(c: PostgresConnection, name: string, audit?: AuditEntry): Promise<boolean> {
  return c.transaction('deleteUser', async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [ADMIN_LOCK]);
    const { rows } = await client.query<{ role: string }>(
      'DELETE FROM users WHERE name = $1 RETURNING role',
      [name],
    );
    if (rows.length === 0) return false;
    await checkAdminsLeft(client, rows[0]!.role === 'admin');
    await writeAudit(client, audit);
    return true;
  });
}

export async function createSession(c: PostgresConnection, session: NewSession, now: number): Promise<void> {
  await c.transaction('createSession', async (client) => {
    await client.query('DELETE FROM sessions WHERE expires_at <= $1', [now]);
    await client.query(CREATE_SESSION, [
      session.idHash,
      session.userId,
      session.csrfToken,
      now,
      session.expiresAt,
    ]);
  });
}

export async function getSession(
  c: PostgresConnection,
  idHash: string,
  now: number,
): Promise<SessionRecord | null> {
  const [row] = await c.query<SessionRow & UserRow & { s_created_at: number }>('getSession', GET_SESSION, [
    idHash,
    now,
  ]);
  return row ? sessionFromRow({ ...row, created_at: row.s_created_at }, row) : null;
}

export async function deleteSession(c: PostgresConnection, idHash: string): Promise<void> {
  await c.query('deleteSession', 'DELETE FROM sessions WHERE id_hash = $1', [idHash]);
}

export async function createOidcLogin(
  c: PostgresConnection,
  login: NewOidcLogin,
  now: number,
): Promise<void> {
  await c.transaction('createOidcLogin', async (client) => {
    await client.query('DELETE FROM oidc_logins WHERE expires_at <= $1', [now]);
    await client.query(CREATE_OIDC_LOGIN, [
      login.idHash,
      login.state,
      login.nonce,
      login.codeVerifier,
      now,
      login.expiresAt,
    ]);
  });
}

export async function takeOidcLogin(
  c: PostgresConnection,
  idHash: string,
  now: number,
): Promise<OidcLoginRecord | null> {
  const [row] = await c.query<OidcLoginRow>('takeOidcLogin', TAKE_OIDC_LOGIN, [idHash]);
  return row && Number(row.expires_at) > now ? oidcLoginFromRow(row) : null;
}

export async function createApiToken(
  c: PostgresConnection,
  token: NewApiToken,
  now: number,
  audit?: AuditEntry,
): Promise<ApiTokenRecord> {
  return c.transaction('createApiToken', async (client) => {
    const namespace = token.namespace ?? DEFAULT_NAMESPACE;
    // One create per namespace at a time (no unique index: names taken twice before this check stay).
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`api_tokens:${namespace}`]);
    const { rowCount } = await client.query('SELECT 1 FROM api_tokens WHERE name = $1 AND namespace = $2', [
      token.name,
      namespace,
    ]);
    if (rowCount) throw tokenNameTaken(token.name);
    const { rows } = await client.query<ApiTokenRow>(CREATE_API_TOKEN, [
      token.name,
      token.tokenHash,
      token.role,
      token.groups === null ? null : JSON.stringify(token.groups),
      token.createdBy,
      now,
      token.namespace ?? DEFAULT_NAMESPACE,
    ]);
    await writeAudit(client, audit);
    return apiTokenFromRow(rows[0]!);
  });
}

export async function findApiToken(c: PostgresConnection, tokenHash: string): Promise<ApiTokenRecord | null> {
  const [row] = await c.query<ApiTokenRow>('findApiToken', 'SELECT * FROM api_tokens WHERE token_hash = $1', [
    tokenHash,
  ]);
  return row ? apiTokenFromRow(row) : null;
}

export async function listApiTokens(c: PostgresConnection, namespace?: string): Promise<ApiTokenRecord[]> {
  return (
    await c.query<ApiTokenRow>(
      'listApiTokens',
      'SELECT * FROM api_tokens WHERE ($1::text IS NULL OR namespace = $1) ORDER BY id DESC',
      [namespace ?? null],
    )
  ).map(apiTokenFromRow);
}

export async function deleteApiToken(
  c: PostgresConnection,
  id: number,
  audit?: AuditEntry,
): Promise<boolean> {
  return c.transaction('deleteApiToken', async (client) => {
    const { rowCount } = await client.query('DELETE FROM api_tokens WHERE id = $1', [id]);
    if (!rowCount) return false;
    await writeAudit(client, audit);
    return true;
  });
}

export async function appendAudit(c: PostgresConnection, entry: AuditEntry): Promise<void> {
  await c.query('appendAudit', APPEND_AUDIT_AFTER, auditValues(entry));
}

export async function listAudit(
  c: PostgresConnection,
  filter: {
    namespaces?: readonly string[] | undefined;
    before?: number | undefined;
    limit: number;
  },
): Promise<AuditRecord[]> {
  return (
    await c.query<AuditRow>('listAudit', LIST_AUDIT, [
      filter.before ?? null,
      filter.limit,
      filter.namespaces ?? null,
    ])
  ).map(auditFromRow);
}

export async function workerIdentity(
  c: PostgresConnection,
  workerId: string,
): Promise<WorkerIdentity | null> {
  const [row] = await c.query<{ namespace: string; group_name: string; registered_by: string }>(
    'workerIdentity',
    'SELECT namespace, group_name, registered_by FROM workers WHERE id = $1',
    [workerId],
  );
  return row ? { namespace: row.namespace, group: row.group_name, registeredBy: row.registered_by } : null;
}

/** Writes the audit entry of a change in the change's own transaction; nothing without one. */
export async function writeAudit(client: pg.PoolClient, entry: AuditEntry | undefined): Promise<void> {
  if (entry) await client.query(APPEND_AUDIT, auditValues(entry));
}

/** Throws LAST_ADMIN (rolling the transaction back) when an admin was removed and none is left. */
async function checkAdminsLeft(client: pg.PoolClient, removedAnAdmin: boolean): Promise<void> {
  if (!removedAnAdmin) return;
  const { rows } = await client.query<{ n: number }>(`SELECT count(*) AS n FROM users WHERE role = 'admin'`);
  if (Number(rows[0]!.n) === 0)
    throw new KairosError('LAST_ADMIN', 'the last admin user cannot be removed or demoted');
}

export function auditValues(entry: AuditEntry): unknown[] {
  return [
    entry.at,
    entry.actor,
    entry.action,
    entry.target,
    JSON.stringify(entry.details),
    entry.namespace ?? DEFAULT_NAMESPACE,
  ];
}
