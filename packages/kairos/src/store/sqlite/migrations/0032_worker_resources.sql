-- migration: expand; release: 0.2.0
-- Resource-based scheduling (docs/workers.md#resource-based-scheduling). A worker's advertised
-- capacity (JSON: cpu in millicores, memory in bytes, custom resources in units; NULL: none) and
-- its last reported load (JSON: free memory, load average, cpus; NULL: never reported). A run's
-- own request (JSON, same units), written for workflow handler steps; NULL: its job's request
-- (jobs.dispatch.resources) applies, or none.
ALTER TABLE workers ADD COLUMN resources TEXT;
ALTER TABLE workers ADD COLUMN load TEXT;
ALTER TABLE runs ADD COLUMN resources TEXT;
