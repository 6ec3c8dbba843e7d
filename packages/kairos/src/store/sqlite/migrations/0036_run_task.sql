-- migration: expand; release: 0.2.0
-- Workflow task steps (docs/workflows.md#steps): a run's own built-in task (JSON, core/task.ts),
-- written for the runs of a workflow step that names a shell command or an HTTP call. A claim
-- delivers it as it delivers a job's task; NULL: its job's task (jobs.task) applies, or none.
ALTER TABLE runs ADD COLUMN task TEXT;
