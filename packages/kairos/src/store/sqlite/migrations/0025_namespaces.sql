-- migration: expand; release: 0.2.0
-- Namespaces (docs/tenancy.md): every job, run, calendar, worker, API token, alert rule, alert
-- channel and audit entry belongs to one; everything from before lands in `default`.
--
-- Names become unique per namespace: (namespace, name) indexes below. The old global UNIQUE of
-- jobs, calendars, alert rules and alert channels STAYS in this release, for two reasons: nodes of
-- the previous release, still running during a rolling upgrade, read a job or calendar by its name
-- alone and upsert calendars, rules and channels with `ON CONFLICT (name)`, which needs that index;
-- and here it is part of each table's definition, which SQLite drops only by rebuilding the table
-- (a contract step). So, until a later contract migration drops it, a name is taken in every
-- namespace at once (docs/operations.md, upgrade notes).

CREATE TABLE namespaces (
  name         TEXT    PRIMARY KEY,
  description  TEXT    NOT NULL DEFAULT '',
  -- Reserved for per-namespace quotas (a later release): JSON or NULL; nothing reads it yet.
  quotas       TEXT,
  created_at   INTEGER NOT NULL
);
INSERT INTO namespaces (name, description, created_at)
  VALUES ('default', 'the namespace of everything without one', CAST(strftime('%s', 'now') AS INTEGER) * 1000);

-- A user's role in one namespace, beside the user's global role (docs/tenancy.md).
CREATE TABLE namespace_grants (
  user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  namespace   TEXT    NOT NULL REFERENCES namespaces (name),
  role        TEXT    NOT NULL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (user_id, namespace)
);

ALTER TABLE jobs ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default';
-- A run's namespace is its job's, copied when the run is made: lists and claims filter on it
-- without joining jobs.
ALTER TABLE runs ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default';
ALTER TABLE calendars ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default';
ALTER TABLE workers ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default';
-- `*`: a global token (admin tokens only). Admin tokens from before were global in effect: they stay so.
ALTER TABLE api_tokens ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default';
UPDATE api_tokens SET namespace = '*' WHERE role = 'admin';
ALTER TABLE alert_rules ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default';
ALTER TABLE alert_channels ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default';
-- `*`: a change outside any namespace (users, namespaces themselves).
ALTER TABLE audit_log ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default';

CREATE UNIQUE INDEX jobs_namespace_name ON jobs (namespace, name);
CREATE UNIQUE INDEX calendars_namespace_name ON calendars (namespace, name);
CREATE UNIQUE INDEX alert_rules_namespace_name ON alert_rules (namespace, name);
CREATE UNIQUE INDEX alert_channels_namespace_name ON alert_channels (namespace, name);
-- The audit page of one namespace, newest first.
CREATE INDEX audit_log_namespace ON audit_log (namespace, id);
