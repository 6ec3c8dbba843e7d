import { describe, expect, it } from 'vitest';
import { tempDir } from '../test/helpers.ts';
import { resolveConfig } from './config.ts';

const dataDir = tempDir();
const base = { dataDir, adminToken: 'a', workerToken: 'w' };

describe('resolveConfig: fire ahead', () => {
  it('defaults to 500 ms; 0 (a bare number of ms in the environment) turns it off', () => {
    expect(resolveConfig(base, {}).fireAheadMs).toBe(500);
    expect(resolveConfig(base, { KAIROS_FIRE_AHEAD: '0' }).fireAheadMs).toBe(0);
    expect(resolveConfig(base, { KAIROS_FIRE_AHEAD: '2s' }).fireAheadMs).toBe(2000);
    expect(resolveConfig({ ...base, fireAhead: 250 }, { KAIROS_FIRE_AHEAD: '2s' }).fireAheadMs).toBe(250);
  });

  it('refuses what is not a duration from 0 to 60 s', () => {
    for (const bad of ['-1', 'soon', '61s'])
      expect(() => resolveConfig(base, { KAIROS_FIRE_AHEAD: bad })).toThrow(
        expect.objectContaining({ code: 'INVALID_DURATION' }),
      );
  });
});

describe('resolveConfig: retention', () => {
  it('has defaults, and takes durations and the batch from the environment', () => {
    expect(resolveConfig(base, {}).retention).toEqual({
      finishedMs: 30 * 86_400_000,
      failedMs: 90 * 86_400_000,
      skippedFiresMs: 30 * 86_400_000,
      auditMs: 365 * 86_400_000,
      logsMs: 7 * 86_400_000,
      workersMs: 86_400_000,
      intervalMs: 60_000,
      batch: 1000,
    });
    const retention = resolveConfig(base, {
      KAIROS_RETENTION_FINISHED: '2h',
      KAIROS_RETENTION_FAILED: '3650d',
      KAIROS_RETENTION_INTERVAL: '0',
      KAIROS_RETENTION_BATCH: '200',
    }).retention;
    expect(retention).toMatchObject({
      finishedMs: 7_200_000,
      failedMs: 3650 * 86_400_000,
      intervalMs: 0,
      batch: 200,
    });
  });

  it('refuses ages under a minute, an interval under a second, and a batch out of range', () => {
    for (const env of [
      { KAIROS_RETENTION_FINISHED: '30s' },
      { KAIROS_RETENTION_AUDIT: 'forever' },
      { KAIROS_RETENTION_INTERVAL: '500ms' },
      { KAIROS_RETENTION_BATCH: '0' },
      { KAIROS_RETENTION_BATCH: 'many' },
    ])
      expect(() => resolveConfig(base, env)).toThrow(
        expect.objectContaining({ code: expect.stringMatching(/INVALID_DURATION|VALIDATION_FAILED/) }),
      );
  });
});

describe('resolveConfig: single sign-on', () => {
  const sso = {
    KAIROS_OIDC_ISSUER: 'https://idp.example.com/realms/ops',
    KAIROS_OIDC_CLIENT_ID: 'kairos',
    KAIROS_OIDC_REDIRECT_URL: 'https://kairos.example.com/v1/auth/oidc/callback',
    KAIROS_OIDC_ROLES: 'kairos-admins=admin,kairos-ops=operator,*=viewer',
  };

  it('is off unless an issuer is set; password login is on by default', () => {
    expect(resolveConfig(base, {})).toMatchObject({ oidc: null, passwordLogin: true });
  });

  it('reads the environment, with defaults for scopes, claims and the button', () => {
    expect(resolveConfig(base, { ...sso, KAIROS_PASSWORD_LOGIN: 'false' })).toMatchObject({
      passwordLogin: false,
      oidc: {
        issuer: 'https://idp.example.com/realms/ops',
        clientId: 'kairos',
        clientSecret: undefined,
        redirectUrl: 'https://kairos.example.com/v1/auth/oidc/callback',
        scopes: 'openid profile email',
        roleClaim: 'groups',
        roles: [
          { value: 'kairos-admins', role: 'admin' },
          { value: 'kairos-ops', role: 'operator' },
          { value: '*', role: 'viewer' },
        ],
        nameClaim: 'preferred_username',
        providerName: 'SSO',
      },
    });
    const file = resolveConfig(
      {
        ...base,
        oidcIssuer: 'http://127.0.0.1:9000',
        oidcClientId: 'k',
        oidcClientSecret: 's',
        oidcRedirectUrl: 'http://localhost:7070/v1/auth/oidc/callback',
        oidcRoles: { ops: 'operator' },
        oidcRoleClaim: 'realm_access.roles',
      },
      {},
    );
    expect(file.oidc).toMatchObject({
      clientSecret: 's',
      roleClaim: 'realm_access.roles',
      roles: [{ value: 'ops', role: 'operator' }],
    });
  });

  it('refuses what it cannot use, naming the option', () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ KAIROS_OIDC_CLIENT_ID: 'kairos' }, /oidcClientId: set oidcIssuer too/],
      [
        { ...sso, KAIROS_OIDC_ISSUER: 'http://idp.example.com' },
        /oidcIssuer: expected https \(http only on localhost\)/,
      ],
      [{ ...sso, KAIROS_OIDC_ISSUER: 'idp' }, /oidcIssuer: expected an absolute URL/],
      [{ ...sso, KAIROS_OIDC_REDIRECT_URL: '' }, /oidcRedirectUrl: expected an absolute URL/],
      [{ ...sso, KAIROS_OIDC_CLIENT_ID: '' }, /oidcClientId: expected a non-empty string/],
      [{ ...sso, KAIROS_OIDC_SCOPES: 'profile email' }, /oidcScopes: expected openid among them/],
      [{ ...sso, KAIROS_OIDC_ROLES: '' }, /oidcRoles: expected the role of each claim value/],
      [
        { ...sso, KAIROS_OIDC_ROLES: 'ops=root' },
        /oidcRoles: the role of "ops" must be admin, operator or viewer/,
      ],
      [{ ...sso, KAIROS_PASSWORD_LOGIN: 'no' }, /passwordLogin: expected true or false, got no/],
      [{ KAIROS_PASSWORD_LOGIN: 'false' }, /passwordLogin: false needs single sign-on/],
    ];
    for (const [env, message] of cases)
      expect(() => resolveConfig(base, env)).toThrow(
        expect.objectContaining({ code: 'VALIDATION_FAILED', message: expect.stringMatching(message) }),
      );
  });
});
