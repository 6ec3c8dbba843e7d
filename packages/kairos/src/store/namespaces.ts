import type { JsonObject } from '@kairos/client';
import { KairosError } from '../errors.ts';
import type { AuditEntry, UserRole } from './access.ts';

/**
 * The namespace part of the Store contract (docs/tenancy.md): the namespaces themselves and the
 * roles users hold in them. What belongs to a namespace (jobs, runs, calendars, workers, API tokens,
 * alert rules and channels, audit entries) carries it in a `namespace` column.
 */

/** Where everything without a namespace lives; it always exists and cannot be deleted. */
export const DEFAULT_NAMESPACE = 'default';
/** The namespace of global API tokens and of audit entries outside any namespace (users, namespaces). */
export const GLOBAL_NAMESPACE = '*';
/** Lower-case letters, digits and `-`, starting with a letter or digit, at most 63 characters. */
export const NAMESPACE_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface NewNamespace {
  name: string;
  description: string;
}

export interface NamespaceRecord extends NewNamespace {
  /** Its quotas as the API set them (core/quotas.ts reads them); null: none set. */
  quotas: JsonObject | null;
  createdAt: number;
}

/** A user's role in one namespace, beside the user's global role. */
export interface GrantRecord {
  user: string;
  namespace: string;
  role: UserRole;
  createdAt: number;
}

/** What deleting a namespace did: only an empty namespace is deleted. */
export type NamespaceDeletion = 'deleted' | 'not_found' | 'not_empty';

export interface NamespaceStore {
  /** Inserts a namespace. Throws NAMESPACE_TAKEN when the name exists. */
  create(namespace: NewNamespace, now: number, audit?: AuditEntry): Promise<NamespaceRecord>;
  get(name: string): Promise<NamespaceRecord | null>;
  /** Namespaces ordered by name. */
  list(): Promise<NamespaceRecord[]>;
  /** Replaces a namespace's quotas (null: none). Null when the namespace does not exist. */
  setQuotas(name: string, quotas: JsonObject | null, audit?: AuditEntry): Promise<NamespaceRecord | null>;
  /**
   * Deletes a namespace with its grants, its group limits (and their token buckets) and its stopped
   * or lost workers' rows, only while nothing else belongs to it: no job, calendar, live worker, API
   * token, alert rule or channel (`not_empty`, nothing changed). Audit entries stay.
   */
  delete(name: string, audit?: AuditEntry): Promise<NamespaceDeletion>;
  /** Gives a user a role in a namespace, or changes it. Null when the user does not exist. */
  putGrant(
    user: string,
    namespace: string,
    role: UserRole,
    now: number,
    audit?: AuditEntry,
  ): Promise<GrantRecord | null>;
  /**
   * Takes a user's role in a namespace away; false when there was none. With `keepLast`, refuses
   * (403 FORBIDDEN, nothing changed) when it is the user's last grant: without grants a
   * user's global role applies in `default` (docs/tenancy.md), so taking the last one is for global
   * admins. Checked in the transaction of the delete, the user's row locked against another delete.
   */
  deleteGrant(
    user: string,
    namespace: string,
    audit?: AuditEntry,
    options?: { keepLast?: boolean },
  ): Promise<boolean>;
  /** Grants of a user, or of a namespace, or all; ordered by namespace, then user. */
  listGrants(filter: { user?: string | undefined; namespace?: string | undefined }): Promise<GrantRecord[]>;
}

export interface NamespaceRow {
  name: string;
  description: string;
  quotas: string | null;
  created_at: number | string;
}

export function namespaceFromRow(row: NamespaceRow): NamespaceRecord {
  return {
    name: row.name,
    description: row.description,
    quotas: row.quotas === null ? null : (JSON.parse(row.quotas) as JsonObject),
    createdAt: Number(row.created_at),
  };
}

export interface GrantRow {
  user_name: string;
  namespace: string;
  role: string;
  created_at: number | string;
}

export function grantFromRow(row: GrantRow): GrantRecord {
  return {
    user: row.user_name,
    namespace: row.namespace,
    role: row.role as UserRole,
    createdAt: Number(row.created_at),
  };
}

/**
 * Whether anything but grants, stopped workers and audit entries belongs to the namespace `$1` / `?`
 * (one statement in both dialects; the placeholder is the dialect's).
 */
export function namespaceInUse(placeholder: string): string {
  const p = placeholder;
  return `SELECT EXISTS (SELECT 1 FROM jobs WHERE namespace = ${p})
    OR EXISTS (SELECT 1 FROM calendars WHERE namespace = ${p})
    OR EXISTS (SELECT 1 FROM workers WHERE namespace = ${p} AND status IN ('active', 'draining'))
    OR EXISTS (SELECT 1 FROM api_tokens WHERE namespace = ${p})
    OR EXISTS (SELECT 1 FROM alert_rules WHERE namespace = ${p})
    OR EXISTS (SELECT 1 FROM alert_channels WHERE namespace = ${p}) AS used`;
}

export const GRANT_COLUMNS = 'u.name AS user_name, g.namespace, g.role, g.created_at';

/** A namespace admin asked to take a user's last grant (see {@link NamespaceStore.deleteGrant}). */
export function lastGrantForbidden(user: string): KairosError {
  return new KairosError(
    'FORBIDDEN',
    `${JSON.stringify(user)} has no other grant: without one their global role applies in default, so only a global admin takes the last`,
    { needed: 'global-admin', role: 'admin' },
  );
}

/** A calendar, alert rule or channel name that another namespace holds (names stay global in this release). */
export function nameTakenElsewhere(kind: string, name: string): KairosError {
  return new KairosError(
    'NAME_TAKEN',
    `the ${kind} name ${JSON.stringify(name)} is taken in another namespace`,
    {
      name,
    },
  );
}
