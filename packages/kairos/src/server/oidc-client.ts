import * as oidc from 'openid-client';
import type { OidcConfig } from '../config.ts';
import { KairosError } from '../errors.ts';

/** What the provider vouched for at a login: who (issuer, subject) and their claims (ID token and userinfo). */
export interface OidcIdentity {
  issuer: string;
  subject: string;
  claims: Record<string, unknown>;
}

/** The checks of one login, made when it started and kept until its callback. */
export interface OidcChecks {
  state: string;
  nonce: string;
  codeVerifier: string;
}

/**
 * The OpenID Connect authorization code flow with PKCE (S256), through `openid-client`: discovery
 * of the provider (on first use, again after a failure), the authorization URL, and at the
 * callback the code exchange, ID-token validation (signature, issuer, audience, expiry, nonce) and
 * userinfo. Every failure is a KairosError: OIDC_PROVIDER_UNAVAILABLE when the provider cannot be
 * reached or answers 5xx, OIDC_DENIED when it refused the login, OIDC_LOGIN_FAILED otherwise.
 */
export class OidcClient {
  private discovered: Promise<oidc.Configuration> | undefined;

  constructor(private readonly config: OidcConfig) {}

  /** Fresh random checks for a new login. */
  static newChecks(): OidcChecks {
    return {
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      codeVerifier: oidc.randomPKCECodeVerifier(),
    };
  }

  /** Where to send the browser to log in at the provider. */
  async authorizationUrl(checks: OidcChecks): Promise<URL> {
    const configuration = await this.configuration();
    try {
      return oidc.buildAuthorizationUrl(configuration, {
        redirect_uri: this.config.redirectUrl,
        scope: this.config.scopes,
        state: checks.state,
        nonce: checks.nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(checks.codeVerifier),
        code_challenge_method: 'S256',
      });
    } catch (error) {
      // Metadata without an authorization endpoint: a provider that cannot serve this flow.
      throw new KairosError(
        'OIDC_PROVIDER_UNAVAILABLE',
        `the OpenID provider cannot start a login: ${message(error)}`,
        undefined,
        {
          cause: error,
        },
      );
    }
  }

  /**
   * Finishes a login from the query string the provider sent the browser back with: exchanges the
   * code (with the PKCE verifier), validates the ID token, and reads userinfo when the provider
   * has it (group claims often live there). ID-token claims win over userinfo's.
   */
  async finish(query: URLSearchParams, checks: OidcChecks): Promise<OidcIdentity> {
    const configuration = await this.configuration();
    const callback = new URL(this.config.redirectUrl);
    callback.search = query.toString();
    try {
      const tokens = await oidc.authorizationCodeGrant(configuration, callback, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
      });
      const idClaims = tokens.claims()!;
      const userinfo = configuration.serverMetadata().userinfo_endpoint
        ? await oidc.fetchUserInfo(configuration, tokens.access_token, idClaims.sub)
        : {};
      return { issuer: idClaims.iss, subject: idClaims.sub, claims: { ...userinfo, ...idClaims } };
    } catch (error) {
      throw failure(error);
    }
  }

  private configuration(): Promise<oidc.Configuration> {
    this.discovered ??= this.discover().catch((error: unknown) => {
      this.discovered = undefined;
      throw error;
    });
    return this.discovered;
  }

  private async discover(): Promise<oidc.Configuration> {
    const { issuer, clientId, clientSecret } = this.config;
    const url = new URL(issuer);
    try {
      return await oidc.discovery(
        url,
        clientId,
        undefined,
        clientSecret === undefined ? oidc.None() : oidc.ClientSecretBasic(clientSecret),
        // Plain http only for a provider on this machine (config.ts allows no other).
        { execute: url.protocol === 'http:' ? [oidc.allowInsecureRequests] : [], timeout: 10 },
      );
    } catch (error) {
      throw (
        unavailable(error) ??
        new KairosError(
          'OIDC_PROVIDER_UNAVAILABLE',
          `discovery at ${issuer} failed: ${message(error)}`,
          undefined,
          { cause: error },
        )
      );
    }
  }
}

/** Codes of openid-client for a provider that did not answer, or answered with a server error. */
const UNREACHABLE = new Set(['OAUTH_TIMEOUT', 'OAUTH_ABORT', 'OAUTH_RESPONSE_IS_NOT_CONFORM']);

function unavailable(error: unknown): KairosError | undefined {
  const code = (error as { code?: unknown }).code;
  const network = error instanceof TypeError && error.message === 'fetch failed';
  if (!network && !(typeof code === 'string' && UNREACHABLE.has(code))) return undefined;
  return new KairosError(
    'OIDC_PROVIDER_UNAVAILABLE',
    `the OpenID provider did not answer: ${message(error)}`,
    undefined,
    {
      cause: error,
    },
  );
}

function failure(error: unknown): KairosError {
  if (error instanceof KairosError) return error;
  if (error instanceof oidc.AuthorizationResponseError) {
    return new KairosError('OIDC_DENIED', `the OpenID provider refused the login: ${error.error}`, {
      error: error.error,
      description: error.error_description ?? null,
    });
  }
  if (error instanceof oidc.ResponseBodyError) {
    return new KairosError('OIDC_LOGIN_FAILED', `the OpenID provider refused the code: ${error.error}`, {
      error: error.error,
      description: error.error_description ?? null,
    });
  }
  return (
    unavailable(error) ??
    new KairosError(
      'OIDC_LOGIN_FAILED',
      `the OpenID provider's answer did not validate: ${message(error)}`,
      undefined,
      {
        cause: error,
      },
    )
  );
}

function message(error: unknown): string {
  const cause = (error as { cause?: { message?: unknown } }).cause?.message;
  const text = error instanceof Error ? error.message : String(error);
  return typeof cause === 'string' && cause !== text ? `${text} (${cause})` : text;
}
