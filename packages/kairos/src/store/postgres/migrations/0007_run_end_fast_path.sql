-- migration: expand; release: 0.1.0
-- Run ends without the job's row lock: only the ends of runs of jobs that buffer runs take it and
-- look for a buffered run to promote (schedules.ts, afterRunsEnded).
-- buffers: the job has or may get buffered runs (a buffer-* overlap policy, now or once, or a serial
-- backfill). Never reset: buffered runs may outlive the policy that made them.
ALTER TABLE jobs ADD COLUMN buffers boolean NOT NULL DEFAULT false;
-- promotes: the run was in flight when its job began to buffer; its end promotes like the job's.
ALTER TABLE runs ADD COLUMN promotes boolean NOT NULL DEFAULT false;
UPDATE jobs j SET buffers = true
WHERE j.schedule->>'overlap' IN ('buffer-one', 'buffer-all')
  OR EXISTS (SELECT 1 FROM runs r WHERE r.job_id = j.id AND r.status IN ('queued', 'running')
    AND r.available_at = 8640000000000000);
