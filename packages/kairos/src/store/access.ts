import type { JsonObject, RunStatus } from '@kairos/client';

/** Types of the access part of the Store contract: users, sessions, API tokens, audit, console counts. */

/** `admin`: everything; `operator`: jobs and runs, no users; `viewer`: read only. */
export type UserRole = 'admin' | 'operator' | 'viewer';
/** What an API token may be: a user role, or `worker` (the worker protocol only). */
export type TokenRole = UserRole | 'worker';

export interface NewUser {
  name: string;
  role: UserRole;
  passwordHash: string;
}

export interface UserRecord extends NewUser {
  id: number;
  createdAt: number;
  updatedAt: number;
}

export interface UserPatch {
  role?: UserRole | undefined;
  passwordHash?: string | undefined;
}

export interface NewSession {
  /** SHA-256 (hex) of the cookie value. */
  idHash: string;
  userId: number;
  /** Sent back in the `x-csrf-token` header of every request that changes something. */
  csrfToken: string;
  expiresAt: number;
}

export interface SessionRecord extends NewSession {
  createdAt: number;
  user: UserRecord;
}

export interface NewApiToken {
  name: string;
  /** SHA-256 (hex) of the token. */
  tokenHash: string;
  role: TokenRole;
  /** Worker tokens: the groups they may serve; null for every group. */
  groups: string[] | null;
  createdBy: string;
  /**
   * The namespace it acts in (docs/tenancy.md); `*` (GLOBAL_NAMESPACE): every namespace, for admin
   * tokens only. Absent: `default`.
   */
  namespace?: string;
}

export interface ApiTokenRecord extends NewApiToken {
  id: number;
  namespace: string;
  createdAt: number;
}

/** One change: who (`user:ana`, `token:ci`, `admin-token`), what (`job.create`), on what (`job:tick`). */
export interface AuditEntry {
  /** The namespace of what changed; `*` for users and namespaces themselves. Absent: `default`. */
  namespace?: string;
  at: number;
  actor: string;
  action: string;
  target: string;
  details: JsonObject;
}

export interface AuditRecord extends AuditEntry {
  id: number;
  namespace: string;
}

export interface OverviewCounts {
  running: number;
  queued: number;
  /** Runs ended since the given instant, by final status. */
  ended: Record<'succeeded' | 'failed' | 'timed_out' | 'cancelled', number>;
  workersOnline: number;
  nodesOnline: number;
}

/** Fire lateness of scheduled runs over a sample: nearest-rank percentiles, in ms. */
export interface FireLateness {
  /** Runs in the sample. */
  count: number;
  p50: number | null;
  p99: number | null;
  /** The window held more runs than the sample: the percentiles are of the newest `count`. */
  sampled: boolean;
}

/**
 * Nearest-rank percentiles of a lateness sample (ms, any order), shared by every dialect so they
 * answer the same. `limit` is the sample bound the store read with: reaching it means `sampled`.
 */
export function latenessFromSample(sample: readonly number[], limit: number): FireLateness {
  const sorted = sample.map(Number).sort((a, b) => a - b);
  const rank = (p: number) => (sorted.length === 0 ? null : sorted[Math.ceil(p * sorted.length) - 1]!);
  return { count: sorted.length, p50: rank(0.5), p99: rank(0.99), sampled: sorted.length >= limit };
}

export interface MinuteCount {
  minute: number;
  status: RunStatus;
  count: number;
}

export interface UserRow {
  id: number;
  name: string;
  role: string;
  password_hash: string;
  created_at: number;
  updated_at: number;
}

export function userFromRow(row: UserRow): UserRecord {
  return {
    id: row.id,
    name: row.name,
    role: row.role as UserRole,
    passwordHash: row.password_hash,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export interface ApiTokenRow {
  id: number;
  namespace: string;
  name: string;
  token_hash: string;
  role: string;
  groups: string | null;
  created_by: string;
  created_at: number;
}

export function apiTokenFromRow(row: ApiTokenRow): ApiTokenRecord {
  return {
    id: row.id,
    namespace: row.namespace,
    name: row.name,
    tokenHash: row.token_hash,
    role: row.role as TokenRole,
    groups: row.groups === null ? null : (JSON.parse(row.groups) as string[]),
    createdBy: row.created_by,
    createdAt: row.created_at,
  };
}

export interface AuditRow {
  id: number;
  namespace: string;
  at: number;
  actor: string;
  action: string;
  target: string;
  details: string;
}

export function auditFromRow(row: AuditRow): AuditRecord {
  return {
    id: row.id,
    namespace: row.namespace,
    at: row.at,
    actor: row.actor,
    action: row.action,
    target: row.target,
    details: JSON.parse(row.details) as JsonObject,
  };
}

export interface SessionRow {
  id_hash: string;
  user_id: number;
  csrf_token: string;
  created_at: number;
  expires_at: number;
}

export function sessionFromRow(row: SessionRow, user: UserRow): SessionRecord {
  return {
    idHash: row.id_hash,
    userId: row.user_id,
    csrfToken: row.csrf_token,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    user: userFromRow(user),
  };
}

/** The counts query answers status/count pairs; this folds them into {@link OverviewCounts}. */
export function overviewFromRows(rows: Array<{ kind: string; n: number }>): OverviewCounts {
  const get = (kind: string) => Number(rows.find((r) => r.kind === kind)?.n ?? 0);
  return {
    running: get('running'),
    queued: get('queued'),
    ended: {
      succeeded: get('ended:succeeded'),
      failed: get('ended:failed'),
      timed_out: get('ended:timed_out'),
      cancelled: get('ended:cancelled'),
    },
    workersOnline: get('workers'),
    nodesOnline: get('nodes'),
  };
}
