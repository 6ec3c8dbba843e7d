-- migration: expand; release: 0.2.0
-- Runs that request resources of their own (a workflow step's `resources`), while queued. The queue
-- metrics (kairos_runs_unplaceable) count them by request at every scrape, per (group, job,
-- handler): a seek into this index, which holds only such runs, never a pass over every queued run
-- with a read of the table (runs_queued_by_job has no request).
CREATE INDEX runs_queued_requests ON runs (group_name, job_id, handler) WHERE status = 'queued' AND resources IS NOT NULL;
