-- migration: expand; release: 0.1.0
-- Cluster membership: every node upserts its row as it renews its partition leases.
CREATE TABLE nodes (
  id             TEXT    PRIMARY KEY,
  address        TEXT    NOT NULL,
  version        TEXT    NOT NULL,
  started_at     INTEGER NOT NULL,
  heartbeat_at   INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL,
  partitions     TEXT    NOT NULL,
  clock_skew_ms  REAL    NOT NULL
);
