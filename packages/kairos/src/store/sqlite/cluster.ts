// Trigger partition leases and cluster membership on SQLite (the Store contract's sections of the
// same names).

import { type LeaseRow, leaseFromRow, type NodeRow, nodeFromRow } from '../rows.ts';
import {
  GONE_NODE_KEPT_LEASES,
  type Lease,
  type NodeHeartbeat,
  type NodeHeartbeatAnswer,
  type NodeRecord,
} from '../store.ts';
import type { SqliteConnection } from './connection.ts';

export function acquireLeases(
  c: SqliteConnection,
  names: readonly string[],
  owner: string,
  ttlMs: number,
  now: number,
): Lease[] {
  return c.run('acquireLeases', () =>
    c.db
      .transaction(() => {
        // A new holder gets a new epoch; the holder that renews keeps its own.
        const take = c.sql(
          `INSERT INTO leases (name, owner, epoch, expires_at) VALUES (@name, @owner, 1, @expires)
             ON CONFLICT (name) DO UPDATE SET
               epoch = CASE WHEN leases.owner = excluded.owner AND leases.expires_at > @now THEN leases.epoch ELSE leases.epoch + 1 END,
               owner = excluded.owner, expires_at = excluded.expires_at
             WHERE leases.owner = excluded.owner OR leases.expires_at <= @now
             RETURNING name, owner, epoch, expires_at`,
        );
        const out: Lease[] = [];
        for (const name of names) {
          const row = take.get({ name, owner, expires: now + ttlMs, now }) as LeaseRow | undefined;
          if (row) out.push(leaseFromRow(row));
        }
        return out;
      })
      .immediate(),
  );
}

export function renewLeases(
  c: SqliteConnection,
  leases: readonly Lease[],
  ttlMs: number,
  now: number,
): Lease[] {
  return c.run('renewLeases', () =>
    c.db
      .transaction(() => {
        const renew = c.sql(
          `UPDATE leases SET expires_at = ? WHERE name = ? AND owner = ? AND epoch = ? AND expires_at > ?
             RETURNING name, owner, epoch, expires_at`,
        );
        const out: Lease[] = [];
        for (const lease of leases) {
          const row = renew.get(now + ttlMs, lease.name, lease.owner, lease.epoch, now) as
            | LeaseRow
            | undefined;
          if (row) out.push(leaseFromRow(row));
        }
        return out;
      })
      .immediate(),
  );
}

export function releaseLeases(c: SqliteConnection, leases: readonly Lease[]): void {
  c.run('releaseLeases', () =>
    c.db
      .transaction(() => {
        // Expire rather than delete: the next holder's epoch still grows past ours.
        const release = c.sql('UPDATE leases SET expires_at = 0 WHERE name = ? AND owner = ? AND epoch = ?');
        for (const lease of leases) release.run(lease.name, lease.owner, lease.epoch);
      })
      .immediate(),
  );
  c.emit({ type: 'leases' });
}

export function databaseTime(_c: SqliteConnection): number {
  return Date.now();
}

export function schemaVersion(c: SqliteConnection): number {
  return c.db.pragma('user_version', { simple: true }) as number;
}

export function heartbeatNode(
  c: SqliteConnection,
  node: NodeHeartbeat,
  ttlMs: number,
  now: number,
): NodeHeartbeatAnswer {
  return c.run('heartbeatNode', () =>
    c.db
      .transaction((): NodeHeartbeatAnswer => {
        c.sql('DELETE FROM nodes WHERE expires_at < ? AND id <> ?').run(
          now - GONE_NODE_KEPT_LEASES * ttlMs,
          node.instance,
        );
        c.sql(
          `INSERT INTO nodes (id, name, address, version, started_at, heartbeat_at, expires_at, partitions, clock_skew_ms)
             VALUES (@instance, @id, @address, @version, @startedAt, @now, @expires, @partitions, @skew)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, address = excluded.address, version = excluded.version,
               heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at, partitions = excluded.partitions,
               clock_skew_ms = excluded.clock_skew_ms`,
        ).run({
          instance: node.instance,
          id: node.id,
          address: node.address,
          version: node.version,
          startedAt: node.startedAt,
          now,
          expires: now + ttlMs,
          partitions: JSON.stringify(node.partitions),
          skew: node.clockSkewMs,
        });
        return c
          .sql(
            `SELECT count(*) AS alive, coalesce(sum(name = @id AND id <> @instance), 0) AS namesakes
             FROM nodes WHERE expires_at > @now`,
          )
          .get({ id: node.id, instance: node.instance, now }) as NodeHeartbeatAnswer;
      })
      .immediate(),
  );
}

export function removeNode(c: SqliteConnection, instance: string): void {
  c.run('removeNode', () => c.sql('DELETE FROM nodes WHERE id = ?').run(instance));
  c.emit({ type: 'leases' });
}

export function listNodes(c: SqliteConnection): NodeRecord[] {
  return c.run('listNodes', () =>
    (c.sql(`SELECT * FROM nodes ORDER BY coalesce(nullif(name, ''), id), id`).all() as NodeRow[]).map(
      nodeFromRow,
    ),
  );
}
