-- migration: expand; release: 0.2.0
-- Single sign-on. Users of an OpenID Connect provider (docs/security.md#single-sign-on): the provider's issuer and
-- the user's subject there. Null for local users. A login finds its user by this pair, never by
-- name, so an external login cannot take over a local user of the same name.
ALTER TABLE users ADD COLUMN issuer TEXT;
ALTER TABLE users ADD COLUMN subject TEXT;
CREATE UNIQUE INDEX users_identity ON users (issuer, subject);

-- Logins under way at the provider: what the callback checks the provider's answer against. Found
-- by the SHA-256 of the browser's short-lived login cookie, taken (deleted) by the callback, so each
-- is used at most once; a login that never came back is deleted after it expired.
CREATE TABLE oidc_logins (
  id_hash        TEXT    PRIMARY KEY,
  state          TEXT    NOT NULL,
  nonce          TEXT    NOT NULL,
  -- The PKCE code verifier (S256): the provider saw only its hash.
  code_verifier  TEXT    NOT NULL,
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL
);
CREATE INDEX oidc_logins_expiry ON oidc_logins (expires_at);
