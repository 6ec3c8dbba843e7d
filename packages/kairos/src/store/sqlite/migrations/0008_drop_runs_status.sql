-- migration: contract; release: 0.1.0; oldest code: 0.1.0
-- runs_status (status, id) changed twice in every run's life (queued → running → ended) and led the
-- planner to claim through it, which costs the claim's UPDATE its one-pass plan. Every query that
-- reads runs by status is served by a partial index now: queued runs by runs_claim / runs_ahead,
-- running ones by runs_lease / runs_deadline / runs_worker, ended ones by runs_finished; run lists
-- walk the primary key from the newest run.
DROP INDEX runs_status;
