-- migration: expand; release: 0.1.0
-- Access control: console users, their sessions, API tokens, the audit log; and the index the
-- console's runs-per-minute chart reads.

CREATE TABLE users (
  id             bigserial PRIMARY KEY,
  name           text    COLLATE "C" NOT NULL UNIQUE,
  role           text    NOT NULL,
  -- scrypt$N$r$p$salt$key (base64url): the KDF and its cost travel with the hash.
  password_hash  text    NOT NULL,
  created_at     bigint  NOT NULL,
  updated_at     bigint  NOT NULL
);

-- A session is found by the SHA-256 of its cookie value: a leaked table opens no session.
CREATE TABLE sessions (
  id_hash     text    PRIMARY KEY,
  user_id     bigint  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  csrf_token  text    NOT NULL,
  created_at  bigint  NOT NULL,
  expires_at  bigint  NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE api_tokens (
  id          bigserial PRIMARY KEY,
  name        text    NOT NULL,
  -- SHA-256 of the token, hex; the token itself is shown once and never stored.
  token_hash  text    NOT NULL UNIQUE,
  role        text    NOT NULL,
  -- Worker tokens: the groups they may serve; NULL for every group.
  groups      jsonb,
  created_by  text    NOT NULL,
  created_at  bigint  NOT NULL
);

CREATE TABLE audit_log (
  id       bigserial PRIMARY KEY,
  at       bigint  NOT NULL,
  actor    text    NOT NULL,
  action   text    NOT NULL,
  target   text    NOT NULL,
  details  jsonb   NOT NULL
);

-- Runs ended since an instant, by minute and outcome: a range scan of this index.
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;
