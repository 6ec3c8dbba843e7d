import { KairosError } from '../errors.ts';
import { PostgresStore } from './postgres/postgres-store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import type { Store } from './store.ts';

/**
 * Opens the store a database setting names: `sqlite:<path>` (embedded) or `postgres://…` (cluster).
 * A `schema` query parameter on a PostgreSQL URL keeps Kairos in a schema of its own. A PostgreSQL
 * session idle inside a transaction for longer than the partition lease is ended by the server.
 */
export function openStore(
  database: string,
  options: { partitionLeaseMs?: number; resourceReserveAfterMs?: number } = {},
): Store {
  const store = open(database, options);
  if (options.resourceReserveAfterMs !== undefined) store.reserveAfterMs = options.resourceReserveAfterMs;
  return store;
}

function open(database: string, options: { partitionLeaseMs?: number }): Store {
  if (database.startsWith('sqlite:')) return new SqliteStore(database.slice('sqlite:'.length));
  if (/^postgres(ql)?:\/\//.test(database)) {
    const url = new URL(database);
    const schema = url.searchParams.get('schema') ?? undefined;
    url.searchParams.delete('schema');
    return new PostgresStore({
      connectionString: url.toString(),
      schema,
      idleInTransactionTimeoutMs: options.partitionLeaseMs,
    });
  }
  throw new KairosError(
    'VALIDATION_FAILED',
    `unsupported database ${JSON.stringify(database.split(':')[0])}: use sqlite:<path> or postgres://…`,
  );
}
