-- migration: expand; release: 0.2.0
-- The shards of one broadcast (docs/architecture.md, "Sharding broadcast") share the id of their first shard, so that
-- the broadcast ends once, when its last shard ends: the jobs `after` a broadcast job run once per
-- broadcast and a workflow's `job` step of a broadcast job ends then (docs/schedules.md#dependencies).
-- NULL for runs that are not sharded, and for shards made before this column (or by a node of the
-- previous release during a rolling upgrade): each of those still ends on its own, as before.
ALTER TABLE runs ADD COLUMN broadcast_run_id INTEGER;
CREATE INDEX runs_broadcast ON runs (broadcast_run_id) WHERE broadcast_run_id IS NOT NULL;
