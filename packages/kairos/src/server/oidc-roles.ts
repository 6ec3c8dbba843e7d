import { KairosError } from '../errors.ts';
import type { UserRole } from '../store/access.ts';

/**
 * How the claims an OpenID provider tells about a user become a Kairos role. One rule per claim
 * value: `kairos-admins=admin` gives the role `admin` to a user whose role claim (such as `groups`)
 * holds `kairos-admins`; the value `*` matches every user the provider signs in. A user gets the
 * highest role of the rules that match, or none (the login is refused).
 *
 * Pure: no I/O, no clock. Namespaces will later map the same claims to (namespace, role) grants.
 */
export interface RoleRule {
  /** A value of the role claim, or `*` for every user. */
  value: string;
  role: UserRole;
}

const ROLES: readonly UserRole[] = ['viewer', 'operator', 'admin'];

/**
 * Reads the rules from their config form: `kairos-admins=admin,kairos-ops=operator,*=viewer`, or
 * an object `{ "kairos-admins": "admin" }` (a config file). Throws VALIDATION_FAILED naming the
 * rule at fault.
 */
export function parseRoleRules(input: string | Record<string, string>, field = 'oidcRoles'): RoleRule[] {
  const pairs: Array<[string, string]> =
    typeof input === 'string'
      ? input
          .split(',')
          .map((part) => part.trim())
          .filter((part) => part !== '')
          .map((part) => {
            const eq = part.lastIndexOf('=');
            if (eq <= 0) {
              throw new KairosError(
                'VALIDATION_FAILED',
                `${field}: expected value=role, got ${JSON.stringify(part)}`,
              );
            }
            return [part.slice(0, eq).trim(), part.slice(eq + 1).trim()];
          })
      : Object.entries(input);
  if (pairs.length === 0) {
    throw new KairosError('VALIDATION_FAILED', `${field}: expected at least one value=role rule`);
  }
  const seen = new Set<string>();
  return pairs.map(([value, role]) => {
    if (!ROLES.includes(role as UserRole)) {
      throw new KairosError(
        'VALIDATION_FAILED',
        `${field}: the role of ${JSON.stringify(value)} must be admin, operator or viewer, got ${JSON.stringify(role)}`,
      );
    }
    if (value === '' || seen.has(value)) {
      throw new KairosError(
        'VALIDATION_FAILED',
        `${field}: ${JSON.stringify(value)} is empty or given twice`,
      );
    }
    seen.add(value);
    return { value, role: role as UserRole };
  });
}

/**
 * The role a user gets from their claims, or null when no rule matches. `claim` names the role
 * claim; a dotted name (`realm_access.roles`) is a path into nested objects when no claim has that
 * exact name. The claim may be a string or an array of strings; other values match only `*`.
 */
export function roleFromClaims(
  claims: Readonly<Record<string, unknown>>,
  claim: string,
  rules: readonly RoleRule[],
): UserRole | null {
  const values = new Set(claimValues(claims, claim));
  let best: UserRole | null = null;
  for (const rule of rules) {
    if (rule.value !== '*' && !values.has(rule.value)) continue;
    if (best === null || ROLES.indexOf(rule.role) > ROLES.indexOf(best)) best = rule.role;
  }
  return best;
}

/** The string values of a claim: a string, or the strings of an array. */
export function claimValues(claims: Readonly<Record<string, unknown>>, claim: string): string[] {
  let value: unknown = claims[claim];
  if (value === undefined && claim.includes('.')) {
    value = claim.split('.').reduce<unknown>((node, key) => {
      if (typeof node !== 'object' || node === null || Array.isArray(node)) return undefined;
      return Object.hasOwn(node, key) ? (node as Record<string, unknown>)[key] : undefined;
    }, claims);
  }
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}
