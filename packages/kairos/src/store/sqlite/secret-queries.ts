// Secret params on SQLite: the reads and conditional writes of a key rotation (docs/security.md).
// The table name is one of two constants (SECRET_TABLES), never input.

import type { SecretTable } from '../store.ts';

/** Rows of a table whose params hold an envelope, after an id, in id order. ?1 after, ?2 limit. */
export function secretParamsPage(table: SecretTable): string {
  return `SELECT id, params FROM ${table} WHERE id > ? AND params LIKE '%"$kairos:secret"%' ORDER BY id LIMIT ?`;
}

/**
 * Replace a row's params while they are still the text that was read (a concurrent edit wins).
 * ?1 new params, ?2 id, ?3 the params as read.
 */
export function replaceSecretParams(table: SecretTable): string {
  return `UPDATE ${table} SET params = ? WHERE id = ? AND params = ?`;
}
