-- migration: expand; release: 0.2.0
-- A workflow step's result, kept on its row when the step ends (docs/workflows.md): retention may
-- delete the step's run (a `job` step's run follows its job's retention) while the instance still
-- runs, and the step's children decide their edges and read their parents' results later. NULL
-- for a step that has not ended, failed, or returned nothing; for rows written before this step,
-- the run's result is read as before.
ALTER TABLE workflow_steps ADD COLUMN result TEXT;
