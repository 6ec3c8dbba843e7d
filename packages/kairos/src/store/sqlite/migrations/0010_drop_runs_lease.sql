-- migration: contract; release: 0.1.0; oldest code: 0.1.0
-- A running attempt lives as long as its worker's lease (workers.lease_expires_at): the reaper finds
-- lost attempts as the running runs (runs_worker) of workers whose lease ended. The run's own copy
-- of that lease was rewritten for every running run of a worker at each heartbeat and entered
-- runs_lease at every claim; it is gone with its index. DROP COLUMN rewrites the runs table once.
DROP INDEX runs_lease;
ALTER TABLE runs DROP COLUMN lease_expires_at;
