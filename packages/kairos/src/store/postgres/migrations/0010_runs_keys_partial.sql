-- migration: contract; release: 0.1.0; oldest code: 0.1.0
-- A run's UPDATE that changes its status is never HOT, so it writes a new entry into every index
-- whose predicate the new row version matches: three times in a run's life. runs_fire and
-- runs_idempotency held an entry for every run, though only scheduled runs have a fire time and
-- few runs have an idempotency key; as partial indexes, a manual run writes neither. Both stay
-- unique where they apply (NULLs never conflicted), and every lookup by them compares the column,
-- which implies IS NOT NULL.
DROP INDEX runs_fire;
CREATE UNIQUE INDEX runs_fire ON runs (job_id, fire_time, shard) WHERE fire_time IS NOT NULL;
DROP INDEX runs_idempotency;
CREATE UNIQUE INDEX runs_idempotency ON runs (job_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
