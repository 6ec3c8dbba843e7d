import { KairosError } from '../errors.ts';
import { SECRET_TABLES, type SecretTable, type Store } from '../store/store.ts';
import type { SecretKeyring } from './secret-keyring.ts';

/** What a rotation did, per table of params. */
export interface RotationReport {
  /** The key every secret is encrypted with now. */
  keyId: string;
  /** Rows whose secrets were encrypted anew with that key. */
  rotated: Record<SecretTable, number>;
  /** Rows left as they were because a secret in them names a key this node does not have. */
  unreadable: Record<SecretTable, number>;
}

export const ROTATION_BATCH = 100;
/** Passes over a table while concurrent edits keep winning against the rotation's writes. */
const ROTATION_PASSES = 5;

/**
 * Re-encrypts every stored secret (jobs' and runs' params) with the keyring's first key, in batches of
 * `batch` rows read in id order. Each row is written with a conditional statement that applies only
 * while its params are still as read (Store.replaceSecretParams), so a concurrent edit is never lost:
 * the row is left to the edit, and read again on another pass when the edit kept an old envelope.
 * Idempotent (a row already under the first key is not written) and safe on several nodes at once.
 */
export async function rotateSecrets(
  store: Store,
  keyring: SecretKeyring,
  batch = ROTATION_BATCH,
): Promise<RotationReport> {
  const keyId = keyring.currentKeyId;
  if (keyId === null) {
    throw new KairosError(
      'SECRET_KEY_MISSING',
      'this node has no secret key to rotate to: set KAIROS_SECRET_KEYS or KAIROS_SECRET_KEY_FILE',
    );
  }
  const report: RotationReport = { keyId, rotated: { jobs: 0, runs: 0 }, unreadable: { jobs: 0, runs: 0 } };
  for (const table of SECRET_TABLES) {
    for (let pass = 0; pass < ROTATION_PASSES; pass++) {
      const { rotated, unreadable, lost } = await rotateTable(store, keyring, table, batch);
      report.rotated[table] += rotated;
      report.unreadable[table] = unreadable;
      if (lost === 0) break;
    }
  }
  return report;
}

/** One pass over a table: rows rotated, rows it cannot read, rows whose write lost to an edit. */
async function rotateTable(
  store: Store,
  keyring: SecretKeyring,
  table: SecretTable,
  batch: number,
): Promise<{ rotated: number; unreadable: number; lost: number }> {
  const counts = { rotated: 0, unreadable: 0, lost: 0 };
  let after = 0;
  for (;;) {
    const rows = await store.secretParamsPage(table, after, batch);
    for (const row of rows) {
      if (!keyring.needsRotation(row.params)) continue;
      let params: typeof row.params;
      try {
        params = keyring.rotate(row.params);
      } catch (error) {
        if (error instanceof KairosError && error.code === 'SECRET_KEY_UNKNOWN') {
          counts.unreadable++;
          continue;
        }
        throw error;
      }
      if (await store.replaceSecretParams(table, row.id, row.stored, params)) counts.rotated++;
      else counts.lost++;
    }
    if (rows.length < batch) return counts;
    after = rows[rows.length - 1]!.id;
  }
}
