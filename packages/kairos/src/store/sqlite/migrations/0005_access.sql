-- migration: expand; release: 0.1.0
-- Access control: console users, their sessions, API tokens, the audit log; and the index the
-- console's runs-per-minute chart reads.

CREATE TABLE users (
  id             INTEGER PRIMARY KEY,
  name           TEXT    NOT NULL UNIQUE,
  role           TEXT    NOT NULL,
  -- scrypt$N$r$p$salt$key (base64url): the KDF and its cost travel with the hash.
  password_hash  TEXT    NOT NULL,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL
);

-- A session is found by the SHA-256 of its cookie value: a leaked table opens no session.
CREATE TABLE sessions (
  id_hash     TEXT    PRIMARY KEY,
  user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  csrf_token  TEXT    NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE api_tokens (
  id          INTEGER PRIMARY KEY,
  name        TEXT    NOT NULL,
  -- SHA-256 of the token, hex; the token itself is shown once and never stored.
  token_hash  TEXT    NOT NULL UNIQUE,
  role        TEXT    NOT NULL,
  -- Worker tokens: JSON array of the groups they may serve; NULL for every group.
  groups      TEXT,
  created_by  TEXT    NOT NULL,
  created_at  INTEGER NOT NULL
);

CREATE TABLE audit_log (
  id       INTEGER PRIMARY KEY,
  at       INTEGER NOT NULL,
  actor    TEXT    NOT NULL,
  action   TEXT    NOT NULL,
  target   TEXT    NOT NULL,
  details  TEXT    NOT NULL
);

-- Runs ended since an instant, by minute and outcome: a range scan of this index.
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;
