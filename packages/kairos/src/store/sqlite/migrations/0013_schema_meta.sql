-- migration: expand; release: 0.2.0
-- The schema's version and the oldest code that may run on it, one row written by the node that
-- migrates (store/migrations.ts, planMigrations): a node that finds migrations it does not know
-- refuses the schema when its code is older than min_code_version. Nodes of 0.1.0 never read it.
CREATE TABLE schema_meta (
  id                INTEGER PRIMARY KEY CHECK (id = 1),
  schema_version    INTEGER NOT NULL,
  min_code_version  TEXT    NOT NULL,
  migrated_by       TEXT    NOT NULL
);
