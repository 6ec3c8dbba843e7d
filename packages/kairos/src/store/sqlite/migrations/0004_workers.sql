-- migration: contract; release: 0.1.0; oldest code: 0.1.0
-- Workers at scale: routing, concurrency limits, schedule-to-start timeouts.

-- The job's dispatch policy (routing, maxConcurrency, scheduleToStartMs) as JSON; '{}' is the default policy.
ALTER TABLE jobs ADD COLUMN dispatch TEXT NOT NULL DEFAULT '{}';
-- Copied out of `dispatch` so that the reaper finds the jobs that have one through an index.
ALTER TABLE jobs ADD COLUMN schedule_to_start_ms INTEGER;
CREATE INDEX jobs_schedule_to_start ON jobs (id) WHERE schedule_to_start_ms IS NOT NULL;
-- A built-in task (shell, http) the job runs instead of a user's handler; NULL for a handler.
ALTER TABLE jobs ADD COLUMN task TEXT;

-- The worker a routed run is assigned to while it is queued; only that worker claims it, unless it
-- is no longer alive (then the run is routed again). NULL: any eligible worker.
ALTER TABLE runs ADD COLUMN target_worker_id TEXT;
CREATE INDEX runs_target ON runs (target_worker_id) WHERE status = 'queued' AND target_worker_id IS NOT NULL;

-- Per-job routing state (round-robin turn, last use and use count per worker), updated in the
-- claim transaction so that every node shares it.
CREATE TABLE job_routing (
  job_id INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
  state  TEXT    NOT NULL
);

-- Per-group limits, across the cluster: the most runs running at once, and the most started per
-- rate_per_ms (a token bucket in rate_buckets).
CREATE TABLE group_limits (
  group_name      TEXT    PRIMARY KEY,
  max_concurrency INTEGER,
  rate_limit      INTEGER,
  rate_per_ms     INTEGER,
  updated_at      INTEGER NOT NULL
);

-- Token buckets of rate limits ('job:<id>', 'group:<name>'), taken from in the claim transaction.
CREATE TABLE rate_buckets (
  scope      TEXT    PRIMARY KEY,
  tokens     REAL    NOT NULL,
  updated_at INTEGER NOT NULL
);

-- Run logs: lines numbered per run from 1 (seq), in the order the node stored them. `time` is the
-- worker's clock (for people); `stored_at` the store's (for retention).
CREATE TABLE run_logs (
  run_id    INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  seq       INTEGER NOT NULL,
  attempt   INTEGER NOT NULL,
  time      INTEGER NOT NULL,
  stored_at INTEGER NOT NULL,
  level     TEXT    NOT NULL,
  message   TEXT    NOT NULL,
  fields    TEXT,
  PRIMARY KEY (run_id, seq)
);
CREATE INDEX run_logs_stored ON run_logs (stored_at);
-- Lines stored and dropped per run: the size limit, and the next seq, under one row lock.
CREATE TABLE run_log_state (
  run_id  INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
  lines   INTEGER NOT NULL,
  dropped INTEGER NOT NULL
);
-- The last progress an attempt reported.
CREATE TABLE run_progress (
  run_id     INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
  attempt    INTEGER NOT NULL,
  value      REAL    NOT NULL,
  message    TEXT,
  updated_at INTEGER NOT NULL
);

-- Sharding broadcast: a fire of a broadcast job becomes one run per live worker, shard 0..count-1.
-- shard_count 0 marks a run that is not (yet) sharded. A fire stays unique per shard.
ALTER TABLE runs ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN shard_count INTEGER NOT NULL DEFAULT 0;
DROP INDEX runs_fire;
CREATE UNIQUE INDEX runs_fire ON runs (job_id, fire_time, shard);
