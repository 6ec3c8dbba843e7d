-- migration: expand; release: 0.2.0
-- Group limits per namespace (docs/tenancy.md): a group is a pool of workers of one namespace, and
-- its limits (runs at once, runs started per period) are now kept per (namespace, group) and count
-- only that namespace's runs. Limits from before become those of `default`.
--
-- group_limits stays as it is: nodes of the previous release, still running during a rolling
-- upgrade, read and upsert it by group name alone (`ON CONFLICT (group_name)`). The triggers below
-- copy what they write into `default`'s limits, and this release writes `default`'s limits into
-- both tables, so old and new nodes keep one value for `default` until the upgrade is over
-- (docs/operations.md, upgrade notes). A later contract migration drops group_limits and the
-- triggers.
CREATE TABLE namespace_group_limits (
  namespace       TEXT    NOT NULL REFERENCES namespaces (name),
  group_name      TEXT    NOT NULL,
  max_concurrency INTEGER,
  rate_limit      INTEGER,
  rate_per_ms     INTEGER,
  updated_at      INTEGER NOT NULL,
  PRIMARY KEY (namespace, group_name)
);
INSERT INTO namespace_group_limits (namespace, group_name, max_concurrency, rate_limit, rate_per_ms, updated_at)
  SELECT 'default', group_name, max_concurrency, rate_limit, rate_per_ms, updated_at FROM group_limits;

CREATE TRIGGER group_limits_insert_default AFTER INSERT ON group_limits
BEGIN
  INSERT INTO namespace_group_limits (namespace, group_name, max_concurrency, rate_limit, rate_per_ms, updated_at)
  VALUES ('default', NEW.group_name, NEW.max_concurrency, NEW.rate_limit, NEW.rate_per_ms, NEW.updated_at)
  ON CONFLICT (namespace, group_name) DO UPDATE SET max_concurrency = excluded.max_concurrency,
    rate_limit = excluded.rate_limit, rate_per_ms = excluded.rate_per_ms, updated_at = excluded.updated_at;
END;
CREATE TRIGGER group_limits_update_default AFTER UPDATE ON group_limits
BEGIN
  INSERT INTO namespace_group_limits (namespace, group_name, max_concurrency, rate_limit, rate_per_ms, updated_at)
  VALUES ('default', NEW.group_name, NEW.max_concurrency, NEW.rate_limit, NEW.rate_per_ms, NEW.updated_at)
  ON CONFLICT (namespace, group_name) DO UPDATE SET max_concurrency = excluded.max_concurrency,
    rate_limit = excluded.rate_limit, rate_per_ms = excluded.rate_per_ms, updated_at = excluded.updated_at;
END;

-- A group's token bucket is now `group:<namespace>/<group>` (a group name has no `/`, so no old
-- scope `group:<group>` can be read as a new one): `default` keeps the tokens its groups had.
INSERT INTO rate_buckets (scope, tokens, updated_at)
  SELECT 'group:default/' || substr(scope, 7), tokens, updated_at FROM rate_buckets WHERE scope LIKE 'group:%';
