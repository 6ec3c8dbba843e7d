-- migration: expand; release: 0.2.0
-- Workflows (docs/workflows.md): definitions, their instances, and each instance's steps. A step
-- runs as an ordinary run (workers, retries, timeouts, logs and cancellation unchanged), tied to
-- its instance by two columns on `runs` rather than a link table: ending a run must know at once
-- whether it advances an instance, and the row that the end updates already holds the answer (a
-- link table would cost every run end an index probe, most of them for nothing).

CREATE TABLE workflows (
  id           bigserial PRIMARY KEY,
  namespace    TEXT    NOT NULL,
  name         TEXT    COLLATE "C" NOT NULL,
  description  TEXT    NOT NULL DEFAULT '',
  version      bigint NOT NULL,
  -- The compiled steps (core/workflow.ts), JSON.
  steps        jsonb   NOT NULL,
  -- The job whose runs are the workflow's handler steps (runs need a job); hidden from job lists.
  job_id       bigint NOT NULL REFERENCES jobs (id),
  created_at   bigint NOT NULL,
  updated_at   bigint NOT NULL
);
CREATE UNIQUE INDEX workflows_namespace_name ON workflows (namespace, name);

CREATE TABLE workflow_instances (
  id               bigserial PRIMARY KEY,
  workflow_id      bigint NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
  namespace        TEXT    NOT NULL,
  workflow_version bigint NOT NULL,
  -- The definition's steps when the instance started: a later replace leaves the instance alone.
  steps            jsonb   NOT NULL,
  state            TEXT    NOT NULL,
  context          jsonb   NOT NULL,
  idempotency_key  TEXT,
  created_at       bigint NOT NULL,
  started_at       bigint NOT NULL,
  finished_at      bigint
);
CREATE UNIQUE INDEX workflow_instances_key ON workflow_instances (workflow_id, idempotency_key);
CREATE INDEX workflow_instances_workflow ON workflow_instances (workflow_id, id);

CREATE TABLE workflow_steps (
  instance_id  bigint NOT NULL REFERENCES workflow_instances (id) ON DELETE CASCADE,
  step_id      TEXT    NOT NULL,
  state        TEXT    NOT NULL,
  run_id       bigint,
  PRIMARY KEY (instance_id, step_id)
);

-- A workflow's own job (workflows.job_id) names its workflow; NULL for every other job.
ALTER TABLE jobs ADD COLUMN workflow_id bigint;
ALTER TABLE runs ADD COLUMN workflow_instance_id bigint;
ALTER TABLE runs ADD COLUMN workflow_step TEXT;
-- An instance's active step runs (cancelling an instance).
CREATE INDEX runs_workflow_instance ON runs (workflow_instance_id) WHERE workflow_instance_id IS NOT NULL;
