-- migration: contract; release: 0.1.0; oldest code: 0.1.0
-- An attempt's row is written once, when the attempt ends; a running attempt is its run's row
-- (runs.attempt, worker_id, started_at, status 'running'). The rows of attempts running at the
-- upgrade go: their runs describe them, and their ends insert their rows.
DELETE FROM attempts WHERE status = 'running';
