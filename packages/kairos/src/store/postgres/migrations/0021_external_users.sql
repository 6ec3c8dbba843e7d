-- migration: expand; release: 0.2.0
-- Users of an OpenID Connect provider (docs/security.md#single-sign-on): the provider's issuer and
-- the user's subject there. Null for local users. A login finds its user by this pair, never by
-- name, so an external login cannot take over a local user of the same name.
ALTER TABLE users ADD COLUMN issuer text;
ALTER TABLE users ADD COLUMN subject text;
CREATE UNIQUE INDEX users_identity ON users (issuer, subject);
