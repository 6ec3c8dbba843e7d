import type { JsonObject, RunStatus } from '@kairos/client';
import type { Resources } from '../core/resources.ts';
import { KairosError } from '../errors.ts';

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
  /**
   * External users (single sign-on): the OpenID provider's issuer and the user's subject there,
   * which a login finds the user by; null for local users, who log in with a password.
   */
  issuer: string | null;
  subject: string | null;
  createdAt: number;
  updatedAt: number;
}

/** A user as an OpenID provider vouched for them at a login, with the role mapped from their claims. */
export interface ExternalUser {
  issuer: string;
  subject: string;
  name: string;
  role: UserRole;
}

/** What an external user's `passwordHash` holds: no password verifies against it (not a scrypt hash). */
export const EXTERNAL_PASSWORD_HASH = 'external';

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

/** A login under way at the OpenID provider: what its callback is checked against. */
export interface NewOidcLogin {
  /** SHA-256 (hex) of the login cookie's value. */
  idHash: string;
  state: string;
  nonce: string;
  /** PKCE code verifier; the provider was sent its S256 hash. */
  codeVerifier: string;
  expiresAt: number;
}

export interface OidcLoginRecord extends NewOidcLogin {
  createdAt: number;
}

export interface OidcLoginRow {
  id_hash: string;
  state: string;
  nonce: string;
  code_verifier: string;
  created_at: number;
  expires_at: number;
}

export function oidcLoginFromRow(row: OidcLoginRow): OidcLoginRecord {
  return {
    idHash: row.id_hash,
    state: row.state,
    nonce: row.nonce,
    codeVerifier: row.code_verifier,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
  };
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

/** Queued runs of one group, job and handler (Store.queuedRunCounts). */
export interface QueuedRunCount {
  /** The job's namespace: only workers of that namespace serve its group. */
  namespace: string;
  group: string;
  jobName: string;
  handler: string;
  queued: number;
  /** The earliest `availableAt` (epoch ms) of these runs that has come; null when all wait for later. */
  oldestAvailableAt: number | null;
  /** A live worker of the namespace and group exists (status `active`, lease not expired). */
  groupServed: boolean;
  /** A live worker of the namespace and group declares the handler. */
  handlerServed: boolean;
  /** What the job requests for each run (core/resources.ts); null: nothing. */
  resources?: Resources | null;
  /**
   * Those of the runs that request resources of their own (a workflow step's `resources`), counted
   * by request; the others request the job's. Absent or empty: none.
   */
  ownRequests?: Array<{ resources: Resources; queued: number }>;
}

/**
 * The queued runs of a count by what each requests: those with a request of their own, then the
 * rest with the job's (left out when none is left).
 */
export function queuedByRequest(
  count: QueuedRunCount,
): Array<{ resources: Resources | null; queued: number }> {
  const own = count.ownRequests ?? [];
  const rest = count.queued - own.reduce((sum, o) => sum + o.queued, 0);
  return [...own, ...(rest > 0 ? [{ resources: count.resources ?? null, queued: rest }] : [])];
}

export interface QueuedRunCountRow {
  namespace: string;
  group_name: string;
  job_name: string;
  handler: string;
  queued: number | string;
  oldest: number | string | null;
  group_served: number | boolean;
  handler_served: number | boolean;
  resources?: string | null;
  /** JSON array of `{resources, queued}`, or null. */
  own_requests?: string | Array<{ resources: Resources; queued: number | string }> | null;
}

export function queuedRunCountFromRow(row: QueuedRunCountRow): QueuedRunCount {
  const own = ownRequestsOf(row.own_requests);
  return {
    namespace: row.namespace,
    group: row.group_name,
    jobName: row.job_name,
    handler: row.handler,
    queued: Number(row.queued),
    oldestAvailableAt: row.oldest === null ? null : Number(row.oldest),
    groupServed: Boolean(row.group_served),
    handlerServed: Boolean(row.handler_served),
    resources: row.resources ? (JSON.parse(row.resources) as Resources | null) : null,
    ...(own.length > 0 ? { ownRequests: own } : {}),
  };
}

function ownRequestsOf(
  column: QueuedRunCountRow['own_requests'],
): Array<{ resources: Resources; queued: number }> {
  if (column === null || column === undefined) return [];
  const list = (typeof column === 'string' ? JSON.parse(column) : column) as Array<{
    resources: Resources | string;
    queued: number | string;
  }>;
  return list.map((o) => ({
    resources: (typeof o.resources === 'string' ? JSON.parse(o.resources) : o.resources) as Resources,
    queued: Number(o.queued),
  }));
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
  issuer: string | null;
  subject: string | null;
  created_at: number;
  updated_at: number;
}

export function userFromRow(row: UserRow): UserRecord {
  return {
    id: row.id,
    name: row.name,
    role: row.role as UserRole,
    passwordHash: row.password_hash,
    issuer: row.issuer,
    subject: row.subject,
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

/**
 * An API token's name is taken in its namespace (global tokens: among global tokens). Workers are
 * bound to the token that registered them by its name (`token:<name>`): two live tokens of one
 * name in a namespace could drive each other's workers.
 */
export function tokenNameTaken(name: string): KairosError {
  return new KairosError(
    'TOKEN_NAME_TAKEN',
    `an API token named ${JSON.stringify(name)} exists in this namespace`,
    {
      name,
    },
  );
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
