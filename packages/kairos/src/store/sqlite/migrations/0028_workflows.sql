-- migration: expand; release: 0.2.0
-- Workflows (docs/workflows.md): definitions, their instances, and each instance's steps. A step
-- runs as an ordinary run (workers, retries, timeouts, logs and cancellation unchanged), tied to
-- its instance by two columns on `runs` rather than a link table: ending a run must know at once
-- whether it advances an instance, and the row that the end updates already holds the answer (a
-- link table would cost every run end an index probe, most of them for nothing).

CREATE TABLE workflows (
  id           INTEGER PRIMARY KEY,
  namespace    TEXT    NOT NULL,
  name         TEXT    NOT NULL,
  description  TEXT    NOT NULL DEFAULT '',
  version      INTEGER NOT NULL,
  -- The compiled steps (core/workflow.ts), JSON.
  steps        TEXT    NOT NULL,
  -- The job whose runs are the workflow's handler steps (runs need a job); hidden from job lists.
  job_id       INTEGER NOT NULL REFERENCES jobs (id),
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX workflows_namespace_name ON workflows (namespace, name);

CREATE TABLE workflow_instances (
  id               INTEGER PRIMARY KEY,
  workflow_id      INTEGER NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
  namespace        TEXT    NOT NULL,
  workflow_version INTEGER NOT NULL,
  -- The definition's steps when the instance started: a later replace leaves the instance alone.
  steps            TEXT    NOT NULL,
  state            TEXT    NOT NULL,
  context          TEXT    NOT NULL,
  idempotency_key  TEXT,
  created_at       INTEGER NOT NULL,
  started_at       INTEGER NOT NULL,
  finished_at      INTEGER
);
CREATE UNIQUE INDEX workflow_instances_key ON workflow_instances (workflow_id, idempotency_key);
CREATE INDEX workflow_instances_workflow ON workflow_instances (workflow_id, id);

CREATE TABLE workflow_steps (
  instance_id  INTEGER NOT NULL REFERENCES workflow_instances (id) ON DELETE CASCADE,
  step_id      TEXT    NOT NULL,
  state        TEXT    NOT NULL,
  run_id       INTEGER,
  PRIMARY KEY (instance_id, step_id)
);

-- A workflow's own job (workflows.job_id) names its workflow; NULL for every other job.
ALTER TABLE jobs ADD COLUMN workflow_id INTEGER;
ALTER TABLE runs ADD COLUMN workflow_instance_id INTEGER;
ALTER TABLE runs ADD COLUMN workflow_step TEXT;
-- An instance's active step runs (cancelling an instance).
CREATE INDEX runs_workflow_instance ON runs (workflow_instance_id) WHERE workflow_instance_id IS NOT NULL;
