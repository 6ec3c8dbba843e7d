-- migration: contract; release: 0.1.0; oldest code: 0.1.0
-- runs_status (status, id) took a new entry at each of a run's status changes; every UPDATE of a
-- run that changes its status writes all of the table's indexes anew, so each index counts on the
-- hot path. Queued and running runs are found through their own partial indexes (runs_claim,
-- runs_ahead, runs_lease, runs_deadline, runs_worker), succeeded ones are most runs (a list of them
-- walks the primary key from the newest); only the rarer ends keep a status index, for lists such
-- as "failed runs, newest first" on a large store.
DROP INDEX runs_status;
CREATE INDEX runs_unsuccessful ON runs (status, id) WHERE status NOT IN ('queued', 'running', 'succeeded');
