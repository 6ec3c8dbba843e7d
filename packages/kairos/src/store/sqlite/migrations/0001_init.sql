-- migration: expand; release: 0.1.0
-- Kairos schema, SQLite dialect. Times are epoch milliseconds; JSON columns hold TEXT.

CREATE TABLE jobs (
  id            INTEGER PRIMARY KEY,
  name          TEXT    NOT NULL UNIQUE,
  description   TEXT    NOT NULL DEFAULT '',
  group_name    TEXT    NOT NULL,
  handler       TEXT    NOT NULL,
  params        TEXT    NOT NULL,
  trigger       TEXT    NOT NULL,
  -- Fixed-delay jobs only: ending a scheduled run sets next_fire_at = now + delay_ms.
  delay_ms      INTEGER,
  retry         TEXT    NOT NULL,
  timeout_ms    INTEGER NOT NULL,
  priority      INTEGER NOT NULL,
  paused        INTEGER NOT NULL DEFAULT 0,
  next_fire_at  INTEGER,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);
-- The trigger loop's priority queue: the earliest due job is the first entry of this index.
CREATE INDEX jobs_due ON jobs (next_fire_at) WHERE next_fire_at IS NOT NULL AND paused = 0;
CREATE INDEX jobs_group ON jobs (group_name, name);

CREATE TABLE runs (
  id               INTEGER PRIMARY KEY,
  job_id           INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  group_name       TEXT    NOT NULL,
  handler          TEXT    NOT NULL,
  cause            TEXT    NOT NULL,
  fire_time        INTEGER,
  idempotency_key  TEXT,
  params           TEXT    NOT NULL,
  priority         INTEGER NOT NULL,
  status           TEXT    NOT NULL,
  attempt          INTEGER NOT NULL DEFAULT 0,
  max_attempts     INTEGER NOT NULL,
  retry            TEXT    NOT NULL,
  timeout_ms       INTEGER NOT NULL,
  worker_id        TEXT,
  created_at       INTEGER NOT NULL,
  available_at     INTEGER NOT NULL,
  started_at       INTEGER,
  finished_at      INTEGER,
  lease_expires_at INTEGER,
  deadline_at      INTEGER,
  result           TEXT,
  error            TEXT
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
  run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  attempt     INTEGER NOT NULL,
  worker_id   TEXT    NOT NULL,
  status      TEXT    NOT NULL,
  started_at  INTEGER NOT NULL,
  finished_at INTEGER,
  error       TEXT,
  PRIMARY KEY (run_id, attempt)
) WITHOUT ROWID;

CREATE TABLE workers (
  id                TEXT    PRIMARY KEY,
  name              TEXT    NOT NULL,
  group_name        TEXT    NOT NULL,
  handlers          TEXT    NOT NULL,
  capacity          INTEGER NOT NULL,
  labels            TEXT    NOT NULL,
  version           TEXT    NOT NULL,
  host              TEXT    NOT NULL,
  status            TEXT    NOT NULL,
  registered_at     INTEGER NOT NULL,
  last_heartbeat_at INTEGER NOT NULL,
  lease_expires_at  INTEGER NOT NULL
);

CREATE TABLE leases (
  name       TEXT    PRIMARY KEY,
  owner      TEXT    NOT NULL,
  epoch      INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
