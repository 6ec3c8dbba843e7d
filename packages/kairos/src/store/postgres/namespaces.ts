import type { JsonObject } from '@kairos/client';
import type pg from 'pg';
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
import type { PostgresConnection } from './connection.ts';

/** Namespace rows with `quotas` as text, like every JSON column of the store. */
const NAMESPACE_COLUMNS = 'name, description, quotas::text AS quotas, created_at';

/** The namespaces part of the PostgreSQL store (store/namespaces.ts has the contract). */
export class PostgresNamespaces implements NamespaceStore {
  constructor(
    private readonly c: PostgresConnection,
    /** Writes an audit entry in the caller's transaction. */
    private readonly audit: (client: pg.PoolClient, entry: AuditEntry | undefined) => Promise<void>,
  ) {}

  async create(namespace: NewNamespace, now: number, audit?: AuditEntry): Promise<NamespaceRecord> {
    return this.c.transaction('createNamespace', async (client) => {
      const { rows } = await client.query<NamespaceRow>(
        `INSERT INTO namespaces (name, description, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING RETURNING ${NAMESPACE_COLUMNS}`,
        [namespace.name, namespace.description, now],
      );
      if (!rows[0])
        throw new KairosError(
          'NAMESPACE_TAKEN',
          `a namespace named ${JSON.stringify(namespace.name)} exists`,
        );
      await this.audit(client, audit);
      return namespaceFromRow(rows[0]);
    });
  }

  async get(name: string): Promise<NamespaceRecord | null> {
    const [row] = await this.c.query<NamespaceRow>(
      'getNamespace',
      `SELECT ${NAMESPACE_COLUMNS} FROM namespaces WHERE name = $1`,
      [name],
    );
    return row ? namespaceFromRow(row) : null;
  }

  async list(): Promise<NamespaceRecord[]> {
    return (
      await this.c.query<NamespaceRow>(
        'listNamespaces',
        `SELECT ${NAMESPACE_COLUMNS} FROM namespaces ORDER BY name`,
        [],
      )
    ).map(namespaceFromRow);
  }

  async setQuotas(
    name: string,
    quotas: JsonObject | null,
    audit?: AuditEntry,
  ): Promise<NamespaceRecord | null> {
    return this.c.transaction('setNamespaceQuotas', async (client) => {
      const { rows } = await client.query<NamespaceRow>(
        `UPDATE namespaces SET quotas = $2::jsonb WHERE name = $1 RETURNING ${NAMESPACE_COLUMNS}`,
        [name, quotas === null ? null : JSON.stringify(quotas)],
      );
      if (!rows[0]) return null;
      await this.audit(client, audit);
      return namespaceFromRow(rows[0]);
    });
  }

  async delete(name: string, audit?: AuditEntry): Promise<NamespaceDeletion> {
    return this.c.transaction('deleteNamespace', async (client) => {
      // Locked first: a job or token created in it meanwhile waits (its insert checks nothing here,
      // so the lock is what keeps a namespace from going away under a create).
      const found = await client.query('SELECT 1 FROM namespaces WHERE name = $1 FOR UPDATE', [name]);
      if (found.rows.length === 0) return 'not_found';
      const { rows } = await client.query<{ used: boolean }>(namespaceInUse('$1'), [name]);
      if (rows[0]!.used) return 'not_empty';
      await client.query('DELETE FROM namespace_grants WHERE namespace = $1', [name]);
      await client.query('DELETE FROM workers WHERE namespace = $1', [name]);
      await client.query('DELETE FROM namespace_group_limits WHERE namespace = $1', [name]);
      await client.query(`DELETE FROM rate_buckets WHERE scope LIKE 'group:' || $1 || '/%'`, [name]);
      await client.query('DELETE FROM namespaces WHERE name = $1', [name]);
      await this.audit(client, audit);
      return 'deleted';
    });
  }

  async putGrant(
    user: string,
    namespace: string,
    role: UserRole,
    now: number,
    audit?: AuditEntry,
  ): Promise<GrantRecord | null> {
    return this.c.transaction('putGrant', async (client) => {
      const { rows } = await client.query<GrantRow>(
        `WITH granted AS (
           INSERT INTO namespace_grants (user_id, namespace, role, created_at)
           SELECT id, $2, $3, $4 FROM users WHERE name = $1
           ON CONFLICT (user_id, namespace) DO UPDATE SET role = excluded.role
           RETURNING *)
         SELECT ${GRANT_COLUMNS} FROM granted g JOIN users u ON u.id = g.user_id`,
        [user, namespace, role, now],
      );
      if (!rows[0]) return null;
      await this.audit(client, audit);
      return grantFromRow(rows[0]);
    });
  }

  async deleteGrant(
    user: string,
    namespace: string,
    audit?: AuditEntry,
    options: { keepLast?: boolean } = {},
  ): Promise<boolean> {
    return this.c.transaction('deleteGrant', async (client) => {
      // The user's row locked: two deletes of a user's last two grants cannot both see another left.
      const { rows: users } = await client.query<{ id: number }>(
        'SELECT id FROM users WHERE name = $1 FOR UPDATE',
        [user],
      );
      if (!users[0]) return false;
      const { rowCount } = await client.query(
        'DELETE FROM namespace_grants WHERE namespace = $1 AND user_id = $2',
        [namespace, users[0].id],
      );
      if (!rowCount) return false;
      if (options.keepLast) {
        const { rows } = await client.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM namespace_grants WHERE user_id = $1',
          [users[0].id],
        );
        // Thrown inside the transaction: the delete rolls back.
        if (rows[0]!.n === 0) throw lastGrantForbidden(user);
      }
      await this.audit(client, audit);
      return true;
    });
  }

  async listGrants(filter: {
    user?: string | undefined;
    namespace?: string | undefined;
  }): Promise<GrantRecord[]> {
    return (
      await this.c.query<GrantRow>(
        'listGrants',
        `SELECT ${GRANT_COLUMNS} FROM namespace_grants g JOIN users u ON u.id = g.user_id
         WHERE ($1::text IS NULL OR u.name = $1) AND ($2::text IS NULL OR g.namespace = $2)
         ORDER BY g.namespace, u.name`,
        [filter.user ?? null, filter.namespace ?? null],
      )
    ).map(grantFromRow);
  }
}
