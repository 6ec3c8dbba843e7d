// The cluster on PostgreSQL (the Store contract's "Trigger partition leases" and "Cluster
// membership" sections): partition leases with their epochs, node heartbeats, the database's clock.

import { type LeaseRow, leaseFromRow, type NodeRow, nodeFromRow } from '../rows.ts';
import {
  GONE_NODE_KEPT_LEASES,
  type Lease,
  type NodeHeartbeat,
  type NodeHeartbeatAnswer,
  type NodeRecord,
} from '../store.ts';
import type { PostgresConnection } from './connection.ts';

/**
 * Lock the fire's partition leases until COMMIT, checking that they are still ours.
 * FOR SHARE makes a concurrent take-over (an UPDATE of the lease) wait for this transaction, so
 * no fire can commit under a lease that another node already holds. $1 [{name, owner, epoch}], $2 now.
 */
export const LOCK_LEASES = `
  SELECT l.name FROM leases l
  JOIN jsonb_to_recordset($1::jsonb) AS x(name text, owner text, epoch bigint) ON l.name = x.name
  WHERE l.owner = x.owner AND l.epoch = x.epoch AND l.expires_at > $2
  FOR SHARE OF l`;

/**
 * Take each free, expired or already-owned lease; a new holder gets the next epoch. A lease that a
 * fire still holds FOR SHARE (its node paused mid-transaction, say) is skipped, not waited for:
 * waiting would stop this node's own firing behind a node that may never come back; the lease is
 * taken at a later renewal, once PostgreSQL ends that transaction. $1 names, $2 owner, $3 expiry, $4 now.
 */
export const ACQUIRE_LEASES = `
  WITH takeable AS (
    SELECT name FROM leases
    WHERE name = ANY($1::text[]) AND (owner = $2::text OR expires_at <= $4::bigint)
    ORDER BY name FOR UPDATE SKIP LOCKED),
  taken AS (
    UPDATE leases l SET
      epoch = CASE WHEN l.owner = $2::text AND l.expires_at > $4::bigint THEN l.epoch ELSE l.epoch + 1 END,
      owner = $2::text, expires_at = $3::bigint
    FROM takeable t WHERE l.name = t.name
    RETURNING l.name, l.owner, l.epoch, l.expires_at),
  created AS (
    INSERT INTO leases (name, owner, epoch, expires_at)
    SELECT n, $2::text, 1, $3::bigint FROM unnest($1::text[]) AS n
    WHERE NOT EXISTS (SELECT 1 FROM leases WHERE name = n)
    ON CONFLICT (name) DO NOTHING
    RETURNING name, owner, epoch, expires_at)
  SELECT * FROM taken UNION ALL SELECT * FROM created`;

/** Extend leases still held. $1 new expiry, $2 [{name, owner, epoch}], $3 now. */
export const RENEW_LEASES = `
  UPDATE leases l SET expires_at = $1
  FROM jsonb_to_recordset($2::jsonb) AS x(name text, owner text, epoch bigint)
  WHERE l.name = x.name AND l.owner = x.owner AND l.epoch = x.epoch AND l.expires_at > $3
  RETURNING l.name, l.owner, l.epoch, l.expires_at`;

/** Expire leases at once (not delete: the next holder's epoch still grows). $1 [{name, owner, epoch}]. */
export const RELEASE_LEASES = `
  UPDATE leases l SET expires_at = 0
  FROM jsonb_to_recordset($1::jsonb) AS x(name text, owner text, epoch bigint)
  WHERE l.name = x.name AND l.owner = x.owner AND l.epoch = x.epoch`;

/**
 * A node's heartbeat: upsert its row, delete the rows of others expired before $10, count the live
 * nodes (this one included) and the other live instances with the same id. $1 instance, $2 address,
 * $3 version, $4 started, $5 now, $6 expiry, $7 partitions, $8 skew, $9 id, $10 forget before.
 */
