-- migration: expand; release: 0.2.0
-- The params fields of a job that are secret, as a JSON list of dotted paths (docs/security.md). Their
-- values are stored encrypted inside params itself (an envelope object), so runs need no column.
ALTER TABLE jobs ADD COLUMN secret_params TEXT NOT NULL DEFAULT '[]';
