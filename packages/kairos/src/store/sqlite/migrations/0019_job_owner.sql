-- migration: expand; release: 0.2.0
-- Who manages a job: the owner that `kairos apply` records (docs/jobs-as-code.md); null for a job made by hand.
ALTER TABLE jobs ADD COLUMN owner TEXT;