export const HEARTBEAT_NODE = `
  WITH pruned AS (DELETE FROM nodes WHERE expires_at < $10::bigint AND id <> $1),
  upserted AS (
    INSERT INTO nodes (id, name, address, version, started_at, heartbeat_at, expires_at, partitions, clock_skew_ms)
    VALUES ($1, $9, $2, $3, $4, $5, $6, $7::jsonb, $8)
    ON CONFLICT (id) DO UPDATE SET name = excluded.name, address = excluded.address, version = excluded.version,
      heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at, partitions = excluded.partitions,
      clock_skew_ms = excluded.clock_skew_ms
    RETURNING id)
  SELECT (SELECT count(*) FROM nodes WHERE expires_at > $5::bigint AND id <> $1)::int + 1 AS alive,
    (SELECT count(*) FROM nodes WHERE expires_at > $5::bigint AND id <> $1 AND name = $9)::int AS namesakes`;

export async function acquireLeases(
  c: PostgresConnection,
  names: readonly string[],
  owner: string,
  ttlMs: number,
  now: number,
): Promise<Lease[]> {
  // Sorted, so that two nodes taking overlapping sets lock rows in the same order.
  const rows = await c.query<LeaseRow>('acquireLeases', ACQUIRE_LEASES, [
    [...names].sort(),
    owner,
    now + ttlMs,
    now,
  ]);
  return rows.map(leaseFromRow);
}

export async function renewLeases(
  c: PostgresConnection,
  leases: readonly Lease[],
  ttlMs: number,
  now: number,
): Promise<Lease[]> {
  if (leases.length === 0) return [];
  const rows = await c.query<LeaseRow>('renewLeases', RENEW_LEASES, [
    now + ttlMs,
    JSON.stringify(leases.map(leaseKey)),
    now,
  ]);
  return rows.map(leaseFromRow);
}

export async function releaseLeases(c: PostgresConnection, leases: readonly Lease[]): Promise<void> {
  if (leases.length === 0) return;
  await c.query('releaseLeases', RELEASE_LEASES, [JSON.stringify(leases.map(leaseKey))]);
  await c.notify([{ type: 'leases' }]);
}

export async function databaseTime(c: PostgresConnection): Promise<number> {
  const [row] = await c.query<{ now: number }>(
    'databaseTime',
    'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now',
    [],
  );
  return row!.now;
}

export async function schemaVersion(c: PostgresConnection): Promise<number> {
  const [row] = await c.query<{ version: number }>(
    'schemaVersion',
    'SELECT coalesce(max(version), 0)::integer AS version FROM kairos_migrations',
    [],
  );
  return row!.version;
}

export async function heartbeatNode(
  c: PostgresConnection,
  node: NodeHeartbeat,
  ttlMs: number,
  now: number,
): Promise<NodeHeartbeatAnswer> {
  const [row] = await c.query<NodeHeartbeatAnswer>('heartbeatNode', HEARTBEAT_NODE, [
    node.instance,
    node.address,
    node.version,
    node.startedAt,
    now,
    now + ttlMs,
    JSON.stringify(node.partitions),
    node.clockSkewMs,
    node.id,
    now - GONE_NODE_KEPT_LEASES * ttlMs,
  ]);
  c.peers = row!.alive > 1;
  if (c.peers && !c.announced) {
    // Tell nodes that found themselves alone to NOTIFY again.
    c.announced = true;
    await c.notify([{ type: 'leases' }]);
  }
  return { alive: row!.alive, namesakes: row!.namesakes };
}

export async function removeNode(c: PostgresConnection, instance: string): Promise<void> {
  await c.query('removeNode', 'DELETE FROM nodes WHERE id = $1', [instance]);
  await c.notify([{ type: 'leases' }]);
}

export async function listNodes(c: PostgresConnection): Promise<NodeRecord[]> {
  return (
    await c.query<NodeRow>('listNodes', `SELECT * FROM nodes ORDER BY coalesce(nullif(name, ''), id), id`, [])
  ).map(nodeFromRow);
}

export function leaseKey(lease: Lease): { name: string; owner: string; epoch: number } {
  return { name: lease.name, owner: lease.owner, epoch: lease.epoch };
}
