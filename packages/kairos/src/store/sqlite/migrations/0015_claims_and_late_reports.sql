-- migration: expand; release: 0.2.0
-- The worker's number of the poll that claimed the running attempt (null: the worker does not number
-- its polls). A heartbeat says which polls the worker has settled: the attempts those polls claimed
-- that it does not list never reached it, and are given back.
ALTER TABLE runs ADD COLUMN claim_seq INTEGER;

-- A worker's report that came after the node had ended its attempt (lost, timed out, cancelled): the
-- attempt ran on although fenced out, so its run executed more than once. The first one per attempt.
CREATE TABLE late_reports (
  run_id      INTEGER NOT NULL,
  attempt     INTEGER NOT NULL,
  outcome     TEXT    NOT NULL,
  reported_at INTEGER NOT NULL,
  error       TEXT,
  PRIMARY KEY (run_id, attempt),
  FOREIGN KEY (run_id, attempt) REFERENCES attempts (run_id, attempt) ON DELETE CASCADE
) WITHOUT ROWID;
