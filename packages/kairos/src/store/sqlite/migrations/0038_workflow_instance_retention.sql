-- migration: expand; release: 0.2.0
-- Retention of workflow instances (docs/retention.md): the pruner walks ended instances in end
-- order, from a cursor, as it walks finished runs; a running or paused instance has no end time and
-- is not in the index.
CREATE INDEX workflow_instances_finished ON workflow_instances (finished_at, id) WHERE finished_at IS NOT NULL;
