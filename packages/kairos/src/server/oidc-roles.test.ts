import { describe, expect, it } from 'vitest';
import { parseRoleRules, roleFromClaims } from './oidc-roles.ts';

describe('the role mapping of OpenID claims', () => {
  const rules = parseRoleRules('kairos-admins=admin, kairos-ops=operator,*=viewer');

  it('reads rules from a list or an object', () => {
    expect(rules).toEqual([
      { value: 'kairos-admins', role: 'admin' },
      { value: 'kairos-ops', role: 'operator' },
      { value: '*', role: 'viewer' },
    ]);
    expect(parseRoleRules({ 'cn=ops,dc=example': 'operator' })).toEqual([
      { value: 'cn=ops,dc=example', role: 'operator' },
    ]);
    // The last `=` separates the role: a group name may hold one.
    expect(parseRoleRules('team=ops=operator')).toEqual([{ value: 'team=ops', role: 'operator' }]);
  });

  it('refuses rules it cannot read, naming them', () => {
    expect(() => parseRoleRules('')).toThrow(/at least one/);
    expect(() => parseRoleRules('admins')).toThrow(/expected value=role, got "admins"/);
    expect(() => parseRoleRules('admins=root')).toThrow(/must be admin, operator or viewer, got "root"/);
    expect(() => parseRoleRules('a=admin,a=viewer')).toThrow(/"a" is empty or given twice/);
    expect(() => parseRoleRules('=admin')).toThrow(/expected value=role/);
    expect(() => parseRoleRules({ x: 'worker' })).toThrow(/VALIDATION|must be admin/);
  });

  it('gives the highest role of the matching rules, whatever their order', () => {
    expect(roleFromClaims({ groups: ['kairos-ops', 'kairos-admins'] }, 'groups', rules)).toBe('admin');
    expect(roleFromClaims({ groups: ['kairos-ops'] }, 'groups', rules)).toBe('operator');
    expect(roleFromClaims({ groups: ['sales'] }, 'groups', rules)).toBe('viewer');
    expect(roleFromClaims({}, 'groups', rules)).toBe('viewer');
    const reversed = parseRoleRules('*=viewer,kairos-ops=operator');
    expect(roleFromClaims({ groups: 'kairos-ops' }, 'groups', reversed)).toBe('operator');
  });

  it('answers null when no rule matches: the login is refused', () => {
    const strict = parseRoleRules('kairos-admins=admin');
    expect(roleFromClaims({ groups: ['sales'] }, 'groups', strict)).toBeNull();
    expect(roleFromClaims({}, 'groups', strict)).toBeNull();
    // Values that are not strings never match a named rule.
    expect(roleFromClaims({ groups: [{ name: 'kairos-admins' }, 7] }, 'groups', strict)).toBeNull();
    expect(roleFromClaims({ groups: { 'kairos-admins': true } }, 'groups', strict)).toBeNull();
  });

  it('reads a dotted claim name as a path when no claim has that name', () => {
    const keycloak = { realm_access: { roles: ['kairos-admins'] } };
    expect(roleFromClaims(keycloak, 'realm_access.roles', rules)).toBe('admin');
    expect(
      roleFromClaims({ 'realm_access.roles': 'kairos-ops', ...keycloak }, 'realm_access.roles', rules),
    ).toBe('operator');
    expect(
      roleFromClaims({ realm_access: ['x'] }, 'realm_access.roles', parseRoleRules('x=admin')),
    ).toBeNull();
    // Inherited properties are not claims.
    expect(roleFromClaims({ a: {} }, 'a.constructor', parseRoleRules('x=admin'))).toBeNull();
  });
});
