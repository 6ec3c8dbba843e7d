-- migration: expand; release: 0.2.0
-- Retention (docs/retention.md): a job's own limits for keeping its finished runs ({} takes the
-- node's defaults), and the indexes that make each of the pruner's batched deletes a range scan.
ALTER TABLE jobs ADD COLUMN retention TEXT NOT NULL DEFAULT '{}';
-- The ledger by when a row was last written; the audit log by time.
CREATE INDEX skipped_fires_recorded ON skipped_fires (recorded_at);
CREATE INDEX audit_log_at ON audit_log (at);
