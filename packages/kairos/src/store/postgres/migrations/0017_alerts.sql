-- migration: expand; release: 0.2.0
-- Alerts: rules, channels, silences, the state of each (rule, subject), the outbox of changes that
-- alert, and the delivery history (docs/alerts.md).

CREATE TABLE alert_channels (
  id          bigserial PRIMARY KEY,
  name        text   COLLATE "C" NOT NULL UNIQUE,
  type        text   NOT NULL,
  -- What the API may show: host, port, addresses (never a secret).
  config      jsonb  NOT NULL,
  -- URL, signing secret, SMTP password: read by the node that sends, never answered.
  secrets     jsonb  NOT NULL,
  created_at  bigint NOT NULL,
  updated_at  bigint NOT NULL
);

CREATE TABLE alert_rules (
  id          bigserial PRIMARY KEY,
  name        text    COLLATE "C" NOT NULL UNIQUE,
  kind        text    NOT NULL,
  enabled     boolean NOT NULL,
  -- The compiled rule (core/alert-rule.ts) but name, kind and enabled.
  definition  jsonb   NOT NULL,
  created_at  bigint  NOT NULL,
  updated_at  bigint  NOT NULL
);

-- One row per (rule, subject) that ever fired: firing or resolved, and when it last notified.
CREATE TABLE alert_states (
  rule_id     bigint NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
  subject     text   NOT NULL,
  status      text   NOT NULL,
  fired_at    bigint NOT NULL,
  notified_at bigint,
  count       bigint NOT NULL,
  PRIMARY KEY (rule_id, subject)
);
CREATE INDEX alert_states_firing ON alert_states (rule_id) WHERE status = 'firing';

CREATE TABLE alert_silences (
  id          bigserial PRIMARY KEY,
  -- NULL: every rule.
  rule_id     bigint REFERENCES alert_rules (id) ON DELETE CASCADE,
  starts_at   bigint NOT NULL,
  ends_at     bigint NOT NULL,
  comment     text   NOT NULL,
  created_by  text   NOT NULL,
  created_at  bigint NOT NULL
);

-- The outbox: a change that may alert, written by the triggers below in the transaction of the
-- change itself, so that no run end, skipped fire or lost worker can commit without it. The node
-- holding the `alerts` lease consumes rows in id order and deletes them in the transaction that
-- records what they decided.
CREATE TABLE alert_events (
  id          bigserial PRIMARY KEY,
  type        text   NOT NULL,
  at          bigint NOT NULL,
  job_id      bigint,
  run_id      bigint,
  status      text,
  worker_id   text,
  reason      text,
  count       bigint,
  first_fire  bigint,
  last_fire   bigint
);

CREATE TABLE alert_deliveries (
  id              bigserial PRIMARY KEY,
  -- The alert's id, the same on each retry and each channel: receivers deduplicate by it.
  event_id        text   NOT NULL,
  rule_name       text,
  channel_name    text   NOT NULL,
  subject         text   NOT NULL,
  state           text   NOT NULL,
  title           text   NOT NULL,
  body            text   NOT NULL,
  details         jsonb  NOT NULL,
  status          text   NOT NULL,
  attempts        integer NOT NULL DEFAULT 0,
  last_error      text,
  created_at      bigint NOT NULL,
  sent_at         bigint,
  next_attempt_at bigint
);
-- The sender's queue, oldest due first.
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_deliveries_created ON alert_deliveries (created_at);

-- The triggers write an event only while an enabled rule of a kind that reads it exists: without
-- alert rules a run end costs one lookup in a tiny table, no write.
CREATE FUNCTION kairos_alert_run_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM alert_rules WHERE enabled
             AND kind IN ('run-failed', 'run-timed-out', 'consecutive-failures')) THEN
    INSERT INTO alert_events (type, at, job_id, run_id, status)
    VALUES ('run-ended', coalesce(NEW.finished_at, 0), NEW.job_id, NEW.id, NEW.status);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER runs_alert_ended AFTER UPDATE OF status ON runs FOR EACH ROW
  WHEN (NEW.status IN ('succeeded', 'failed', 'timed_out') AND OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION kairos_alert_run_ended();

CREATE FUNCTION kairos_alert_fire_skipped() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM alert_rules WHERE enabled AND kind = 'fire-skipped') THEN
    INSERT INTO alert_events (type, at, job_id, reason, count, first_fire, last_fire)
    VALUES ('fire-skipped', NEW.recorded_at, NEW.job_id, NEW.reason,
            CASE WHEN TG_OP = 'UPDATE' THEN NEW.count - OLD.count ELSE NEW.count END,
            CASE WHEN TG_OP = 'UPDATE' THEN OLD.last_fire ELSE NEW.first_fire END, NEW.last_fire);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER skipped_fires_alert_insert AFTER INSERT ON skipped_fires FOR EACH ROW
  EXECUTE FUNCTION kairos_alert_fire_skipped();
CREATE TRIGGER skipped_fires_alert_extend AFTER UPDATE OF last_fire ON skipped_fires FOR EACH ROW
  WHEN (NEW.last_fire > OLD.last_fire) EXECUTE FUNCTION kairos_alert_fire_skipped();

CREATE FUNCTION kairos_alert_worker() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM alert_rules WHERE enabled AND kind = 'worker-lost') THEN
    INSERT INTO alert_events (type, at, worker_id)
    VALUES (CASE WHEN NEW.status = 'lost' THEN 'worker-lost' ELSE 'worker-back' END,
            NEW.lease_expires_at, NEW.id);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER workers_alert AFTER UPDATE OF status ON workers FOR EACH ROW
  WHEN ((NEW.status = 'lost' AND OLD.status <> 'lost') OR (OLD.status = 'lost' AND NEW.status = 'active'))
  EXECUTE FUNCTION kairos_alert_worker();

-- A deleted job's open alerts go with it: nothing can resolve them any more.
CREATE FUNCTION kairos_alert_job_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM alert_states WHERE subject = 'job:' || OLD.name;
  RETURN NULL;
END $$;
CREATE TRIGGER jobs_alert_deleted AFTER DELETE ON jobs FOR EACH ROW
  EXECUTE FUNCTION kairos_alert_job_deleted();

-- The outbox triggers start disabled: a rule change turns on those its enabled rules need (a
-- plpgsql trigger costs microseconds per row even when it writes nothing; store/postgres/alerts.ts).
ALTER TABLE runs DISABLE TRIGGER runs_alert_ended;
ALTER TABLE skipped_fires DISABLE TRIGGER skipped_fires_alert_insert;
ALTER TABLE skipped_fires DISABLE TRIGGER skipped_fires_alert_extend;
ALTER TABLE workers DISABLE TRIGGER workers_alert;
