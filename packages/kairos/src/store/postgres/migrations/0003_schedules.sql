-- migration: expand; release: 0.1.0
-- Schedules: per-job policies, the run count that maxRuns caps, and the ledger of fires that did not run.

-- The compiled schedule policy (core/schedule-policy.ts); '{}' means every default.
ALTER TABLE jobs ADD COLUMN schedule jsonb NOT NULL DEFAULT '{}';
-- Runs created by the schedule, kept by the fire transaction.
ALTER TABLE jobs ADD COLUMN runs_fired bigint NOT NULL DEFAULT 0;

-- One row per range of fire times of one job that did not become runs, for one reason.
CREATE TABLE skipped_fires (
  id          bigserial PRIMARY KEY,
  job_id      bigint  NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  reason      text    NOT NULL,
  first_fire  bigint  NOT NULL,
  last_fire   bigint  NOT NULL,
  -- NULL: too many fire times to count cheaply (a long outage of a frequent cron job).
  count       bigint,
  recorded_at bigint  NOT NULL
);
-- Two writers with the same view of a job record a range once.
CREATE UNIQUE INDEX skipped_fires_range ON skipped_fires (job_id, reason, first_fire);
-- The ledger of a job, newest first.
CREATE INDEX skipped_fires_job ON skipped_fires (job_id, id);

-- Jobs that run after another job, found by the parent's name when one of its runs ends.
CREATE INDEX jobs_after ON jobs ((trigger->>'job')) WHERE trigger->>'kind' = 'after';
-- A job's active runs (overlap policies, buffered runs), without walking its whole run history.
CREATE INDEX runs_active ON runs (job_id, available_at) WHERE status IN ('queued', 'running');

-- Calendars: named sets of excluded dates and times that jobs attach by name (schedule.calendars).
CREATE TABLE calendars (
  name        text   COLLATE "C" PRIMARY KEY,
  -- The compiled calendar (core/calendar.ts): zone, dates, periods, weekdays, cron.
  definition  jsonb  NOT NULL,
  created_at  bigint NOT NULL,
  updated_at  bigint NOT NULL
);
-- The row a new range continues: the job's latest row of a reason that ends at a given fire.
CREATE INDEX skipped_fires_end ON skipped_fires (job_id, reason, last_fire);
