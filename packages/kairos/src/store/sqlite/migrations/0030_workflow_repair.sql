-- migration: expand; release: 0.2.0
-- Repairs of workflow instances (docs/workflows.md#repair). A re-run or retry queues a step a run
-- again: `run_count` counts the step's runs so that the next one gets its own idempotency key
-- (`workflow:<instance>:<step>:<n>`; 0 on rows from before, read as 1 when they hold a run).
-- `hand_skipped`: the step was skipped by hand and ended as a success with no result, whatever its
-- cancelled run says.
ALTER TABLE workflow_steps ADD COLUMN run_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workflow_steps ADD COLUMN hand_skipped INTEGER NOT NULL DEFAULT 0;
