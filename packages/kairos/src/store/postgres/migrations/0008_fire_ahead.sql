-- migration: expand; release: 0.1.0
-- Fire ahead: the queued runs of a group that become available soon, soonest first (dispatchAhead).
-- runs_claim leads with priority, so a range of available_at would walk every queued run of the group.
CREATE INDEX runs_ahead ON runs (group_name, available_at) WHERE status = 'queued';
