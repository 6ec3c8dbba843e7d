-- Workers at scale: routing, concurrency limits, schedule-to-start timeouts.

-- The job's dispatch policy (routing, maxConcurrency, scheduleToStartMs); '{}' is the default policy.
ALTER TABLE jobs ADD COLUMN dispatch jsonb NOT NULL DEFAULT '{}';
-- Copied out of `dispatch` so that the reaper finds the jobs that have one through an index.
ALTER TABLE jobs ADD COLUMN schedule_to_start_ms bigint;
CREATE INDEX jobs_schedule_to_start ON jobs (id) WHERE schedule_to_start_ms IS NOT NULL;

-- The worker a routed run is assigned to while it is queued; only that worker claims it, unless it
-- is no longer alive (then the run is routed again). NULL: any eligible worker.
ALTER TABLE runs ADD COLUMN target_worker_id text;
CREATE INDEX runs_target ON runs (target_worker_id) WHERE status = 'queued' AND target_worker_id IS NOT NULL;

-- Per-job routing state (round-robin turn, last use and use count per worker), locked and updated
-- in the claim transaction so that every node shares it.
CREATE TABLE job_routing (
  job_id bigint PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
  state  jsonb  NOT NULL
);

-- Per-group limits: the most runs of the group running at once across the cluster.
CREATE TABLE group_limits (
  group_name      text    PRIMARY KEY,
  max_concurrency integer,
  updated_at      bigint  NOT NULL
);
