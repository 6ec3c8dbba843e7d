-- migration: expand; release: 0.2.0
-- The run tables churn: a run's row is inserted, updated as it is claimed and as it ends, and
-- deleted by retention, and so are its attempt and log rows. At autovacuum's default scale factor
-- (0.2) a table holds up to a fifth of its rows dead before it is vacuumed, and its files grow to
-- hold them (docs/retention.md, "PostgreSQL needs autovacuum"). These are vacuumed at 2 % dead.
-- Changing storage parameters takes a lock that does not block reads or writes.
ALTER TABLE runs SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE attempts SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE run_logs SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE run_log_state SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.05);
