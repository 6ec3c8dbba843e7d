-- migration: expand; release: 0.1.0
-- The Runs page's time range: runs by creation time.
CREATE INDEX runs_created ON runs (created_at);
-- Fire lateness: first attempts by start time, newest first (the overview reads a bounded sample).
CREATE INDEX attempts_first_start ON attempts (started_at) WHERE attempt = 1;
