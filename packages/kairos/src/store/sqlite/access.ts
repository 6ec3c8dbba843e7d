// Users, sessions, OIDC logins, API tokens and the audit log on SQLite (the Store contract's Access
// section).

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
import type { SqliteConnection } from './connection.ts';

export function createUser(c: SqliteConnection, user: NewUser, now: number, audit?: AuditEntry): UserRecord {
  return c.run('createUser', () =>
    c.db
      .transaction(() => {
        try {
          const row = c
            .sql(
              `INSERT INTO users (name, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING *`,
            )
            .get(user.name, user.role, user.passwordHash, now, now) as UserRow;
          writeAudit(c, audit);
          return userFromRow(row);
        } catch (error) {
          if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
            throw new KairosError('USER_NAME_TAKEN', `a user named ${JSON.stringify(user.name)} exists`);
          }
          throw error;
        }
      })
      .immediate(),
  );
}

export function getUser(c: SqliteConnection, name: string): UserRecord | null {
  return c.run('getUser', () => {
    const row = c.sql('SELECT * FROM users WHERE name = ?').get(name) as UserRow | undefined;
    return row ? userFromRow(row) : null;
  });
}

export function listUsers(c: SqliteConnection): UserRecord[] {
  return c.run('listUsers', () =>
    (c.sql('SELECT * FROM users ORDER BY name').all() as UserRow[]).map(userFromRow),
  );
}

export function updateUser(
  c: SqliteConnection,
  name: string,
  patch: UserPatch,
  now: number,
  audit?: AuditEntry,
): UserRecord | null {
  return c.run('updateUser', () =>
    c.db
      .transaction(() => {
        const before = c.sql('SELECT role FROM users WHERE name = ?').get(name) as
          | { role: string }
          | undefined;
        if (!before) return null;
        const row = c
          .sql(
            `UPDATE users SET role = coalesce(?, role), password_hash = coalesce(?, password_hash), updated_at = ?
             WHERE name = ? RETURNING *`,
          )
          .get(patch.role ?? null, patch.passwordHash ?? null, now, name) as UserRow;
        checkAdminsLeft(c, before.role === 'admin' && row.role !== 'admin');
        if (patch.passwordHash !== undefined) c.sql('DELETE FROM sessions WHERE user_id = ?').run(row.id);
        writeAudit(c, audit);
        return userFromRow(row);
      })
      .immediate(),
  );
}

export function upsertExternalUser(
  c: SqliteConnection,
  user: ExternalUser,
  now: number,
  audit?: AuditEntry,
): UserRecord {
  return c.run('upsertExternalUser', () =>
    c.db
      .transaction(() => {
        try {
          const before = c
            .sql('SELECT role FROM users WHERE issuer = ? AND subject = ?')
            .get(user.issuer, user.subject) as { role: string } | undefined;
          // Found by (issuer, subject), never by name: a name held by another user violates users.name's UNIQUE.
          const row = c
            .sql(
              `INSERT INTO users (name, role, password_hash, issuer, subject, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (issuer, subject) DO UPDATE SET name = excluded.name, role = excluded.role, updated_at = excluded.updated_at
               RETURNING *`,
            )
            .get(
              user.name,
              user.role,
              EXTERNAL_PASSWORD_HASH,
              user.issuer,
              user.subject,
              now,
              now,
            ) as UserRow;
          checkAdminsLeft(c, before?.role === 'admin' && user.role !== 'admin');
          writeAudit(c, audit);
          return userFromRow(row);
        } catch (error) {
          if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
            throw new KairosError('USER_NAME_TAKEN', `a user named ${JSON.stringify(user.name)} exists`);
          }
          throw error;
        }
      })
      .immediate(),
  );
}

export function deleteUser(c: SqliteConnection, name: string, audit?: AuditEntry): boolean {
  return c.run('deleteUser', () =>
    c.db
      .transaction(() => {
        const row = c.sql('DELETE FROM users WHERE name = ? RETURNING role').get(name) as
          | { role: string }
          | undefined;
        if (!row) return false;
        checkAdminsLeft(c, row.role === 'admin');
        writeAudit(c, audit);
        return true;
      })
      .immediate(),
  );
}

export function createSession(c: SqliteConnection, session: NewSession, now: number): void {
  c.run('createSession', () =>
    c.db
      .transaction(() => {
        c.sql('DELETE FROM sessions WHERE expires_at <= ?').run(now);
        c.sql(
          'INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)',
        ).run(session.idHash, session.userId, session.csrfToken, now, session.expiresAt);
      })
      .immediate(),
  );
}

export function getSession(c: SqliteConnection, idHash: string, now: number): SessionRecord | null {
  return c.run('getSession', () => {
    const row = c
      .sql(
        `SELECT s.id_hash, s.user_id, s.csrf_token, s.created_at AS s_created_at, s.expires_at,
           u.id, u.name, u.role, u.password_hash, u.issuer, u.subject, u.created_at, u.updated_at
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ? AND s.expires_at > ?`,
      )
      .get(idHash, now) as (SessionRow & UserRow & { s_created_at: number }) | undefined;
    return row ? sessionFromRow({ ...row, created_at: row.s_created_at }, row) : null;
  });
}

export function deleteSession(c: SqliteConnection, idHash: string): void {
  c.run('deleteSession', () => c.sql('DELETE FROM sessions WHERE id_hash = ?').run(idHash));
}

