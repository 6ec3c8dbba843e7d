import { Type } from '@sinclair/typebox';
import { literals, nullable } from './common.ts';

/** Schemas of `GET /v1/doctor`: a node's checks of itself, its store and the fleet (`kairos doctor`). */

/** `ok`; `warn`: works, but look; `fail`: something does not work (runs will not run, the store is out of reach). */
export const DoctorStatusSchema = literals(['ok', 'warn', 'fail'] as const);

export const DoctorCheckSchema = Type.Object({
  /** `config`, `store`, `schema`, `clock`, `job-groups`, `job-handlers`, `worker-groups`. */
  name: Type.String(),
  status: DoctorStatusSchema,
  message: Type.String(),
  /** What the check found wrong (jobs, groups, nodes), at most 50. */
  items: Type.Optional(Type.Array(Type.String())),
});

export const DoctorReportSchema = Type.Object({
  /** The worst status of the checks. */
  status: DoctorStatusSchema,
  version: Type.String(),
  nodeId: Type.String(),
  store: literals(['sqlite', 'postgres'] as const),
  /** The node's own wall clock when it answered. */
  nodeTime: Type.String(),
  /** The store's clock; null when the store did not answer. */
  databaseTime: nullable(Type.String()),
  /** The highest migration this node's code ships, and the highest the store has (null: not read). */
  schema: Type.Object({ code: Type.Integer(), store: nullable(Type.Integer()) }),
  checks: Type.Array(DoctorCheckSchema),
});
