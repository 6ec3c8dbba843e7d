-- migration: expand; release: 0.2.0
-- Alerts: rules, channels, silences, the state of each (rule, subject), the outbox of changes that
-- alert, and the delivery history (docs/alerts.md).

CREATE TABLE alert_channels (
  id          INTEGER PRIMARY KEY,
  name        TEXT    NOT NULL UNIQUE,
  type        TEXT    NOT NULL,
  -- What the API may show: host, port, addresses (never a secret).
  config      TEXT    NOT NULL,
  -- URL, signing secret, SMTP password: read by the node that sends, never answered.
  secrets     TEXT    NOT NULL,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);

CREATE TABLE alert_rules (
  id          INTEGER PRIMARY KEY,
  name        TEXT    NOT NULL UNIQUE,
  kind        TEXT    NOT NULL,
  enabled     INTEGER NOT NULL,
  -- The compiled rule (core/alert-rule.ts) but name, kind and enabled.
  definition  TEXT    NOT NULL,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);

-- One row per (rule, subject) that ever fired: firing or resolved, and when it last notified.
CREATE TABLE alert_states (
  rule_id     INTEGER NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
  subject     TEXT    NOT NULL,
  status      TEXT    NOT NULL,
  fired_at    INTEGER NOT NULL,
  notified_at INTEGER,
  count       INTEGER NOT NULL,
  PRIMARY KEY (rule_id, subject)
) WITHOUT ROWID;
CREATE INDEX alert_states_firing ON alert_states (rule_id) WHERE status = 'firing';

CREATE TABLE alert_silences (
  id          INTEGER PRIMARY KEY,
  -- NULL: every rule.
  rule_id     INTEGER REFERENCES alert_rules (id) ON DELETE CASCADE,
  starts_at   INTEGER NOT NULL,
  ends_at     INTEGER NOT NULL,
  comment     TEXT    NOT NULL,
  created_by  TEXT    NOT NULL,
  created_at  INTEGER NOT NULL
);

-- The outbox: a change that may alert, written by the triggers below in the transaction of the
-- change itself, so that no run end, skipped fire or lost worker can commit without it. The node
-- holding the `alerts` lease consumes rows in id order and deletes them in the transaction that
-- records what they decided.
CREATE TABLE alert_events (
  id          INTEGER PRIMARY KEY,
  type        TEXT    NOT NULL,
  at          INTEGER NOT NULL,
  job_id      INTEGER,
  run_id      INTEGER,
  status      TEXT,
  worker_id   TEXT,
  reason      TEXT,
  count       INTEGER,
  first_fire  INTEGER,
  last_fire   INTEGER
);

CREATE TABLE alert_deliveries (
  id              INTEGER PRIMARY KEY,
  -- The alert's id, the same on each retry and each channel: receivers deduplicate by it.
  event_id        TEXT    NOT NULL,
  rule_name       TEXT,
  channel_name    TEXT    NOT NULL,
  subject         TEXT    NOT NULL,
  state           TEXT    NOT NULL,
  title           TEXT    NOT NULL,
  body            TEXT    NOT NULL,
  details         TEXT    NOT NULL,
  status          TEXT    NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  last_error      TEXT,
  created_at      INTEGER NOT NULL,
  sent_at         INTEGER,
  next_attempt_at INTEGER
);
-- The sender's queue, oldest due first.
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_deliveries_created ON alert_deliveries (created_at);

-- The triggers write an event only while an enabled rule of a kind that reads it exists: without
-- alert rules a run end costs one lookup in a tiny table, no write.
CREATE TRIGGER runs_alert_ended AFTER UPDATE OF status ON runs
  WHEN NEW.status IN ('succeeded', 'failed', 'timed_out') AND OLD.status IS NOT NEW.status
    AND EXISTS (SELECT 1 FROM alert_rules WHERE enabled = 1
                AND kind IN ('run-failed', 'run-timed-out', 'consecutive-failures'))
BEGIN
  INSERT INTO alert_events (type, at, job_id, run_id, status)
  VALUES ('run-ended', coalesce(NEW.finished_at, 0), NEW.job_id, NEW.id, NEW.status);
END;

CREATE TRIGGER skipped_fires_alert_insert AFTER INSERT ON skipped_fires
  WHEN EXISTS (SELECT 1 FROM alert_rules WHERE enabled = 1 AND kind = 'fire-skipped')
BEGIN
  INSERT INTO alert_events (type, at, job_id, reason, count, first_fire, last_fire)
  VALUES ('fire-skipped', NEW.recorded_at, NEW.job_id, NEW.reason, NEW.count, NEW.first_fire, NEW.last_fire);
END;
CREATE TRIGGER skipped_fires_alert_extend AFTER UPDATE OF last_fire ON skipped_fires
  WHEN NEW.last_fire > OLD.last_fire
    AND EXISTS (SELECT 1 FROM alert_rules WHERE enabled = 1 AND kind = 'fire-skipped')
BEGIN
  INSERT INTO alert_events (type, at, job_id, reason, count, first_fire, last_fire)
  VALUES ('fire-skipped', NEW.recorded_at, NEW.job_id, NEW.reason, NEW.count - OLD.count, OLD.last_fire, NEW.last_fire);
END;

CREATE TRIGGER workers_alert AFTER UPDATE OF status ON workers
  WHEN ((NEW.status = 'lost' AND OLD.status <> 'lost') OR (OLD.status = 'lost' AND NEW.status = 'active'))
    AND EXISTS (SELECT 1 FROM alert_rules WHERE enabled = 1 AND kind = 'worker-lost')
BEGIN
  INSERT INTO alert_events (type, at, worker_id)
  VALUES (CASE WHEN NEW.status = 'lost' THEN 'worker-lost' ELSE 'worker-back' END, NEW.lease_expires_at, NEW.id);
END;

-- A deleted job's open alerts go with it: nothing can resolve them any more.
CREATE TRIGGER jobs_alert_deleted AFTER DELETE ON jobs
BEGIN
  DELETE FROM alert_states WHERE subject = 'job:' || OLD.name;
END;
