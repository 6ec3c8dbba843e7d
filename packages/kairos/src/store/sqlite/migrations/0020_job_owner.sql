-- migration: expand; release: 0.2.0
-- Who manages a job: the owner that `kairos apply` or a worker's declarations record
-- (docs/jobs-as-code.md), and the revision of the owner's definition that wrote it; null for a job made by hand.
ALTER TABLE jobs ADD COLUMN owner TEXT;
ALTER TABLE jobs ADD COLUMN revision INTEGER;
