-- migration: expand; release: 0.1.0
-- Kairos schema, PostgreSQL dialect. Times are epoch milliseconds (bigint) so that every dialect
-- compares the same numbers; JSON columns are jsonb.

CREATE TABLE jobs (
  id            bigserial PRIMARY KEY,
  -- Byte order, as in SQLite, so that paging by name is the same on both dialects.
  name          text    COLLATE "C" NOT NULL UNIQUE,
  description   text    NOT NULL DEFAULT '',
  group_name    text    COLLATE "C" NOT NULL,
  handler       text    NOT NULL,
  params        jsonb   NOT NULL,
  trigger       jsonb   NOT NULL,
  -- Fixed-delay jobs only: ending a scheduled run sets next_fire_at = now + delay_ms.
  delay_ms      bigint,
  retry         jsonb   NOT NULL,
  timeout_ms    bigint  NOT NULL,
  priority      integer NOT NULL,
  paused        boolean NOT NULL DEFAULT false,
  next_fire_at  bigint,
  created_at    bigint  NOT NULL,
  updated_at    bigint  NOT NULL
);
-- The trigger loop's priority queue: the earliest due job is the first entry of this index.
CREATE INDEX jobs_due ON jobs (next_fire_at) WHERE next_fire_at IS NOT NULL AND NOT paused;
CREATE INDEX jobs_group ON jobs (group_name, name);

CREATE TABLE runs (
  id               bigserial PRIMARY KEY,
  job_id           bigint  NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  group_name       text    NOT NULL,
  handler          text    NOT NULL,
  cause            text    NOT NULL,
  fire_time        bigint,
  idempotency_key  text,
  params           jsonb   NOT NULL,
  priority         integer NOT NULL,
  status           text    NOT NULL,
  attempt          integer NOT NULL DEFAULT 0,
  max_attempts     integer NOT NULL,
  retry            jsonb   NOT NULL,
  timeout_ms       bigint  NOT NULL,
  worker_id        text,
  created_at       bigint  NOT NULL,
  available_at     bigint  NOT NULL,
  started_at       bigint,
  finished_at      bigint,
  lease_expires_at bigint,
  deadline_at      bigint,
  result           jsonb,
  error            jsonb
);
-- Exactly-once firing: one run per (job, fire time). NULL fire times (manual runs) never collide.
CREATE UNIQUE INDEX runs_fire ON runs (job_id, fire_time);
CREATE UNIQUE INDEX runs_idempotency ON runs (job_id, idempotency_key);
-- The claim query walks this index in order: group, highest priority, oldest.
CREATE INDEX runs_claim ON runs (group_name, priority DESC, available_at, id) WHERE status = 'queued';
CREATE INDEX runs_lease ON runs (lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_deadline ON runs (deadline_at) WHERE status = 'running';
CREATE INDEX runs_worker ON runs (worker_id) WHERE status = 'running';
CREATE INDEX runs_job ON runs (job_id, id);
CREATE INDEX runs_status ON runs (status, id);

CREATE TABLE attempts (
  run_id      bigint  NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  attempt     integer NOT NULL,
  worker_id   text    NOT NULL,
  status      text    NOT NULL,
  started_at  bigint  NOT NULL,
  finished_at bigint,
  error       jsonb,
  PRIMARY KEY (run_id, attempt)
);

CREATE TABLE workers (
  id                text    PRIMARY KEY,
  name              text    NOT NULL,
  group_name        text    NOT NULL,
  handlers          jsonb   NOT NULL,
  capacity          integer NOT NULL,
  labels            jsonb   NOT NULL,
  version           text    NOT NULL,
  host              text    NOT NULL,
  status            text    NOT NULL,
  registered_at     bigint  NOT NULL,
  last_heartbeat_at bigint  NOT NULL,
  lease_expires_at  bigint  NOT NULL
);

CREATE TABLE leases (
  name       text   PRIMARY KEY,
  owner      text   NOT NULL,
  epoch      bigint NOT NULL,
  expires_at bigint NOT NULL
);
