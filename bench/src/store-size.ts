// What the retention benchmarks (retention.ts, soak.ts) set on a node and read of its store and metrics.
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import type pg from 'pg';

export interface StoreSize {
  /** SQLite: the main file and its WAL; PostgreSQL: the database (pg_database_size). */
  bytes: number;
  /** SQLite: pages in use (page_count − freelist); PostgreSQL: the runs table with its indexes and TOAST. */
  detailBytes: number;
}

/** The size of a node's store: `pool` for PostgreSQL, else the SQLite file at `sqlitePath`. */
export async function storeSize(pool: pg.Pool | undefined, sqlitePath: string): Promise<StoreSize> {
  if (pool) {
    const { rows } = await pool.query(
      `SELECT pg_database_size(current_database()) AS db, pg_total_relation_size('runs') AS runs`,
    );
    return { bytes: Number(rows[0].db), detailBytes: Number(rows[0].runs) };
  }
  const size = (path: string) => {
    try {
      return statSync(path).size;
    } catch {
      return 0;
    }
  };
  const lite = new Database(sqlitePath, { readonly: true });
  try {
    const pages = lite.pragma('page_count', { simple: true }) as number;
    const free = lite.pragma('freelist_count', { simple: true }) as number;
    const pageSize = lite.pragma('page_size', { simple: true }) as number;
    return { bytes: size(sqlitePath) + size(`${sqlitePath}-wal`), detailBytes: (pages - free) * pageSize };
  } finally {
    lite.close();
  }
}

/** Rows of a table of a node's store. */
export async function rowCount(
  pool: pg.Pool | undefined,
  sqlitePath: string,
  table: string,
): Promise<number> {
  if (pool) return Number((await pool.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  const lite = new Database(sqlitePath, { readonly: true });
  try {
    return (lite.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    lite.close();
  }
}

/** The sum of the node's `/metrics` series whose line matches `pattern` (its group 1 is the value). */
export async function metricSum(url: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    const match = pattern.exec(line);
    if (match) total += Number(match[1]);
  }
  return total;
}

/** A node's environment for every retention age at `age`, pruning every 10 s (or never). */
export function retentionEnv(age: string, on: boolean): Record<string, string> {
  return {
    KAIROS_RETENTION_FINISHED: age,
    KAIROS_RETENTION_FAILED: age,
    KAIROS_RETENTION_LOGS: age,
    KAIROS_RETENTION_SKIPPED_FIRES: age,
    KAIROS_RETENTION_AUDIT: age,
    KAIROS_RETENTION_WORKERS: age,
    KAIROS_RETENTION_INTERVAL: on ? '10s' : '0',
  };
}

/** Each table of a PostgreSQL store with its indexes and TOAST, in bytes, largest first. */
export async function tableSizes(pool: pg.Pool): Promise<Record<string, number>> {
  const { rows } = await pool.query(
    `SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname = current_schema()
      ORDER BY 2 DESC`,
  );
  return Object.fromEntries(rows.map((row) => [row.name as string, Number(row.bytes)]));
}
