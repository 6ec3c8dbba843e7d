-- migration: expand; release: 0.2.0
-- A job's version, bumped by every change of its definition or pause state (not by firing): edits
-- carry the version they read (If-Match) and apply only if it is still current.
ALTER TABLE jobs ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- When a run's idempotency key stops holding it (null: keys of runs from before this migration
-- never expire). A trigger with an expired key takes the key over for a new run.
ALTER TABLE runs ADD COLUMN idempotency_expires_at INTEGER;
