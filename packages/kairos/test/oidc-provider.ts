import type { Server } from 'node:http';
import Provider from 'oidc-provider';
import { freePort } from './net.ts';

/** A test account of the provider: its login name is its subject; its claims include `groups`. */
export interface TestAccount {
  preferred_username: string;
  groups: string[];
}

export const TEST_CLIENT = { id: 'kairos', secret: 'kairos-client-secret' } as const;
/** A public client: no secret, PKCE alone. */
export const TEST_PUBLIC_CLIENT = { id: 'kairos-public' } as const;

/**
 * A real OpenID provider (the `oidc-provider` package) on a free loopback port, with a
 * confidential and a public client for Kairos and its development login and consent pages (any password is
 * accepted for a known account). `accounts` is read at every login, so a test changes a user's
 * groups between logins.
 */
export async function startTestProvider(
  redirectUris: string[],
  accounts: Record<string, TestAccount>,
): Promise<{ issuer: string; stop(): Promise<void> }> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: TEST_CLIENT.id,
        client_secret: TEST_CLIENT.secret,
        redirect_uris: redirectUris,
        response_types: ['code'],
        grant_types: ['authorization_code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: TEST_PUBLIC_CLIENT.id,
        redirect_uris: redirectUris,
        response_types: ['code'],
        grant_types: ['authorization_code'],
        token_endpoint_auth_method: 'none',
      },
    ],
    ttl: { Interaction: 600, Session: 600, Grant: 600, AccessToken: 600, IdToken: 600 },
    scopes: ['openid', 'profile', 'groups'],
    claims: { openid: ['sub'], profile: ['preferred_username'], groups: ['groups'] },
    pkce: { required: () => true },
    cookies: { keys: ['test-provider-cookie-key'] },
    async findAccount(_ctx, id) {
      const account = accounts[id];
      if (!account) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...accounts[id] }) };
    },
  });
  const server: Server = await new Promise((resolve) => {
    const listening = provider.listen(port, '127.0.0.1', () => resolve(listening));
  });
  return {
    issuer,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
