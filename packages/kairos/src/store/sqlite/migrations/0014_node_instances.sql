-- migration: expand; release: 0.2.0
-- A node's row is keyed by its instance: a random token of the process, also the owner name of its
-- partition leases, so that two processes given the same node id never share a row or a lease.
-- `name` is the node id people read (KAIROS_NODE_ID). Rows of nodes that predate this have `id`
-- as both.
ALTER TABLE nodes ADD COLUMN name TEXT NOT NULL DEFAULT '';