export function createOidcLogin(c: SqliteConnection, login: NewOidcLogin, now: number): void {
  c.run('createOidcLogin', () =>
    c.db
      .transaction(() => {
        c.sql('DELETE FROM oidc_logins WHERE expires_at <= ?').run(now);
        c.sql(
          'INSERT INTO oidc_logins (id_hash, state, nonce, code_verifier, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
        ).run(login.idHash, login.state, login.nonce, login.codeVerifier, now, login.expiresAt);
      })
      .immediate(),
  );
}

export function takeOidcLogin(c: SqliteConnection, idHash: string, now: number): OidcLoginRecord | null {
  return c.run('takeOidcLogin', () => {
    // Deleted whether or not it expired: a login is checked once at most.
    const row = c.sql('DELETE FROM oidc_logins WHERE id_hash = ? RETURNING *').get(idHash) as
      | OidcLoginRow
      | undefined;
    return row && row.expires_at > now ? oidcLoginFromRow(row) : null;
  });
}

export function createApiToken(
  c: SqliteConnection,
  token: NewApiToken,
  now: number,
  audit?: AuditEntry,
): ApiTokenRecord {
  return c.run('createApiToken', () =>
    c.db
      .transaction(() => {
        const namespace = token.namespace ?? DEFAULT_NAMESPACE;
        if (c.sql('SELECT 1 FROM api_tokens WHERE name = ? AND namespace = ?').get(token.name, namespace))
          throw tokenNameTaken(token.name);
        const row = c
          .sql(
            `INSERT INTO api_tokens (name, token_hash, role, groups, created_by, created_at, namespace)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *`,
          )
          .get(
            token.name,
            token.tokenHash,
            token.role,
            token.groups === null ? null : JSON.stringify(token.groups),
            token.createdBy,
            now,
            token.namespace ?? DEFAULT_NAMESPACE,
          ) as ApiTokenRow;
        writeAudit(c, audit);
        return apiTokenFromRow(row);
      })
      .immediate(),
  );
}

export function findApiToken(c: SqliteConnection, tokenHash: string): ApiTokenRecord | null {
  return c.run('findApiToken', () => {
    const row = c.sql('SELECT * FROM api_tokens WHERE token_hash = ?').get(tokenHash) as
      | ApiTokenRow
      | undefined;
    return row ? apiTokenFromRow(row) : null;
  });
}

export function listApiTokens(c: SqliteConnection, namespace?: string): ApiTokenRecord[] {
  return c.run('listApiTokens', () =>
    (
      c
        .sql('SELECT * FROM api_tokens WHERE (? IS NULL OR namespace = ?) ORDER BY id DESC')
        .all(namespace ?? null, namespace ?? null) as ApiTokenRow[]
    ).map(apiTokenFromRow),
  );
}

export function deleteApiToken(c: SqliteConnection, id: number, audit?: AuditEntry): boolean {
  return c.run('deleteApiToken', () =>
    c.db
      .transaction(() => {
        if (c.sql('DELETE FROM api_tokens WHERE id = ?').run(id).changes === 0) return false;
        writeAudit(c, audit);
        return true;
      })
      .immediate(),
  );
}

export function appendAudit(c: SqliteConnection, entry: AuditEntry): void {
  c.run('appendAudit', () => writeAudit(c, entry));
}

export function listAudit(
  c: SqliteConnection,
  filter: {
    namespaces?: readonly string[] | undefined;
    before?: number | undefined;
    limit: number;
  },
): AuditRecord[] {
  // Written only when given, so that a namespace's page walks audit_log_namespace.
  const inNamespace =
    filter.namespaces === undefined ? '' : ' AND namespace IN (SELECT value FROM json_each(@namespaces))';
  return c.run('listAudit', () =>
    (
      c
        .sql(
          `SELECT * FROM audit_log WHERE (@before IS NULL OR id < @before)${inNamespace} ORDER BY id DESC LIMIT @limit`,
        )
        .all({
          before: filter.before ?? null,
          limit: filter.limit,
          ...(filter.namespaces === undefined ? {} : { namespaces: JSON.stringify(filter.namespaces) }),
        }) as AuditRow[]
    ).map(auditFromRow),
  );
}

export function workerIdentity(c: SqliteConnection, workerId: string): WorkerIdentity | null {
  return c.run('workerIdentity', () => {
    const row = c
      .sql('SELECT namespace, group_name, registered_by FROM workers WHERE id = ?')
      .get(workerId) as { namespace: string; group_name: string; registered_by: string } | undefined;
    return row ? { namespace: row.namespace, group: row.group_name, registeredBy: row.registered_by } : null;
  });
}

/** Writes an audit entry, when there is one, inside the caller's transaction. */
export function writeAudit(c: SqliteConnection, entry: AuditEntry | undefined): void {
  if (!entry) return;
  c.sql(
    'INSERT INTO audit_log (at, actor, action, target, details, namespace) VALUES (?, ?, ?, ?, ?, ?)',
  ).run(
    entry.at,
    entry.actor,
    entry.action,
    entry.target,
    JSON.stringify(entry.details),
    entry.namespace ?? DEFAULT_NAMESPACE,
  );
}

/** Throws LAST_ADMIN (rolling the transaction back) when an admin was removed and none is left. */
function checkAdminsLeft(c: SqliteConnection, removedAnAdmin: boolean): void {
  if (!removedAnAdmin) return;
  const left = c.sql(`SELECT count(*) AS n FROM users WHERE role = 'admin'`).get() as { n: number };
  if (left.n === 0) throw new KairosError('LAST_ADMIN', 'the last admin user cannot be removed or demoted');
}
