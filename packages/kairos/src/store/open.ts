import { KairosError } from '../errors.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import type { Store } from './store.ts';

/** Opens the store a database setting names: `sqlite:<path>` (embedded) or `postgres://…` (cluster). */
export async function openStore(database: string): Promise<Store> {
  if (database.startsWith('sqlite:')) return new SqliteStore(database.slice('sqlite:'.length));
  throw new KairosError(
    'VALIDATION_FAILED',
    `unsupported database ${database.split(':')[0]}: the PostgreSQL store is not built yet`,
  );
}
