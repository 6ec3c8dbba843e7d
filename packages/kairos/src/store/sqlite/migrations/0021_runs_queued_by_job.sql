-- migration: expand; release: 0.2.0
-- The queue metrics (kairos_runs_queued_by_job, the oldest queued run's age, runs no live worker can
-- take) count queued runs by group, job and handler at every scrape: this partial index holds exactly
-- those columns, so the count is one ordered pass over the queued runs' entries, without the table.
CREATE INDEX runs_queued_by_job ON runs (group_name, job_id, handler, available_at) WHERE status = 'queued';
