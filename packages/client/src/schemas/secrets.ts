import { Type } from '@sinclair/typebox';

/** Counts per table of params: jobs' defaults and runs' own. */
const PerTable = Type.Object({ jobs: Type.Integer(), runs: Type.Integer() });

/** The answer of `POST /v1/secrets/rotate` (`kairos secrets rotate`). */
export const SecretRotationSchema = Type.Object({
  /** The key every secret is encrypted with now (the node's first key). */
  keyId: Type.String(),
  /** Rows whose secrets were encrypted anew with that key. */
  rotated: PerTable,
  /**
   * Rows left as they were: a secret in them names a key this node does not have. Give the node that
   * key again and rotate, or these secrets cannot be read.
   */
  unreadable: PerTable,
});
