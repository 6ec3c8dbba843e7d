import type { JsonObject } from '@kairos/client';
import { KairosError } from '../../errors.ts';
import type { AuditEntry, UserRole } from '../access.ts';
import {
  GRANT_COLUMNS,
  type GrantRecord,
  type GrantRow,
  grantFromRow,
  lastGrantForbidden,
  type NamespaceDeletion,
  type NamespaceRecord,
  type NamespaceRow,
  type NamespaceStore,
  type NewNamespace,
  namespaceFromRow,
  namespaceInUse,
} from '../namespaces.ts';
import type { SqliteConnection } from './connection.ts';

/** The namespaces part of the SQLite store (store/namespaces.ts has the contract). */
export class SqliteNamespaces implements NamespaceStore {
  constructor(
    private readonly c: SqliteConnection,
    /** Writes an audit entry in the caller's transaction. */
    private readonly audit: (entry: AuditEntry | undefined) => void,
  ) {}

  async create(namespace: NewNamespace, now: number, audit?: AuditEntry): Promise<NamespaceRecord> {
    return this.c.run('createNamespace', () =>
      this.c.db
        .transaction(() => {
          const row = this.c
            .sql(
              `INSERT INTO namespaces (name, description, created_at) VALUES (?, ?, ?)
               ON CONFLICT (name) DO NOTHING RETURNING *`,
            )
            .get(namespace.name, namespace.description, now) as NamespaceRow | undefined;
          if (!row)
            throw new KairosError(
              'NAMESPACE_TAKEN',
              `a namespace named ${JSON.stringify(namespace.name)} exists`,
            );
          this.audit(audit);
          return namespaceFromRow(row);
        })
        .immediate(),
    );
  }

  async get(name: string): Promise<NamespaceRecord | null> {
    return this.c.run('getNamespace', () => {
      const row = this.c.sql('SELECT * FROM namespaces WHERE name = ?').get(name) as NamespaceRow | undefined;
      return row ? namespaceFromRow(row) : null;
    });
  }

  async list(): Promise<NamespaceRecord[]> {
    return this.c.run('listNamespaces', () =>
      (this.c.sql('SELECT * FROM namespaces ORDER BY name').all() as NamespaceRow[]).map(namespaceFromRow),
    );
  }

  async setQuotas(
    name: string,
    quotas: JsonObject | null,
    audit?: AuditEntry,
  ): Promise<NamespaceRecord | null> {
    return this.c.run('setNamespaceQuotas', () =>
      this.c.db
        .transaction(() => {
          const row = this.c
            .sql('UPDATE namespaces SET quotas = ? WHERE name = ? RETURNING *')
            .get(quotas === null ? null : JSON.stringify(quotas), name) as NamespaceRow | undefined;
          if (!row) return null;
          this.audit(audit);
          return namespaceFromRow(row);
        })
        .immediate(),
    );
  }

  async delete(name: string, audit?: AuditEntry): Promise<NamespaceDeletion> {
    return this.c.run('deleteNamespace', () =>
      this.c.db
        .transaction((): NamespaceDeletion => {
          if (!this.c.sql('SELECT 1 FROM namespaces WHERE name = ?').get(name)) return 'not_found';
          const { used } = this.c.sql(namespaceInUse('@name')).get({ name }) as { used: number };
          if (used) return 'not_empty';
          this.c.sql('DELETE FROM namespace_grants WHERE namespace = ?').run(name);
          this.c.sql('DELETE FROM workers WHERE namespace = ?').run(name);
          this.c.sql('DELETE FROM namespace_group_limits WHERE namespace = ?').run(name);
          this.c.sql(`DELETE FROM rate_buckets WHERE scope LIKE 'group:' || ? || '/%'`).run(name);
          this.c.sql('DELETE FROM namespaces WHERE name = ?').run(name);
          this.audit(audit);
          return 'deleted';
        })
        .immediate(),
    );
  }

  async putGrant(
    user: string,
    namespace: string,
    role: UserRole,
    now: number,
    audit?: AuditEntry,
  ): Promise<GrantRecord | null> {
    return this.c.run('putGrant', () =>
      this.c.db
        .transaction(() => {
          const found = this.c.sql('SELECT id FROM users WHERE name = ?').get(user) as
            | { id: number }
            | undefined;
          if (!found) return null;
          this.c
            .sql(
              `INSERT INTO namespace_grants (user_id, namespace, role, created_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (user_id, namespace) DO UPDATE SET role = excluded.role`,
            )
            .run(found.id, namespace, role, now);
          this.audit(audit);
          const row = this.c
            .sql(
              `SELECT ${GRANT_COLUMNS} FROM namespace_grants g JOIN users u ON u.id = g.user_id
               WHERE g.user_id = ? AND g.namespace = ?`,
            )
            .get(found.id, namespace) as GrantRow;
          return grantFromRow(row);
        })
        .immediate(),
    );
  }

  async deleteGrant(
    user: string,
    namespace: string,
    audit?: AuditEntry,
    options: { keepLast?: boolean } = {},
  ): Promise<boolean> {
    return this.c.run('deleteGrant', () =>
      this.c.db
        .transaction(() => {
          const deleted = this.c
            .sql(
              `DELETE FROM namespace_grants
               WHERE namespace = ? AND user_id = (SELECT id FROM users WHERE name = ?)`,
            )
            .run(namespace, user).changes;
          if (deleted === 0) return false;
          if (options.keepLast) {
            const left = this.c
              .sql(
                `SELECT count(*) AS n FROM namespace_grants WHERE user_id = (SELECT id FROM users WHERE name = ?)`,
              )
              .get(user) as { n: number };
            // Thrown inside the transaction: the delete rolls back.
            if (left.n === 0) throw lastGrantForbidden(user);
          }
          this.audit(audit);
          return true;
        })
        .immediate(),
    );
  }

  async listGrants(filter: {
    user?: string | undefined;
    namespace?: string | undefined;
  }): Promise<GrantRecord[]> {
    return this.c.run('listGrants', () =>
      (
        this.c
          .sql(
            `SELECT ${GRANT_COLUMNS} FROM namespace_grants g JOIN users u ON u.id = g.user_id
             WHERE (@user IS NULL OR u.name = @user) AND (@namespace IS NULL OR g.namespace = @namespace)
             ORDER BY g.namespace, u.name`,
          )
          .all({ user: filter.user ?? null, namespace: filter.namespace ?? null }) as GrantRow[]
      ).map(grantFromRow),
    );
  }
}
