-- migration: contract; release: 0.2.0; oldest code: 0.1.0
-- runs_created serves the run list's time range (`created_at`, which never changes). As a B-tree it
-- took a new entry at each run's insert and at each update that is not HOT — the claim and the end,
-- which change the run's status and so are never HOT —: 66 of the ~1,630 WAL bytes a claim and a
-- report write per run each (bench:store, with the index dropped). Runs are inserted in the order of
-- their creation time, so a block range index answers the same ranges from one small summary per
-- 128 pages, and an update that puts its new row version in a range whose summary already covers
-- its created_at writes nothing to it. autosummarize: autovacuum summarizes each range as it fills.
-- A contract step by its DROP, though nothing is taken away: the index keeps its name and column,
-- and 0.1.0's run list (the oldest code) reads the same ranges through it.
DROP INDEX runs_created;
CREATE INDEX runs_created ON runs USING brin (created_at) WITH (autosummarize = on);
