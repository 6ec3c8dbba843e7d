// Secret params on PostgreSQL: the reads and conditional writes of a key rotation (docs/security.md).
// The table name is one of two constants (SECRET_TABLES), never input. `params::text` is jsonb's
// canonical text, the same for the same value, so it serves as the row's params as read.

import type { SecretTable } from '../store.ts';

/** Rows of a table whose params hold an envelope, after an id, in id order. $1 after, $2 limit. */
export function secretParamsPage(table: SecretTable): string {
  return `SELECT id, params::text AS params FROM ${table}
    WHERE id > $1 AND params::text LIKE '%"$kairos:secret"%' ORDER BY id LIMIT $2`;
}

/** Replace a row's params while they are still as read (a concurrent edit wins). $1 id, $2 as read, $3 new. */
export function replaceSecretParams(table: SecretTable): string {
  return `UPDATE ${table} SET params = $3::jsonb WHERE id = $1 AND params::text = $2 RETURNING id`;
}
