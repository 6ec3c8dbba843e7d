-- migration: expand; release: 0.2.0
-- Workflow triggers (docs/workflows.md#triggers): what started an instance (`manual`: the API,
-- `schedule`: a fire of the workflow's trigger) and, for a fire, its fire time. The unique index
-- keeps one instance per fire of a workflow, whatever node or retry writes it.
ALTER TABLE workflow_instances ADD COLUMN cause TEXT NOT NULL DEFAULT 'manual';
ALTER TABLE workflow_instances ADD COLUMN scheduled_for INTEGER;
CREATE UNIQUE INDEX workflow_instances_fire ON workflow_instances (workflow_id, scheduled_for)
  WHERE scheduled_for IS NOT NULL;
-- The overlap policy `skip` asks, at each fire, whether an instance of the workflow is unfinished
-- (running, or paused by hand).
CREATE INDEX workflow_instances_running ON workflow_instances (workflow_id) WHERE state IN ('running', 'paused');
