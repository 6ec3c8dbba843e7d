-- migration: contract; release: 0.1.0; oldest code: 0.1.0
-- Workers at scale: routing, concurrency limits, schedule-to-start timeouts.

-- The job's dispatch policy (routing, maxConcurrency, scheduleToStartMs); '{}' is the default policy.
ALTER TABLE jobs ADD COLUMN dispatch jsonb NOT NULL DEFAULT '{}';
-- Copied out of `dispatch` so that the reaper finds the jobs that have one through an index.
ALTER TABLE jobs ADD COLUMN schedule_to_start_ms bigint;
CREATE INDEX jobs_schedule_to_start ON jobs (id) WHERE schedule_to_start_ms IS NOT NULL;
-- A built-in task (shell, http) the job runs instead of a user's handler; NULL for a handler.
ALTER TABLE jobs ADD COLUMN task jsonb;

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

-- Per-group limits, across the cluster: the most runs running at once, and the most started per
-- rate_per_ms (a token bucket in rate_buckets).
CREATE TABLE group_limits (
  group_name      text    PRIMARY KEY,
  max_concurrency integer,
  rate_limit      integer,
  rate_per_ms     bigint,
  updated_at      bigint  NOT NULL
);

-- Token buckets of rate limits ('job:<id>', 'group:<name>'), taken from in the claim transaction.
CREATE TABLE rate_buckets (
  scope      text             PRIMARY KEY,
  tokens     double precision NOT NULL,
  updated_at bigint           NOT NULL
);

-- Run logs: lines numbered per run from 1 (seq), in the order the node stored them. `time` is the
-- worker's clock (for people); `stored_at` the store's (for retention).
CREATE TABLE run_logs (
  run_id    bigint  NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  seq       integer NOT NULL,
  attempt   integer NOT NULL,
  time      bigint  NOT NULL,
  stored_at bigint  NOT NULL,
  level     text    NOT NULL,
  message   text    NOT NULL,
  fields    jsonb,
  PRIMARY KEY (run_id, seq)
);
CREATE INDEX run_logs_stored ON run_logs (stored_at);
-- Lines stored and dropped per run: the size limit, and the next seq, under one row lock.
CREATE TABLE run_log_state (
  run_id  bigint  PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
  lines   integer NOT NULL,
  dropped integer NOT NULL
);
-- The last progress an attempt reported.
CREATE TABLE run_progress (
  run_id     bigint           PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
  attempt    integer          NOT NULL,
  value      double precision NOT NULL,
  message    text,
  updated_at bigint           NOT NULL
);

-- Sharding broadcast: a fire of a broadcast job becomes one run per live worker, shard 0..count-1.
-- shard_count 0 marks a run that is not (yet) sharded. A fire stays unique per shard.
ALTER TABLE runs ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN shard_count INTEGER NOT NULL DEFAULT 0;
DROP INDEX runs_fire;
CREATE UNIQUE INDEX runs_fire ON runs (job_id, fire_time, shard);
