-- migration: expand; release: 0.1.0
-- Cluster membership: every node upserts its row as it renews its partition leases.
CREATE TABLE nodes (
  id             text             PRIMARY KEY,
  address        text             NOT NULL,
  version        text             NOT NULL,
  started_at     bigint           NOT NULL,
  heartbeat_at   bigint           NOT NULL,
  expires_at     bigint           NOT NULL,
  partitions     jsonb            NOT NULL,
  clock_skew_ms  double precision NOT NULL
);
